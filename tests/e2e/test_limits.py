"""The limits of README section 3 end to end, in both modes, at a loopback OTLP receiver: count
limits keep tcc_otel's own attributes, length limits never break JSON, non-finite numbers never
reach JSON, content is capped and big data URLs are replaced; each is counted and warned once."""

from __future__ import annotations

import base64
import json
import logging
import os
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from _fault_server import FaultServer
from helpers.clients import fresh_client, messages
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel._local._model import ReceivedSpan
from tcc_otel._local._server import Receiver
from tcc_otel._schema import _values as _encode
from tcc_otel._schema._limits import JSON_KEYS, MARKER
from tcc_otel.testing import capture

MIB = 1024 * 1024
RUN_OWN = {
    "tcc.type": "run",
    "tcc.runId": "run-1",
    "gen_ai.operation.name": "invoke_agent",
    "tcc.run.user_prompt": "hello",
    "tcc.run.response": "world",
    "gen_ai.input.messages": (
        '[{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]'
    ),
    "gen_ai.output.messages": (
        '[{"role": "assistant", "parts": [{"type": "text", "content": "world"}]}]'
    ),
}
"""The run span's own attributes for ``prompt("hello")`` and ``response("world")``."""
METADATA = {f"k{index:03d}": index for index in range(200)}
"""200 metadata keys: more than the default limit of 128 attributes allows."""


@pytest.fixture(autouse=True)
def _warn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the once-per-process warnings afresh."""
    monkeypatch.setattr(_encode, "_warned", set())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback OTLP/HTTP receiver on a free port, stopped in teardown."""
    with Receiver("127.0.0.1", 0) as running:
        yield running


@contextmanager
def recording(provider: TracerProvider | None, url: str) -> Iterator[None]:
    """A fresh default client sending to ``url``. In provider mode it records into a new
    TracerProvider built now, so that it reads the ``OTEL_*`` limits the test has set."""
    user = None if provider is None else TracerProvider()
    try:
        with fresh_client():
            tcc.configure(base_url=url, tracer_provider=user)
            yield
    finally:
        if user is not None:
            user.shutdown()


def by_type(spans: list[ReceivedSpan]) -> dict[str, dict[str, Any]]:
    """Attributes of the received record spans, by ``tcc.type``."""
    return {str(span.attributes["tcc.type"]): span.attributes for span in spans}


def split(attributes: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(attributes but user metadata, the user metadata keys in the order sent)."""
    metadata = [key for key in attributes if key.startswith("tcc.metadata.")]
    return {k: v for k, v in attributes.items() if k not in metadata}, metadata


def metadata_keys(count: int) -> list[str]:
    """The first ``count`` keys of ``METADATA`` as attribute names."""
    return [f"tcc.metadata.{key}" for key in list(METADATA)[:count]]


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warnings logged on ``tcc_otel``."""
    return messages(caplog.records)


def counted(stats: dict[str, Any]) -> dict[str, Any]:
    """The counters the limits keep, from ``tcc.stats()``."""
    names = ("attributes_cut", "truncated", "data_urls_replaced")
    return {name: stats[name] for name in names if name in stats}


def sent_dropped_counts(server: FaultServer) -> dict[str, int]:
    """Span name -> ``dropped_attributes_count`` of every span the server received."""
    found: dict[str, int] = {}
    for request in server.requests:
        decoded = ExportTraceServiceRequest.FromString(request.body)
        for resource_spans in decoded.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found[span.name] = span.dropped_attributes_count
    return found


def random_text(chars: int) -> str:
    """``chars`` characters of base64 text that gzip cannot shrink much."""
    return base64.b64encode(os.urandom(chars * 3 // 4)).decode()


class TestCountLimit:
    def test_default_limit_keeps_ours(
        self,
        provider: TracerProvider | None,
        receiver: Receiver,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Under the default limit of 128, 200 metadata keys leave prompt, response and messages
        in place; the first 121 keys fill the room, 79 are cut, counted and warned about once."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        with recording(provider, receiver.url):
            tcc.run(run_id="run-1").metadata(METADATA).prompt("hello").response("world").end()
            assert tcc.flush(10.0)
            stats = counted(tcc.stats())
        own, metadata = split(by_type(receiver.spans)["run"])
        assert (own, metadata, stats) == (RUN_OWN, metadata_keys(121), {"attributes_cut": 79})
        [warning] = warnings(caplog)
        assert "left 79 attributes out of a" in warning
        assert "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT" in warning

    @pytest.mark.parametrize(
        "name", ["OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"]
    )
    def test_small_env_limit(
        self,
        provider: TracerProvider | None,
        receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch,
        name: str,
    ) -> None:
        """A limit of 10 from either variable keeps the 7 own attributes and 3 metadata keys."""
        monkeypatch.setenv(name, "10")
        with recording(provider, receiver.url):
            tcc.run(run_id="run-1").metadata(METADATA).prompt("hello").response("world").end()
            assert tcc.flush(10.0)
            stats = counted(tcc.stats())
        own, metadata = split(by_type(receiver.spans)["run"])
        assert (own, metadata, stats) == (RUN_OWN, metadata_keys(3), {"attributes_cut": 197})

    def test_dropped_count_on_the_wire(self, provider: TracerProvider | None) -> None:
        """The number cut is the span's dropped-attributes count as sent."""
        with FaultServer() as server, recording(provider, server.url):
            tcc.run(run_id="run-1").metadata(METADATA).prompt("hello").response("world").end()
            assert tcc.flush(10.0)
        assert sent_dropped_counts(server) == {"invoke_agent": 79}

    def test_application_attributes_go_with_metadata(
        self, provider: TracerProvider | None, receiver: Receiver
    ) -> None:
        """An attribute the application set on the run's span is kept before metadata, as it
        came first; tcc_otel's own still all arrive."""
        with recording(provider, receiver.url):
            with tcc.run(run_id="run-1") as r:
                trace.get_current_span().set_attribute("app.tenant", "t-9")
                r.metadata(METADATA).prompt("hello").response("world")
            assert tcc.flush(10.0)
            stats = counted(tcc.stats())
        own, metadata = split(by_type(receiver.spans)["run"])
        assert (own, metadata, stats) == (
            {**RUN_OWN, "app.tenant": "t-9"},
            metadata_keys(120),
            {"attributes_cut": 80},
        )

    def test_limit_below_ours_default_mode(
        self, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Where tcc_otel encodes, a limit below its own count still keeps all of them."""
        monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "4")
        with recording(None, receiver.url):
            tcc.run(run_id="run-1").metadata(METADATA).prompt("hello").response("world").end()
            assert tcc.flush(10.0)
            stats = counted(tcc.stats())
        assert (by_type(receiver.spans)["run"], stats) == (RUN_OWN, {"attributes_cut": 200})

    def test_limit_below_ours_provider_mode(
        self,
        receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A user's provider keeping fewer attributes than ours gets a warning saying how many
        are needed; the attributes given at start are written last, so they survive."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "4")
        with recording(TracerProvider(), receiver.url):
            tcc.run(run_id="run-1").metadata(METADATA).prompt("hello").response("world").end()
            assert tcc.flush(10.0)
            stats = counted(tcc.stats())
        keys = ["gen_ai.output.messages", "tcc.type", "tcc.runId", "gen_ai.operation.name"]
        assert (by_type(receiver.spans)["run"], stats) == (
            {key: RUN_OWN[key] for key in keys},
            {"attributes_cut": 203},
        )
        assert any(
            "keeps 4 attributes per span, fewer than the 7 tcc_otel writes" in warning
            for warning in warnings(caplog)
        )


LONG: dict[str, Any] = {
    "prompt": "hello " * 50,
    "response": "world " * 50,
    "step_prompt": "p\n" * 100,
    "step_response": "r" * 300,
    "args": {"q": "x" * 500},
    "result": "plain " * 50,
    "definitions": [{"name": "get_weather", "description": "d" * 300}],
}


def record_long_values() -> None:
    """A run, a step and a tool call whose content is longer than 100 characters."""
    r = tcc.run(run_id="run-1").prompt(LONG["prompt"], system_prompt="be brief")
    s = r.step(step_id="step-1").prompt(LONG["step_prompt"]).response(LONG["step_response"])
    s.finish_reason("stop").tool_definitions(LONG["definitions"]).end()
    t = r.tool_call("search", tool_call_id="call-1").args(LONG["args"]).result(LONG["result"])
    t.end()
    r.response(LONG["response"]).end()


class TestLengthLimit:
    def test_json_stays_valid(
        self,
        provider: TracerProvider | None,
        receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """With OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT=100 every value is within 100 characters,
        every JSON attribute still parses with its structure, and the 14 values shortened are
        counted and warned about once."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100")
        with recording(provider, receiver.url):
            record_long_values()
            assert tcc.flush(10.0)
            stats = counted(tcc.stats())
        spans = by_type(receiver.spans)
        values = [v for attributes in spans.values() for v in attributes.values()]
        assert [v for v in values if isinstance(v, str) and len(v) > 100] == []
        parsed = {
            (kind, key): json.loads(value)
            for kind, attributes in spans.items()
            for key, value in attributes.items()
            if key in JSON_KEYS and key not in ("tcc.tool_call.result", "gen_ai.tool.call.result")
        }
        assert len(parsed) == 9
        output = parsed[("step", "gen_ai.output.messages")][0]
        assert (output["role"], output["finish_reason"]) == ("assistant", "stop")
        assert parsed[("tool_call", "tcc.tool_call.args")]["q"].endswith(MARKER)
        assert spans["run"]["tcc.run.user_prompt"] == LONG["prompt"][: 100 - len(MARKER)] + MARKER
        assert stats == {"truncated": 14}
        [warning] = warnings(caplog)
        assert "value length limit (100 characters" in warning

    def test_structure_too_long_is_left_out(
        self,
        provider: TracerProvider | None,
        receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Tool definitions whose structure alone is over the limit are left out, not cut
        into invalid JSON; both attributes are counted as cut and on the wire."""
        monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100")
        definitions = [{"name": f"t{index}"} for index in range(20)]
        with FaultServer() as server, recording(provider, server.url):
            tcc.step("run-1", step_id="step-1").prompt("p").response("r").tool_definitions(
                definitions
            ).end()
            assert tcc.flush(10.0)
            stats = counted(tcc.stats())
        assert (sent_dropped_counts(server), stats) == ({"chat": 2}, {"attributes_cut": 2})


class TestNonFinite:
    def test_nan_args(
        self,
        provider: TracerProvider | None,
        receiver: Receiver,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """NaN and infinities in arguments arrive as valid JSON strings, with one warning that
        names the method, however often it happens."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        with recording(provider, receiver.url):
            t = tcc.tool_call("run-1", tool_call_id="call-1", tool_name="calc")
            t.args({"v": float("nan")}).args({"v": float("nan"), "w": [float("inf")]}).end()
            assert tcc.flush(10.0)
        attributes = by_type(receiver.spans)["tool_call"]
        expected = '{"v": "NaN", "w": ["Infinity"]}'
        assert (
            attributes["tcc.tool_call.args"],
            attributes["gen_ai.tool.call.arguments"],
            json.loads(expected),
        ) == (expected, expected, {"v": "NaN", "w": ["Infinity"]})
        [warning] = warnings(caplog)
        assert "ToolCall.args()" in warning

    def test_lists_passed_as_text(
        self, provider: TracerProvider | None, receiver: Receiver
    ) -> None:
        """A list with -Infinity passed as a prompt becomes valid JSON text too."""
        with recording(provider, receiver.url):
            tcc.step("run-1", step_id="step-1").prompt([1.5, -float("inf")]).response("r").end()
            assert tcc.flush(10.0)
        assert by_type(receiver.spans)["step"]["tcc.step.prompt"] == '[1.5, "-Infinity"]'


class TestContentCap:
    def test_five_mb_prompt(
        self,
        provider: TracerProvider | None,
        receiver: Receiver,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A 5 MB prompt is cut to TCC_MAX_CONTENT_BYTES (1 MiB) with a marker, both names
        carry the cut value, it is counted once and warned about once, and what goes over the
        wire is bounded by the cap."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        prompt = random_text(5 * MIB)
        cut = prompt[: MIB - len(MARKER.encode())] + MARKER
        with recording(provider, receiver.url):
            tcc.run(run_id="run-1").prompt(prompt).response("ok").end()
            assert tcc.flush(10.0)
            stats = counted(tcc.stats())
        attributes = by_type(receiver.spans)["run"]
        content = json.loads(attributes["gen_ai.input.messages"])[0]["parts"][0]["content"]
        assert (attributes["tcc.run.user_prompt"] == cut, content == cut) == (True, True)
        assert len(cut.encode()) == MIB
        assert stats == {"truncated": 1}
        assert sum(request.body_size for request in receiver.requests) < 2 * MIB + 64 * 1024
        [warning] = warnings(caplog)
        assert ("Run.prompt()" in warning, "TCC_MAX_CONTENT_BYTES" in warning) == (True, True)

    def test_cap_comes_before_any_copy(self, client: Client) -> None:
        """Capping a 5 MB prompt allocates about two capped copies at most, never a whole one."""
        prompt = random_text(5 * MIB)
        r = tcc.run(run_id="run-1")
        tracemalloc.start()
        try:
            r.prompt(prompt)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        r.error()
        assert peak < 3 * MIB

    def test_big_json_args_stay_json(
        self, provider: TracerProvider | None, receiver: Receiver
    ) -> None:
        """Arguments over the cap are shortened inside and stay valid JSON."""
        with recording(provider, receiver.url):
            call = tcc.tool_call("run-1", tool_call_id="call-1", tool_name="upload")
            call.args({"name": "report.txt", "body": random_text(3 * MIB)}).end()
            assert tcc.flush(10.0)
            stats = counted(tcc.stats())
        args = by_type(receiver.spans)["tool_call"]["tcc.tool_call.args"]
        decoded = json.loads(args)
        assert (decoded["name"], decoded["body"].endswith(MARKER), len(args.encode())) == (
            "report.txt",
            True,
            MIB,
        )
        assert stats == {"truncated": 1}

    def test_data_url_image(
        self,
        provider: TracerProvider | None,
        receiver: Receiver,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A 2 MB base64 image in a prompt and in arguments is replaced by a placeholder with
        its media type and size; nothing is cut, both are counted, one warning."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        image = "data:image/png;base64," + random_text(2_000_000)
        placeholder = f"[data URL omitted: image/png, {len(image)} bytes]"
        with recording(provider, receiver.url):
            r = tcc.run(run_id="run-1").prompt(f"Describe {image} please")
            r.tool_call("vision", tool_call_id="call-1").args({"image_url": image}).end()
            r.response("a cat").end()
            assert tcc.flush(10.0)
            stats = counted(tcc.stats())
        spans = by_type(receiver.spans)
        assert (
            spans["run"]["tcc.run.user_prompt"],
            json.loads(spans["tool_call"]["gen_ai.tool.call.arguments"]),
            stats,
        ) == (
            f"Describe {placeholder} please",
            {"image_url": placeholder},
            {"data_urls_replaced": 2},
        )
        assert sum(request.body_size for request in receiver.requests) < 64 * 1024
        [warning] = warnings(caplog)
        assert "TCC_MAX_DATA_URL_BYTES" in warning

    def test_replaced_nuls_still_fit(self) -> None:
        """NULs become U+FFFD (3 bytes each) after the cap; the value is cut again to fit."""
        with capture(max_content_bytes=100) as captured:
            tcc.step("run-1", step_id="step-1").prompt("\x00" * 99).response("r").end()
            stats = counted(tcc.stats())
        prompt = str(captured.by_name("chat").attributes["tcc.step.prompt"])
        assert (prompt, len(prompt.encode()), stats) == (
            "\ufffd" * 28 + MARKER,
            98,
            {"truncated": 1},
        )
