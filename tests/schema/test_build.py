"""The attribute schema of README section 2: names, kinds, every attribute with its value and type,
status, content capture and the shape of the key space."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest
from helpers.records import tool_attrs
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import tcc_otel as tcc
from tcc_otel.testing import CapturedSpans, capture

USER_PROMPT = "What is the weather in London?"
SYSTEM_PROMPT = "You are a weather agent."
RUN_RESPONSE = "15°C and cloudy."
STEP_PROMPT = "Weather agent. User: What is the weather in London?"
STEP_RESPONSE = "It is 15°C and cloudy in London."
TOOL_DEFINITIONS = [{"name": "get_weather", "parameters": {"city": "string"}}]

FULL_RUN: dict[str, object] = {
    "tcc.type": "run",
    "tcc.runId": "run-1",
    "gen_ai.operation.name": "invoke_agent",
    "tcc.sessionId": "session-1",
    "gen_ai.conversation.id": "session-1",
    "tcc.conversational": True,
    "tcc.run.user_prompt": USER_PROMPT,
    "tcc.run.system_prompt": SYSTEM_PROMPT,
    "tcc.run.response": RUN_RESPONSE,
    "tcc.agent": "weather",
    "tcc.userId": "user-1",
    "tcc.userName": "Ada",
    "tcc.orgId": "org-1",
    "tcc.orgName": "Acme",
    "tcc.metadata.plan": "pro",
    "tcc.metadata.seats": 3,
    "tcc.metadata.ratio": 0.5,
    "tcc.metadata.beta": False,
    "gen_ai.agent.name": "weather",
    "gen_ai.usage.input_tokens": 150,
    "gen_ai.usage.output_tokens": 20,
    "gen_ai.input.messages": (
        '[{"role": "user", "parts": [{"type": "text", "content": '
        '"What is the weather in London?"}]}]'
    ),
    "gen_ai.system_instructions": '[{"type": "text", "content": "You are a weather agent."}]',
    "gen_ai.output.messages": (
        '[{"role": "assistant", "parts": [{"type": "text", "content": "15°C and cloudy."}]}]'
    ),
}

FULL_STEP: dict[str, object] = {
    "tcc.type": "step",
    "tcc.runId": "run-1",
    "tcc.stepId": "step-1",
    "gen_ai.operation.name": "chat",
    "tcc.step.prompt": STEP_PROMPT,
    "tcc.step.response": STEP_RESPONSE,
    "tcc.step.model_requested": "gpt-4o",
    "tcc.step.model_used": "gpt-4o-2024-08-06",
    "tcc.step.prompt_uncached_tokens": 100,
    "tcc.step.prompt_cached_tokens": 50,
    "tcc.step.completion_tokens": 20,
    "tcc.step.real_total_cost": 2.0,
    "tcc.step.finish_reason": "tool_call",
    "tcc.step.tool_definitions": ('[{"name": "get_weather", "parameters": {"city": "string"}}]'),
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.input_tokens": 150,
    "gen_ai.usage.cache_read.input_tokens": 50,
    "gen_ai.usage.output_tokens": 20,
    "gen_ai.response.finish_reasons": ("tool_call",),
    "gen_ai.tool.definitions": '[{"name": "get_weather", "parameters": {"city": "string"}}]',
    "gen_ai.input.messages": (
        '[{"role": "user", "parts": [{"type": "text", "content": '
        '"Weather agent. User: What is the weather in London?"}]}]'
    ),
    "gen_ai.output.messages": (
        '[{"role": "assistant", "parts": [{"type": "text", "content": '
        '"It is 15°C and cloudy in London."}], "finish_reason": "tool_call"}]'
    ),
}

FULL_TOOL_CALL: dict[str, object] = {
    "tcc.type": "tool_call",
    "tcc.runId": "run-1",
    "tcc.toolCallId": "call-1",
    "gen_ai.operation.name": "execute_tool",
    "tcc.tool_call.name": "get_weather",
    "tcc.tool_call.args": '{"city": "London"}',
    "tcc.tool_call.result": '{"celsius": 15, "sky": "cloudy"}',
    "gen_ai.tool.name": "get_weather",
    "gen_ai.tool.call.id": "call-1",
    "gen_ai.tool.call.arguments": '{"city": "London"}',
    "gen_ai.tool.call.result": '{"celsius": 15, "sky": "cloudy"}',
}

CONTENT_KEYS = frozenset(
    {
        "tcc.run.user_prompt",
        "tcc.run.system_prompt",
        "tcc.run.response",
        "tcc.step.prompt",
        "tcc.step.response",
        "tcc.step.tool_definitions",
        "tcc.tool_call.args",
        "tcc.tool_call.result",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    }
)
"""Everything the README calls content: prompts, responses, args, results, tool definitions."""


def record_full_run() -> None:
    """Record one run with every field of the run, a step and a tool call set."""
    r = tcc.run(run_id="run-1", session_id="session-1", conversational=True)
    r.prompt(USER_PROMPT, system_prompt=SYSTEM_PROMPT).response(RUN_RESPONSE)
    r.metadata(
        {"tcc.agent": "weather", "tcc.userId": "user-1", "tcc.userName": "Ada"},
        plan="pro",
        seats=3,
    )
    r.metadata({"tcc.orgId": "org-1", "tcc.orgName": "Acme", "ratio": 0.5, "beta": False})
    s = r.step(step_id="step-1").prompt(STEP_PROMPT).response(STEP_RESPONSE)
    s.model(requested="gpt-4o", used="gpt-4o-2024-08-06")
    s.tokens(prompt_uncached=100, prompt_cached=50, completion=20).cost(2)
    s.finish_reason("tool_call").tool_definitions(TOOL_DEFINITIONS)
    s.end()
    t = r.tool_call(tool_name="get_weather", tool_call_id="call-1")
    t.args({"city": "London"}).result({"celsius": 15, "sky": "cloudy"}).end()
    r.end()


def attributes(span: ReadableSpan) -> dict[str, object]:
    """The span's attributes as a plain dict."""
    return dict(span.attributes or {})


def typed(values: Mapping[str, object]) -> dict[str, tuple[str, object]]:
    """Pair each value with its type name, so ``True`` never equals ``1`` nor ``2.0`` ``2``."""
    return {key: (type(value).__name__, value) for key, value in values.items()}


def only(spans: Iterable[ReadableSpan]) -> ReadableSpan:
    """The single span of ``spans``."""
    found = list(spans)
    assert len(found) == 1, [span.name for span in found]
    return found[0]


def nest(keys: Iterable[str]) -> dict[str, object]:
    """Nest dotted keys into a tree; a key that is also another key's prefix fails."""
    tree: dict[str, object] = {}
    for key in sorted(keys):
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            assert isinstance(child, dict), f"{key!r} extends the key {part!r}"
            node = child
        assert parts[-1] not in node, f"{key!r} is the prefix of another key"
        node[parts[-1]] = None
    return tree


@pytest.fixture
def full(captured: CapturedSpans) -> CapturedSpans:
    """One fully populated run, recorded into memory."""
    record_full_run()
    return captured


class TestFullyPopulatedRecords:
    def test_run_attributes(self, full: CapturedSpans) -> None:
        """A run with every field set carries exactly the TCC and GenAI attributes of the table."""
        span = full.by_name("invoke_agent weather")
        assert typed(attributes(span)) == typed(FULL_RUN)

    def test_step_attributes(self, full: CapturedSpans) -> None:
        """A step with every field set carries exactly the TCC and GenAI attributes of the table."""
        span = full.by_name("chat gpt-4o-2024-08-06")
        assert typed(attributes(span)) == typed(FULL_STEP)

    def test_tool_call_attributes(self, full: CapturedSpans) -> None:
        """A tool call with every field set carries exactly its TCC and GenAI attributes."""
        span = full.by_name("execute_tool get_weather")
        assert typed(attributes(span)) == typed(FULL_TOOL_CALL)

    def test_names_and_kinds(self, full: CapturedSpans) -> None:
        """Runs and tool calls are INTERNAL spans, steps CLIENT spans, named after the table."""
        assert [(span.name, span.kind) for span in full.spans] == [
            ("chat gpt-4o-2024-08-06", SpanKind.CLIENT),
            ("execute_tool get_weather", SpanKind.INTERNAL),
            ("invoke_agent weather", SpanKind.INTERNAL),
        ]

    def test_successful_records_leave_status_unset(self, full: CapturedSpans) -> None:
        """Records that ended normally keep the UNSET status with no description."""
        assert [(s.status.status_code, s.status.description) for s in full.spans] == [
            (StatusCode.UNSET, None),
            (StatusCode.UNSET, None),
            (StatusCode.UNSET, None),
        ]


class TestUnsetFields:
    def test_minimal_run(self, captured: CapturedSpans) -> None:
        """A run with only its prompt carries no attribute for any field left unset."""
        tcc.run(run_id="run-1").prompt("hi").end()
        assert typed(attributes(only(captured.spans))) == typed(
            {
                "tcc.type": "run",
                "tcc.runId": "run-1",
                "gen_ai.operation.name": "invoke_agent",
                "tcc.run.user_prompt": "hi",
                "gen_ai.input.messages": (
                    '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]'
                ),
            }
        )

    def test_minimal_step(self, captured: CapturedSpans) -> None:
        """A step with only prompt and response carries no model, token, cost or reason key."""
        tcc.step("run-1", step_id="step-1").prompt("p").response("r").end()
        assert typed(attributes(only(captured.spans))) == typed(
            {
                "tcc.type": "step",
                "tcc.runId": "run-1",
                "tcc.stepId": "step-1",
                "gen_ai.operation.name": "chat",
                "tcc.step.prompt": "p",
                "tcc.step.response": "r",
                "gen_ai.input.messages": (
                    '[{"role": "user", "parts": [{"type": "text", "content": "p"}]}]'
                ),
                "gen_ai.output.messages": (
                    '[{"role": "assistant", "parts": [{"type": "text", "content": "r"}]}]'
                ),
            }
        )

    def test_minimal_tool_call(self, captured: CapturedSpans) -> None:
        """A tool call with only its name carries no args or result key."""
        tcc.tool_call("run-1", tool_call_id="call-1", tool_name="search").end()
        assert typed(attributes(only(captured.spans))) == typed(tool_attrs())

    def test_partial_tokens(self, captured: CapturedSpans) -> None:
        """Only the token counts given appear; input tokens are the cached ones when uncached is
        unknown, and zero counts are kept as zero."""
        s = tcc.step("run-1", step_id="step-1").prompt("p").response("r")
        s.tokens(prompt_cached=7, completion=0).end()
        usage = {
            key: value for key, value in attributes(only(captured.spans)).items() if "token" in key
        }
        assert typed(usage) == typed(
            {
                "tcc.step.prompt_cached_tokens": 7,
                "tcc.step.completion_tokens": 0,
                "gen_ai.usage.input_tokens": 7,
                "gen_ai.usage.cache_read.input_tokens": 7,
                "gen_ai.usage.output_tokens": 0,
            }
        )

    def test_only_requested_model(self, captured: CapturedSpans) -> None:
        """With only the requested model known, the step is named after it and has no
        response-model keys."""
        s = tcc.step("run-1", step_id="step-1").prompt("p").response("r")
        s.model(requested="gpt-4o").end()
        span = only(captured.spans)
        models = {key: value for key, value in attributes(span).items() if "model" in key}
        assert (span.name, models) == (
            "chat gpt-4o",
            {"tcc.step.model_requested": "gpt-4o", "gen_ai.request.model": "gpt-4o"},
        )


class TestSpanNames:
    def test_run_without_agent(self, captured: CapturedSpans) -> None:
        """A run with no ``tcc.agent`` metadata is named ``invoke_agent``."""
        tcc.run().prompt("hi").metadata(plan="pro").end()
        assert [s.name for s in captured.spans] == ["invoke_agent"]

    def test_step_without_model(self, captured: CapturedSpans) -> None:
        """A step with no model is named ``chat``."""
        tcc.step("run-1").prompt("p").response("r").end()
        assert [s.name for s in captured.spans] == ["chat"]

    def test_failed_tool_call_without_name(self, captured: CapturedSpans) -> None:
        """A tool call that failed before it was named is named ``execute_tool``."""
        tcc.tool_call("run-1").error("timeout")
        assert [s.name for s in captured.spans] == ["execute_tool"]


class TestErrorsAndStatus:
    def test_error_called_directly(self, captured: CapturedSpans) -> None:
        """``.error()`` sets ERROR with the message as description and ``error.type=_OTHER`` on
        runs, steps and tool calls alike."""
        r = tcc.run(run_id="run-1")
        r.step(step_id="step-1").error("model overloaded")
        r.tool_call("search", tool_call_id="call-1").error("tool timed out")
        r.error("agent gave up")
        assert [
            (s.name, s.status.status_code, s.status.description, attributes(s).get("error.type"))
            for s in captured.spans
        ] == [
            ("chat", StatusCode.ERROR, "model overloaded", "_OTHER"),
            ("execute_tool search", StatusCode.ERROR, "tool timed out", "_OTHER"),
            ("invoke_agent", StatusCode.ERROR, "agent gave up", "_OTHER"),
        ]

    def test_error_without_message(self, captured: CapturedSpans) -> None:
        """``.error()`` with no message sets ERROR with no description."""
        tcc.run().error()
        span = only(captured.spans)
        assert (span.status.status_code, span.status.description) == (StatusCode.ERROR, None)

    def test_exception_class_as_error_type(self, captured: CapturedSpans) -> None:
        """An exception leaving a ``with`` block names its class in ``error.type``."""

        def agent() -> None:
            with tcc.run(run_id="run-1") as r, r.step(step_id="step-1"):
                raise TimeoutError("model took too long")

        with pytest.raises(TimeoutError):
            agent()
        assert [
            (s.name, s.status.status_code, s.status.description, attributes(s).get("error.type"))
            for s in captured.spans
        ] == [
            ("chat", StatusCode.ERROR, "TimeoutError: model took too long", "TimeoutError"),
            ("invoke_agent", StatusCode.ERROR, "TimeoutError: model took too long", "TimeoutError"),
        ]

    def test_error_type_only_on_errors(self, full: CapturedSpans) -> None:
        """Successful records carry no ``error.type``."""
        assert [s.name for s in full.spans if "error.type" in attributes(s)] == []

    def test_status_zero_is_ok(self, captured: CapturedSpans) -> None:
        """``r.status(0)`` ends the run with status OK and no ``error.type``."""
        tcc.run().prompt("hi").status(0).end()
        span = only(captured.spans)
        assert (span.status.status_code, span.status.description) == (StatusCode.OK, None)
        assert "error.type" not in attributes(span)

    def test_status_two_is_error_with_redacted_message(self, captured: CapturedSpans) -> None:
        """``r.status(2, message)`` ends the run as ERROR with the redacted message."""
        tcc.run().prompt("hi").status(2, "upstream refused Bearer abc.def-123").end()
        span = only(captured.spans)
        assert (
            span.status.status_code,
            span.status.description,
            attributes(span).get("error.type"),
        ) == (StatusCode.ERROR, "upstream refused Bearer [REDACTED]", "_OTHER")

    def test_error_description_is_redacted(self, captured: CapturedSpans) -> None:
        """Secrets in an ``.error()`` message are redacted in the status description."""
        tcc.run().error("login failed: password=hunter2 for https://bob:pw@db.example/x")
        assert [s.status.description for s in captured.spans] == [
            "login failed: password=[REDACTED] for https://[REDACTED]@db.example/x"
        ]

    def test_exception_description_is_redacted(self, captured: CapturedSpans) -> None:
        """Secrets in an exception caught by a ``with`` block are redacted in the description."""
        key = "sk-" + "a1" * 12
        with pytest.raises(PermissionError), tcc.run():
            raise PermissionError(f"key {key} was revoked")
        assert [s.status.description for s in captured.spans] == [
            "PermissionError: key [REDACTED] was revoked"
        ]


class TestRunTokenSums:
    def test_sums_over_steps_ended_before_the_run(self, captured: CapturedSpans) -> None:
        """The run's usage sums steps that reported tokens and ended before it, including those
        made with ``tcc.step(run_id=...)``, and not steps that ended after it."""
        r = tcc.run().prompt("hi")
        r.step().prompt("p").response("r").tokens(prompt_uncached=10, completion=1).end()
        r.step().prompt("p").response("r").tokens(prompt_cached=5).end()
        r.step().prompt("p").response("r").tokens(completion=3).end()
        r.step().prompt("p").response("r").end()
        tcc.step(r.run_id).prompt("p").response("r").tokens(100, 200, 300).end()
        late = r.step().prompt("p").response("r").tokens(1000, 1000, 1000)
        r.end()
        late.end()
        usage = {
            key: value
            for key, value in attributes(captured.by_name("invoke_agent")).items()
            if key.startswith("gen_ai.usage.")
        }
        assert typed(usage) == typed(
            {"gen_ai.usage.input_tokens": 315, "gen_ai.usage.output_tokens": 304}
        )

    def test_no_usage_without_token_reports(self, captured: CapturedSpans) -> None:
        """A run whose steps reported no tokens carries no usage attributes (not zeros)."""
        r = tcc.run().prompt("hi")
        r.step().prompt("p").response("r").end()
        r.end()
        keys = sorted(attributes(captured.by_name("invoke_agent")))
        assert [key for key in keys if key.startswith("gen_ai.usage.")] == []

    def test_only_output_tokens(self, captured: CapturedSpans) -> None:
        """Steps that reported only completion tokens give the run output tokens and no input
        tokens."""
        r = tcc.run().prompt("hi")
        r.step().prompt("p").response("r").tokens(completion=4).end()
        r.end()
        usage = {
            key: value
            for key, value in attributes(captured.by_name("invoke_agent")).items()
            if key.startswith("gen_ai.usage.")
        }
        assert typed(usage) == typed({"gen_ai.usage.output_tokens": 4})


class TestContentCapture:
    @staticmethod
    def without_content(values: Mapping[str, object]) -> dict[str, object]:
        return {key: value for key, value in values.items() if key not in CONTENT_KEYS}

    def check(self, spans: CapturedSpans) -> None:
        assert {span.name: typed(attributes(span)) for span in spans.spans} == {
            "invoke_agent weather": typed(self.without_content(FULL_RUN)),
            "chat gpt-4o-2024-08-06": typed(self.without_content(FULL_STEP)),
            "execute_tool get_weather": typed(self.without_content(FULL_TOOL_CALL)),
        }

    def test_env_false_drops_content(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``TCC_CAPTURE_CONTENT=false`` drops every content key and keeps every other one."""
        monkeypatch.setenv("TCC_CAPTURE_CONTENT", "false")
        with capture() as spans:
            record_full_run()
            self.check(spans)

    def test_option_false_drops_content(self) -> None:
        """``capture(capture_content=False)`` drops every content key and keeps every other."""
        with capture(capture_content=False) as spans:
            record_full_run()
            self.check(spans)

    def test_content_kept_by_default(self, full: CapturedSpans) -> None:
        """By default every content key is recorded."""
        keys = set().union(*(attributes(span) for span in full.spans))
        assert CONTENT_KEYS - keys == set()


TCC_CONTENT_COPIES = frozenset(
    {
        "tcc.run.user_prompt",
        "tcc.run.response",
        "tcc.step.prompt",
        "tcc.step.response",
        "tcc.tool_call.args",
        "tcc.tool_call.result",
    }
)
"""What ``TCC_CONTENT_ONCE`` leaves out: TCC's names for content TCC reads under GenAI names."""


class TestContentOnce:
    @staticmethod
    def check(spans: Iterable[ReadableSpan]) -> None:
        def once(values: Mapping[str, object]) -> dict[str, object]:
            return {k: v for k, v in values.items() if k not in TCC_CONTENT_COPIES}

        assert {span.name: typed(attributes(span)) for span in spans} == {
            "invoke_agent weather": typed(once(FULL_RUN)),
            "chat gpt-4o-2024-08-06": typed(once(FULL_STEP)),
            "execute_tool get_weather": typed(once(FULL_TOOL_CALL)),
        }

    def test_option_sends_content_under_gen_ai_names_only(self) -> None:
        """Prompts, responses, arguments and results keep only their GenAI copy; system
        prompts, tool definitions and every other attribute stay as they are."""
        with capture(content_once=True) as spans:
            record_full_run()
            self.check(spans.spans)

    def test_env_true_sends_content_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TCC_CONTENT_ONCE", "true")
        with capture() as spans:
            record_full_run()
            self.check(spans.spans)

    def test_same_on_the_users_provider(self) -> None:
        """The builders are the same when records are SDK spans of the user's provider."""
        provider = TracerProvider()
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tcc.configure(tracer_provider=provider, exporter="none", content_once=True)
        try:
            record_full_run()
        finally:
            tcc.shutdown()
        self.check(memory.get_finished_spans())

    def test_capture_off_wins(self) -> None:
        """With content off as well, no content is left under either name."""
        with capture(content_once=True, capture_content=False) as spans:
            record_full_run()
        keys = set().union(*(attributes(span) for span in spans.spans))
        assert keys & CONTENT_KEYS == set()
        assert "gen_ai.tool.name" in keys


class TestKeySpace:
    def test_no_key_is_a_prefix_of_another(self, full: CapturedSpans) -> None:
        """Every attribute key nests into one tree: none is another key's dotted prefix."""
        with pytest.raises(ValueError, match="boom"), tcc.run():
            raise ValueError("boom")
        keys = set().union(*(attributes(span) for span in full.spans))
        assert nest(keys) == {
            "error": {"type": None},
            "gen_ai": {
                "agent": {"name": None},
                "conversation": {"id": None},
                "input": {"messages": None},
                "operation": {"name": None},
                "output": {"messages": None},
                "request": {"model": None},
                "response": {"finish_reasons": None, "model": None},
                "system_instructions": None,
                "tool": {
                    "call": {"arguments": None, "id": None, "result": None},
                    "definitions": None,
                    "name": None,
                },
                "usage": {
                    "cache_read": {"input_tokens": None},
                    "input_tokens": None,
                    "output_tokens": None,
                },
            },
            "tcc": {
                "agent": None,
                "conversational": None,
                "metadata": {"beta": None, "plan": None, "ratio": None, "seats": None},
                "orgId": None,
                "orgName": None,
                "run": {"response": None, "system_prompt": None, "user_prompt": None},
                "runId": None,
                "sessionId": None,
                "step": {
                    "completion_tokens": None,
                    "finish_reason": None,
                    "model_requested": None,
                    "model_used": None,
                    "prompt": None,
                    "prompt_cached_tokens": None,
                    "prompt_uncached_tokens": None,
                    "real_total_cost": None,
                    "response": None,
                    "tool_definitions": None,
                },
                "stepId": None,
                "tool_call": {"args": None, "name": None, "result": None},
                "toolCallId": None,
                "type": None,
                "userId": None,
                "userName": None,
            },
        }


class TestMetadata:
    def test_reserved_and_prefixed_keys(self, captured: CapturedSpans) -> None:
        """Reserved keys are written as they are; any other key, even one starting ``tcc.``,
        goes under ``tcc.metadata.``."""
        r = tcc.run(run_id="run-1").prompt("hi")
        r.metadata(
            {"tcc.agent": "a", "tcc.userId": "u", "tcc.userName": "n", "tcc.orgId": "o"},
            **{"tcc.orgName": "on"},
        )
        r.metadata({"agent": "x", "tcc.team": "t", "userId": 7}).end()
        meta = {
            key: value
            for key, value in attributes(only(captured.spans)).items()
            if key.startswith(("tcc.agent", "tcc.user", "tcc.org", "tcc.metadata."))
        }
        assert typed(meta) == typed(
            {
                "tcc.agent": "a",
                "tcc.userId": "u",
                "tcc.userName": "n",
                "tcc.orgId": "o",
                "tcc.orgName": "on",
                "tcc.metadata.agent": "x",
                "tcc.metadata.tcc.team": "t",
                "tcc.metadata.userId": 7,
            }
        )

    def test_later_values_win(self, captured: CapturedSpans) -> None:
        """Metadata merges across calls and keywords; a later value for a key replaces it."""
        r = tcc.run().prompt("hi")
        r.metadata({"plan": "free", "tier": 1}, plan="pro")
        r.metadata(tier=2).end()
        meta = {
            key: value
            for key, value in attributes(only(captured.spans)).items()
            if key.startswith("tcc.metadata.")
        }
        assert typed(meta) == typed({"tcc.metadata.plan": "pro", "tcc.metadata.tier": 2})

    def test_agent_names_run_and_gen_ai_agent(self, captured: CapturedSpans) -> None:
        """``tcc.agent`` names the run span and fills ``gen_ai.agent.name``."""
        tcc.run().prompt("hi").metadata({"tcc.agent": "planner"}).end()
        span = only(captured.spans)
        assert (span.name, attributes(span).get("gen_ai.agent.name")) == (
            "invoke_agent planner",
            "planner",
        )
