"""Tests for tcc_otel._cli: ``python -m tcc_otel dev`` run as a real subprocess."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tcc_otel._schema import _keys as attrs

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000_000_000_000
"""Start of the recorded run, in ns since the epoch."""
MS = 1_000_000
RUN_ID = "3f2a9c1e-77b4-4d2e-9a51-0c6f2d1b8e40"
LISTENING = re.compile(
    r"tcc-otel dev: listening on (http://127\.0\.0\.1:\d+) \(OTLP/HTTP at /v1/traces\); "
    r"point your agent at it with TCC_BASE_URL=\1; see the runs at \1/\n"
)
TREE = (
    "invoke_agent weather         1.23 s  OK  run 3f2a9c1e…  tokens 520→87  cost $0.0041\n"
    "├─ chat gpt-4o               800 ms  OK  tokens 400→50  cost $0.0041  finish stop\n"
    "└─ execute_tool get_weather  100 ms  OK\n"
    "\n"
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _cli(*args: str) -> list[str]:
    """The dev command; ``--db :memory:`` unless a test names its own database."""
    db = [] if "--db" in args else ["--db", ":memory:"]
    return [sys.executable, "-m", "tcc_otel", "dev", *db, *args]


@contextmanager
def _dev(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``tcc-otel dev``, wait for its listening line, and kill it if the test leaves early."""
    process = subprocess.Popen(
        _cli("--port", "0", "--no-color", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=_env(),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the CLI's --timeout bounds this wait
        match = LISTENING.fullmatch(line)
        assert match is not None, line
        yield process, match.group(1)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def _record_run() -> list[ReadableSpan]:
    """Record one run with a step and a tool call, using a private provider."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "weather-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.cli")
    of_run = {attrs.TCC_RUN_ID: RUN_ID}
    run = tracer.start_span(
        "invoke_agent weather",
        start_time=T0,
        attributes={
            **of_run,
            attrs.TCC_TYPE: "run",
            attrs.GEN_AI_USAGE_INPUT_TOKENS: 520,
            attrs.GEN_AI_USAGE_OUTPUT_TOKENS: 87,
        },
    )
    in_run = trace.set_span_in_context(run)
    step = tracer.start_span(
        "chat gpt-4o",
        context=in_run,
        kind=SpanKind.CLIENT,
        start_time=T0 + 1 * MS,
        attributes={
            **of_run,
            attrs.TCC_TYPE: "step",
            attrs.GEN_AI_RESPONSE_MODEL: "gpt-4o",
            attrs.GEN_AI_USAGE_INPUT_TOKENS: 400,
            attrs.GEN_AI_USAGE_OUTPUT_TOKENS: 50,
            attrs.STEP_REAL_TOTAL_COST: 0.0041,
            attrs.STEP_FINISH_REASON: "stop",
        },
    )
    step.end(end_time=T0 + 801 * MS)
    tool = tracer.start_span(
        "execute_tool get_weather",
        context=in_run,
        start_time=T0 + 900 * MS,
        attributes={**of_run, attrs.TCC_TYPE: "tool_call", attrs.GEN_AI_TOOL_NAME: "get_weather"},
    )
    tool.end(end_time=T0 + 1000 * MS)
    run.end(end_time=T0 + 1230 * MS)
    provider.shutdown()
    return list(memory.get_finished_spans())


def _export(url: str, *batches: list[ReadableSpan]) -> list[SpanExportResult]:
    exporter = OTLPSpanExporter(endpoint=url + "/v1/traces", timeout=5)
    try:
        return [exporter.export(batch) for batch in batches]
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call,unused-ignore]


class TestDev:
    def test_prints_a_run(self) -> None:
        """A run sent in two requests, children first, prints as one tree; --runs 1 then exits 0."""
        with _dev("--runs", "1", "--timeout", "20") as (process, url):
            spans = _record_run()
            assert _export(url, spans[:2], spans[2:]) == [SpanExportResult.SUCCESS] * 2
            stdout, stderr = process.communicate(timeout=20)
            assert (process.returncode, stdout, stderr) == (0, TREE, "")

    def test_timeout_before_runs(self) -> None:
        """--timeout ends the session with code 1 and a message when --runs was not reached."""
        result = subprocess.run(
            _cli("--port", "0", "--runs", "1", "--timeout", "0.2", "--no-color"),
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=_env(),
            timeout=20,
        )
        assert result.returncode == 1
        assert LISTENING.fullmatch(result.stdout)
        assert result.stderr == (
            "tcc-otel dev: timed out after 0.2 s with 0 of 1 runs printed; "
            "is your agent's TCC_BASE_URL set to the address above?\n"
        )

    @pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX-only")
    def test_ctrl_c(self) -> None:
        """Ctrl-C (SIGINT) ends the session with code 0 and no traceback."""
        with _dev("--timeout", "20") as (process, _):
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=20)
            assert (process.returncode, stdout, stderr) == (0, "", "")

    def test_port_in_use(self) -> None:
        """A port that is taken gives a one-line error on stderr and exit code 2."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = subprocess.run(
                _cli("--port", str(port), "--timeout", "5"),
                capture_output=True,
                text=True,
                encoding="utf-8",
                env=_env(),
                timeout=20,
            )
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr.startswith(f"tcc-otel dev: cannot listen on 127.0.0.1 port {port}: ")
        assert result.stderr.count("\n") == 1

    def test_non_loopback_host(self) -> None:
        """A host that is not loopback is refused with exit code 2 before anything listens."""
        result = subprocess.run(
            _cli("--host", "0.0.0.0", "--timeout", "5"),
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=_env(),
            timeout=20,
        )
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == (
            "tcc-otel dev: --host must be a loopback address (127.0.0.1, ::1 or localhost), "
            "got '0.0.0.0'\n"
        )
