"""Collector mode through a real collector: tcc_otel -> rotel -> the test's own receiver.

rotel (an OpenTelemetry collector shipped in a wheel) runs ``examples/collector/rotel_forward.py``
as shipped: OTLP/HTTP and OTLP/gRPC in on 127.0.0.1, ``keep_runs.py`` dropping spans without
``tcc.runId``,
OTLP/HTTP out to ``TCC_BASE_URL`` (here the test's receiver) with ``Authorization: Bearer
<TCC_API_KEY>``. Without rotel these tests fail, except on a Python or platform that rotel ships
no wheel for, where they are skipped with that reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from _fault_server import closed_port
from helpers.clients import fresh_client, messages
from helpers.delivery import HANG_GUARD, SpanId, span_id, wait_until
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

import tcc_otel as tcc
from tcc_otel._local._model import ReceivedSpan
from tcc_otel._local._server import Receiver

FORWARD_SCRIPT = Path(__file__).resolve().parents[2] / "examples/collector/rotel_forward.py"
ROTEL_REQUIREMENT = "rotel==0.0.1a15"
"""What the dev extra installs; its wheels are for CPython 3.10-3.13 on Linux and macOS."""
KEY = "test-key"
"""The TCC API key the collector is given; the application never sees it."""
VARYING_RESOURCE_KEYS = frozenset({"service.instance.id"})
"""Resource attributes that differ between two clients of one process."""
PARENTS = {
    "run": None,
    "step:plan": "run",
    "tool_call:get_weather": "step:plan",
    "step:timeout": "run",
    "tool_call:lookup": "run",
    "step:answer": "run",
}
"""Each record of ``record_full_run`` and the record its span is a child of."""
T0 = 1_700_000_000_000_000_000
"""Start of the hand-made spans, in ns since the epoch."""


class Collector(NamedTuple):
    """A running ``rotel_forward.py``."""

    url: str
    """Base URL of rotel's OTLP/HTTP receiver, for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
    grpc_url: str
    """``http://`` address of rotel's OTLP/gRPC receiver, for the endpoint with
    ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``."""
    log: Path
    """rotel's own log file."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The test's own loopback receiver: where the collector forwards to, standing in for TCC."""
    with Receiver("127.0.0.1", 0) as running:
        yield running


@pytest.fixture
def collector(receiver: Receiver, tmp_path: Path) -> Iterator[Collector]:
    """``examples/collector/rotel_forward.py`` forwarding to ``receiver`` with key ``KEY``;
    stopped (and its rotel daemon with it) in teardown."""
    require_rotel()
    http_port = closed_port()
    grpc_port = closed_port()
    while grpc_port == http_port:
        grpc_port = closed_port()
    pid_file, log, output = tmp_path / "rotel.pid", tmp_path / "rotel.log", tmp_path / "out.txt"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TCC_", "OTEL_", "ROTEL_"))
    }
    env.update(
        TCC_API_KEY=KEY,
        TCC_BASE_URL=receiver.url,
        ROTEL_OTLP_HTTP_ENDPOINT=f"127.0.0.1:{http_port}",
        ROTEL_OTLP_GRPC_ENDPOINT=f"127.0.0.1:{grpc_port}",
        ROTEL_PID_FILE=str(pid_file),
        ROTEL_LOG_FILE=str(log),
    )
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(FORWARD_SCRIPT)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        started = wait_until(
            lambda: process.poll() is not None or "forwarding" in output.read_text()
        )
        if not started or process.poll() is not None:
            pytest.fail(
                f"rotel_forward.py did not start (exit status {process.poll()}):\n"
                f"{output.read_text()}\n{read(log)}"
            )
        if not wait_until(lambda: listening(grpc_port)):
            pytest.fail(f"rotel's gRPC receiver did not come up:\n{read(log)}")
        yield Collector(f"http://127.0.0.1:{http_port}", f"http://127.0.0.1:{grpc_port}", log)
    finally:
        stop_collector(process, pid_file)


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except OSError:
        return False
    return True


def require_rotel() -> None:
    """Fail when rotel is missing where it could be installed; skip where it cannot."""
    if importlib.util.find_spec("rotel") is not None:
        return
    if not (3, 10) <= sys.version_info[:2] <= (3, 13) or sys.platform == "win32":
        pytest.skip(f"{ROTEL_REQUIREMENT} ships no wheel for this Python or platform")
    pytest.fail(f"rotel is not installed; the dev extra has it: pip install '{ROTEL_REQUIREMENT}'")


def stop_collector(process: subprocess.Popen[bytes], pid_file: Path) -> None:
    """SIGTERM the script (it stops its rotel daemon), then make sure that daemon is gone."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=HANG_GUARD)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=HANG_GUARD)
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return  # rotel never wrote its pid: it did not start
    if not wait_until(lambda: not rotel_alive(pid)):
        with contextlib.suppress(ProcessLookupError):  # still rotel a moment ago, but stuck
            os.kill(pid, signal.SIGKILL)


def rotel_alive(pid: int) -> bool:
    """Whether ``pid`` is still a rotel agent (not a process that reused a stale pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"rotel-agent" in cmdline.read()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): the pid file is ours, fall back to existence
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def read(path: Path) -> str:
    """The file's text, or a note that it is missing."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return f"({path} is missing)"


# --- tcc_otel through rotel ----------------------------------------------------------------------


def record_full_run() -> dict[str, SpanId]:
    """Record one run using every kind of record and field, with fixed record ids, including a
    step that fails on an exception and a tool call ended with ``error()``.

    Returns:
        Label (the keys of ``PARENTS``) -> ``(trace_id, span_id)`` of that record's span.
    """
    ids: dict[str, SpanId] = {}
    with tcc.run(run_id="run-1", session_id="session-1", conversational=True) as run:
        run.prompt("What is the weather in Paris?", system_prompt="You are a weather agent.")
        run.metadata({"customer": "acme", "seats": 12}, ratio=0.25, beta=True, agent_ver="1.2")
        with run.step(step_id="step-plan") as plan:
            plan.prompt("Plan: weather in Paris").response("call get_weather")
            plan.model(requested="gpt-4o", used="gpt-4o-2024-08-06")
            plan.tokens(prompt_uncached=120, prompt_cached=30, completion=15).cost(0.0042)
            plan.finish_reason("tool_calls")
            plan.tool_definitions([{"name": "get_weather", "parameters": {"city": "string"}}])
            with plan.tool_call("get_weather", tool_call_id="call-1") as weather:
                weather.args({"city": "Paris"}).result({"temp_c": 18, "sky": "clear"})
            ids["tool_call:get_weather"] = span_id(weather.span)
        ids["step:plan"] = span_id(plan.span)
        timeout = run.step(step_id="step-timeout").prompt("Summarise the forecast")
        with pytest.raises(TimeoutError):
            time_out(timeout)
        ids["step:timeout"] = span_id(timeout.span)
        lookup = run.tool_call("lookup", tool_call_id="call-2").args({"id": 7})
        lookup.error("row 7 not found")
        ids["tool_call:lookup"] = span_id(lookup.span)
        with run.step(step_id="step-answer") as answer:
            answer.prompt("Answer").response("18 C and clear").finish_reason("stop")
        ids["step:answer"] = span_id(answer.span)
        run.response("It is 18 C and clear in Paris.")
    ids["run"] = span_id(run.span)
    return ids


def time_out(step: tcc.Step) -> None:
    """Raise ``TimeoutError`` inside ``step``'s ``with`` block, as a model call that timed out."""
    with step:
        raise TimeoutError("the model did not answer")


def canonical(spans: list[ReceivedSpan], ids: dict[str, SpanId]) -> dict[str, ReceivedSpan]:
    """The spans keyed by record label, with ids replaced by labels and times by 0, so that two
    recordings of ``record_full_run`` compare with ``==`` field by field."""
    label_of = {span_ids: label for label, span_ids in ids.items()}
    out: dict[str, ReceivedSpan] = {}
    for span in spans:
        label = label_of[(span.trace_id, span.span_id)]
        parent = span.parent_span_id
        out[label] = dataclasses.replace(
            span,
            trace_id="trace",
            span_id=label,
            parent_span_id=None if parent is None else label_of[(span.trace_id, parent)],
            start_ns=0,
            end_ns=0,
            resource={k: v for k, v in span.resource.items() if k not in VARYING_RESOURCE_KEYS},
        )
    assert len(out) == len(spans), "a span arrived twice"
    return out


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_run_arrives_through_rotel_as_it_does_directly(
    receiver: Receiver, collector: Collector, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """A run sent with TCC_EXPORTER=otlp through rotel, over OTLP/HTTP or OTLP/gRPC, reaches
    the far side once, with the ids tcc_otel gave it, and otherwise span for span, attribute for
    attribute, as the same run sent straight to TCC's endpoint with the default exporter; rotel
    adds the Authorization header."""
    with Receiver("127.0.0.1", 0) as direct:
        monkeypatch.setenv("TCC_BASE_URL", direct.url)  # loopback: no key needed
        with fresh_client():
            direct_ids = record_full_run()
            assert tcc.flush(timeout=HANG_GUARD)
        direct_spans = direct.spans
    monkeypatch.delenv("TCC_BASE_URL")
    monkeypatch.setenv("TCC_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    endpoint = collector.grpc_url if protocol == "grpc" else collector.url
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)

    before = time.time_ns()
    with fresh_client():
        forwarded_ids = record_full_run()
        assert tcc.flush(timeout=HANG_GUARD)
        stats = tcc.stats()
    after = time.time_ns()

    assert receiver.wait_for_spans(len(PARENTS), HANG_GUARD), read(collector.log)
    forwarded = receiver.spans
    assert sorted((span.trace_id, span.span_id) for span in forwarded) == sorted(
        forwarded_ids.values()
    )
    expected = canonical(direct_spans, direct_ids)
    got = canonical(forwarded, forwarded_ids)
    assert {label: span.parent_span_id for label, span in got.items()} == PARENTS
    assert got == expected
    assert got["step:timeout"].status_code == "ERROR"  # the failing records are in the compare
    assert got["tool_call:lookup"].status_message == "row 7 not found"
    assert [name for name, _ in got["step:timeout"].events] == ["exception"]
    for span in forwarded:  # the times tcc_otel took, not the collector's
        assert before <= span.start_ns <= span.end_ns <= after
    assert {request.headers.get("authorization") for request in receiver.requests} == {
        f"Bearer {KEY}"
    }
    assert stats["exported"] == len(PARENTS)
    assert stats["dropped"] == 0


# --- the filter -----------------------------------------------------------------------------


class _SequentialIds(IdGenerator):
    """Trace ids 1, 2, ... and span ids 1, 2, ... so the expected span can be written out."""

    def __init__(self) -> None:
        self._span = 0
        self._trace = 0

    def generate_span_id(self) -> int:
        self._span += 1
        return self._span

    def generate_trace_id(self) -> int:
        self._trace += 1
        return self._trace


EVERY_TYPE: dict[str, Any] = {
    "tcc.runId": "run-7",
    "text": "héllo",
    "flag": True,
    "count": 3,
    "ratio": 0.5,
    "texts": ["a", "b", "c"],
    "flags": [True, False, False],
    "counts": [1, 2, 3],
    "ratios": [1.5, 2.5, 3.5],
}
"""One attribute of each type a span can carry, arrays with three items in a set order."""


def other_app_spans(run_span_name: str) -> list[ReadableSpan]:
    """Spans of another application sharing the collector: a health check and a request with
    a database child, none with ``tcc.runId``, then one span of a TCC run with ``EVERY_TYPE``."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource({"service.name": "other-app"}), id_generator=_SequentialIds()
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("other-app")
    tracer.start_span("health-check", start_time=T0).end(end_time=T0 + 1)
    request = tracer.start_span("GET /orders", kind=SpanKind.SERVER, start_time=T0 + 2)
    tracer.start_span("SELECT orders", context=set_span_in_context(request), start_time=T0 + 3).end(
        end_time=T0 + 4
    )
    request.end(end_time=T0 + 5)
    run_span = tracer.start_span(
        run_span_name, kind=SpanKind.CLIENT, attributes=EVERY_TYPE, start_time=T0 + 6
    )
    run_span.add_event("retry", {"attempt": 2, "delays": [10, 20, 40]}, timestamp=T0 + 7)
    run_span.set_status(Status(StatusCode.ERROR, "upstream said no"))
    run_span.end(end_time=T0 + 8)
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_only_spans_with_a_run_id_are_forwarded_each_intact(
    receiver: Receiver, collector: Collector
) -> None:
    """Of the spans another application sends to the collector, those without ``tcc.runId``
    stay behind; a span with it arrives whole: ids, times, kind, status, event, and every
    attribute type, arrays in their order."""
    exporter = OTLPSpanExporter(endpoint=collector.url + "/v1/traces", timeout=HANG_GUARD)
    assert exporter.export(other_app_spans("POST /tool")) is SpanExportResult.SUCCESS
    # Each request reaches rotel's processor whole, so once a request's run span is forwarded,
    # any of its other spans would have been too. The second request is the same again.
    assert exporter.export(other_app_spans("POST /tool again")) is SpanExportResult.SUCCESS

    assert receiver.wait_for_spans(2, HANG_GUARD), read(collector.log)
    expected = ReceivedSpan(
        trace_id=f"{3:032x}",  # the health check and the request took trace ids 1 and 2
        span_id=f"{4:016x}",
        parent_span_id=None,
        name="POST /tool",
        kind="CLIENT",
        start_ns=T0 + 6,
        end_ns=T0 + 8,
        status_code="ERROR",
        status_message="upstream said no",
        attributes=EVERY_TYPE,
        events=[("retry", {"attempt": 2, "delays": [10, 20, 40]})],
        resource={"service.name": "other-app"},
        scope_name="other-app",
    )
    again = dataclasses.replace(expected, name="POST /tool again")
    assert sorted(receiver.spans, key=lambda span: span.name) == [expected, again]
    assert [request.headers.get("authorization") for request in receiver.requests] == [
        f"Bearer {KEY}"
    ] * len(receiver.requests)


# --- what the application sends in collector mode ----------------------------------------------


@pytest.mark.parametrize("api_key", [None, "tcc_live_key_in_the_app"])
def test_otlp_mode_sends_the_otlp_headers_and_never_a_tcc_key(
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    api_key: str | None,
) -> None:
    """With TCC_EXPORTER=otlp the application needs no key, warns about none, and sends the
    headers of OTEL_EXPORTER_OTLP_HEADERS (URL-decoded) but no Authorization header of its own,
    even when TCC_API_KEY is set: the collector holds the key."""
    monkeypatch.setenv("TCC_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme,x-note=two%20words")
    if api_key is not None:
        monkeypatch.setenv("TCC_API_KEY", api_key)
    with fresh_client():
        with tcc.run() as run:
            run.prompt("hi")
            run.step().prompt("p").response("r").end()
            run.response("done")
        assert tcc.flush(timeout=HANG_GUARD)

    assert receiver.wait_for_spans(2, HANG_GUARD)
    assert sorted(span.name for span in receiver.spans) == ["chat", "invoke_agent"]
    for request in receiver.requests:
        assert request.headers["x-tenant"] == "acme"
        assert request.headers["x-note"] == "two words"
        assert "authorization" not in request.headers
        assert api_key is None or all(api_key not in value for value in request.headers.values())
    assert messages(caplog.records) == []


@pytest.mark.parametrize(
    ("setting", "encoding"), [(None, "gzip"), ("none", None), ("gzip", "gzip")]
)
def test_otlp_mode_over_http_honours_the_compression_setting(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, setting: str | None, encoding: str | None
) -> None:
    """In collector mode over OTLP/HTTP the body is gzip unless
    OTEL_EXPORTER_OTLP_COMPRESSION=none; either way every span arrives once."""
    monkeypatch.setenv("TCC_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    if setting is not None:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", setting)
    with fresh_client():
        with tcc.run() as run:
            run.prompt("hi")
        assert tcc.flush(timeout=HANG_GUARD)
    assert [span.span_id for span in receiver.spans] == [span_id(run.span)[1]]
    assert [request.headers.get("content-encoding") for request in receiver.requests] == [encoding]
