"""Interop: the application's own spans inside a run, propagation across services, and the
standard OTLP exporter settings of collector mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel._config import resolve
from tcc_otel._local._model import ReceivedSpan
from tcc_otel._local._server import Receiver

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
HANG_GUARD = 60.0
"""Seconds after which a subprocess is considered hung (a guard, not a measurement)."""


def named(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    """Spans by name (names are unique in these tests)."""
    return {span.name: span for span in spans}


class TestApplicationSpans:
    def test_provider_mode(self, receiver: Receiver, client: Client) -> None:
        """On the configured provider, the application's spans inside a tool call get the run's
        id and arrive in the run's request; spans outside the run are not sent."""
        memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        app = provider.get_tracer("app")
        tcc.configure(base_url=receiver.url, tracer_provider=provider)
        with tcc.run(run_id="run-p") as run:
            run.prompt("q")
            with (
                run.tool_call("weather", tool_call_id="call-p"),
                app.start_as_current_span("GET /weather"),
            ):
                pass
        with app.start_as_current_span("GET /health"):
            pass
        assert tcc.flush(10.0)
        spans = named(receiver.spans)
        assert sorted(spans) == ["GET /weather", "execute_tool weather", "invoke_agent"]
        assert spans["GET /weather"].attributes == {"tcc.runId": "run-p"}
        assert spans["GET /weather"].parent_span_id == spans["execute_tool weather"].span_id
        assert [request.span_count for request in receiver.requests] == [3]
        provider.shutdown()

    def test_default_mode_global_provider(self, receiver: Receiver) -> None:
        """In the default mode, the application's global SDK provider keeps exporting its own
        spans, and gets the run and step spans too (whole traces); its spans inside the run
        also reach TCC, stamped and nested under the step."""
        env = {**os.environ, "TCC_BASE_URL": receiver.url}
        done = subprocess.run(
            [sys.executable, str(SCRIPTS / "global_provider_app.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, "")
        assert json.loads(done.stdout) == {
            "flushed": True,
            "app_exporter_saw": [
                "GET /health",
                "POST /v1/chat/completions",
                "chat",
                "connect",
                "invoke_agent",
            ],
        }
        spans = named(receiver.spans)
        assert sorted(spans) == ["POST /v1/chat/completions", "chat", "connect", "invoke_agent"]
        assert {
            name: span.attributes["tcc.runId"] for name, span in spans.items()
        } == dict.fromkeys(spans, "run-g")
        assert spans["POST /v1/chat/completions"].parent_span_id == spans["chat"].span_id
        assert spans["connect"].parent_span_id == spans["POST /v1/chat/completions"].span_id


class TestCollectorSettings:
    def test_standard_endpoint_and_headers(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/traces; headers are split and URL-decoded."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20k,x-team=ai")
        config = resolve(exporter="otlp")
        assert (config.exporter, config.otlp_endpoint, config.otlp_headers) == (
            "otlp",
            "http://collector:4318/v1/traces",
            {"authorization": "Bearer k", "x-team": "ai"},
        )

    def test_traces_settings_win(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The traces-specific endpoint is used as is, and its headers replace the general ones."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4318")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:9999/custom")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "a=1")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=2")
        config = resolve(exporter="otlp")
        assert (config.otlp_endpoint, config.otlp_headers) == (
            "http://traces:9999/custom",
            {"b": "2"},
        )

    def test_sends_there_without_a_key(
        self, receiver: Receiver, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With TCC_EXPORTER=otlp and no key, spans go to the OTLP endpoint with its headers
        and no Authorization header of ours."""
        monkeypatch.setenv("TCC_EXPORTER", "otlp")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=ai")
        with tcc.run() as run:
            run.prompt("q")
        assert tcc.flush(10.0)
        (request,) = receiver.requests
        assert (
            request.path,
            request.headers.get("x-team"),
            "authorization" in request.headers,
        ) == (
            "/v1/traces",
            "ai",
            False,
        )
        assert [span.name for span in receiver.spans] == ["invoke_agent"]
