"""Other instrumentations' spans on their way to TCC (``_export._foreign``): what ``take`` makes of
them on the caller's thread, and TCC's copy that ``encode`` writes."""

from __future__ import annotations

import json
from typing import Any

from helpers.tracing import UserTracing
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits

import tcc_otel as tcc
from tcc_otel._export._foreign import Foreign, Reader, encode, take, tcc_attributes
from tcc_otel._export._inside import Inside
from tcc_otel._local._decode import _attributes as decoded_attributes
from tcc_otel._schema import _keys as keys
from tcc_otel._schema._build import Fields
from tcc_otel._schema._calls import Event, is_content_key
from tcc_otel.testing import CapturedSpans

LLM: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.usage.output_tokens": 3,
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.prompt.0.role": "user",
    "gen_ai.prompt.0.content": "Hi",
    "gen_ai.completion.0.role": "assistant",
    "gen_ai.completion.0.content": "Hello",
    "server.address": "api.openai.com",
    "tcc.runId": "run-1",
}


class Runs:
    """Stands for the client's registry: one open run that counts steps."""

    def __init__(self) -> None:
        self.counted: list[Fields] = []

    def count_step(self, fields: Fields) -> None:
        self.counted.append(fields)

    def open_run(self, run_id: str) -> Runs | None:
        return self if run_id == "run-1" else None


def ended(user: UserTracing, attributes: dict[str, Any], name: str = "chat") -> ReadableSpan:
    with user.tracer.start_as_current_span(name, attributes=attributes):
        pass
    return user.spans[-1]


def reader(runs: Runs, inside: Inside | None = None, *, capture: bool = True) -> Reader:
    return Reader(inside or Inside(), runs.open_run, capture, False)


class TestTake:
    def test_plain_span_is_handed_over_as_it_is(self, user: UserTracing) -> None:
        span = ended(user, {"http.request.method": "GET", "tcc.runId": "run-1"})
        assert take(span, "run-1", reader(Runs())) is span

    def test_plain_span_without_content_capture(self, user: UserTracing) -> None:
        span = ended(user, {"input.value": "secret", "http.route": "/x", "tcc.runId": "run-1"})
        item = take(span, "run-1", reader(Runs(), capture=False))
        assert isinstance(item, Foreign)
        assert tcc_attributes(item) == {"http.route": "/x", "tcc.runId": "run-1"}

    def test_llm_span_becomes_a_step_counted_in_its_run(self, user: UserTracing) -> None:
        runs = Runs()
        span = ended(user, LLM)
        item = take(span, "run-1", reader(runs))
        assert isinstance(item, Foreign)
        assert item.kind == "step"
        found = tcc_attributes(item)
        assert found[keys.TCC_TYPE] == "step"
        assert found[keys.STEP_PROMPT] == "Hi"
        assert found[keys.STEP_RESPONSE] == "Hello"
        assert found[keys.GEN_AI_USAGE_INPUT_TOKENS] == 12
        assert found["server.address"] == "api.openai.com"
        assert not any(key.startswith(("gen_ai.prompt.", "gen_ai.completion.")) for key in found)
        assert [f[keys.STEP_COMPLETION_TOKENS] for f in runs.counted] == [3]

    def test_llm_span_without_content_capture(self, user: UserTracing) -> None:
        """TCC_CAPTURE_CONTENT=false: the step keeps usage and models, no text of the call."""
        span = ended(user, LLM)
        item = take(span, "run-1", reader(Runs(), capture=False))
        assert isinstance(item, Foreign)
        found = tcc_attributes(item)
        assert found[keys.TCC_TYPE] == "step"
        assert found[keys.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
        assert not [k for k in found if k in keys.CONTENT_KEYS or is_content_key(k)]

    def test_step_id_is_stable(self, user: UserTracing) -> None:
        span = ended(user, LLM)
        first, second = (take(span, "run-1", reader(Runs())) for _ in range(2))
        assert isinstance(first, Foreign)
        assert isinstance(second, Foreign)
        ids = [tcc_attributes(item)[keys.TCC_STEP_ID] for item in (first, second)]
        assert ids[0] == ids[1]

    def test_logged_events_are_folded_in(self, user: UserTracing) -> None:
        inside = Inside()
        bare = {k: v for k, v in LLM.items() if not k.startswith(("gen_ai.prompt", "gen_ai.comp"))}
        with user.tracer.start_as_current_span("chat", attributes=bare) as live:
            span_id = live.get_span_context().span_id
            inside.started(span_id, None)
            inside.logged(span_id, Event("gen_ai.user.message", {"content": "From a log"}, {}))
        item = take(user.spans[-1], "run-1", reader(Runs(), inside))
        assert isinstance(item, Foreign)
        assert tcc_attributes(item)[keys.STEP_PROMPT] == "From a log"
        assert inside.ended(span_id) is None  # forgotten once taken

    def test_enclosing_step_takes_the_call(
        self, user: UserTracing, captured: CapturedSpans
    ) -> None:
        """The manual step keeps its own prompt and gains tokens, model and response; the
        call's TCC copy is a plain span; the run counts the step once."""
        runs = Runs()
        inside = Inside()
        with tcc.run(run_id="run-1") as run:
            run.prompt("q")
            with run.step() as step:
                step.prompt("my prompt")
                with user.tracer.start_as_current_span("chat", attributes=LLM) as live:
                    inside.started(live.get_span_context().span_id, step)
                item = take(user.spans[-1], "run-1", reader(runs, inside))
        assert isinstance(item, Foreign)
        assert item.enclosed
        assert item.kind is None
        assert runs.counted == []  # the manual step counts itself when it ends
        assert tcc_attributes(item) == {"server.address": "api.openai.com", "tcc.runId": "run-1"}
        (step_span,) = [s for s in captured.spans if s.attributes.get("tcc.type") == "step"]
        got = step_span.attributes
        assert got[keys.STEP_PROMPT] == "my prompt"
        assert got[keys.STEP_RESPONSE] == "Hello"
        assert got[keys.STEP_COMPLETION_TOKENS] == 3
        assert json.loads(got[keys.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == (
            "my prompt"
        )
        (run_span,) = [s for s in captured.spans if s.attributes.get("tcc.type") == "run"]
        assert run_span.attributes[keys.GEN_AI_USAGE_OUTPUT_TOKENS] == 3

    def test_a_step_takes_one_call_only(self, user: UserTracing, captured: CapturedSpans) -> None:
        """A second call inside the same step is a step of its own: nothing is lost."""
        runs = Runs()
        inside = Inside()
        items = []
        with tcc.run(run_id="run-1") as run:
            run.prompt("q")
            with run.step() as step:
                for _ in range(2):
                    with user.tracer.start_as_current_span("chat", attributes=LLM) as live:
                        inside.started(live.get_span_context().span_id, step)
                    items.append(take(user.spans[-1], "run-1", reader(runs, inside)))
        first, second = items
        assert isinstance(first, Foreign)
        assert first.enclosed
        assert isinstance(second, Foreign)
        assert second.kind == "step"
        assert len(runs.counted) == 1


class TestEncode:
    def test_tcc_copy_within_limits(self, user: UserTracing) -> None:
        span = ended(user, LLM)
        item = take(span, "run-1", reader(Runs()))
        assert isinstance(item, Foreign)
        counted: dict[str, int] = {}

        def count(name: str, n: int) -> None:
            counted[name] = counted.get(name, 0) + n

        proto = ProtoSpan.FromString(encode(item, SpanLimits(max_attribute_length=4), count))
        got = decoded_attributes(proto.attributes)
        assert got[keys.STEP_PROMPT] == "Hi"
        assert got[keys.STEP_RESPONSE] == "Hell"
        assert got[keys.TCC_TYPE] == "step"  # our own attributes are never cut short
        assert counted["truncated"] > 0
        assert proto.name == "chat"
        assert proto.span_id == span.context.span_id.to_bytes(8, "big")
