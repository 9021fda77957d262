"""Client (tcc_otel/_client.py): where the records of a run id nest (its open run, a run of this
process that ended, or the active span), the destination of a run with its own key or URL, and
the counters, shutdown and reconfiguration behind ``tcc.stats()``."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
from _fault_server import FaultServer, Reply
from helpers.clients import fresh_client, messages
from helpers.delivery import counters
from helpers.tracing import UserTracing, live_ids, parent_of, run_id_of, self_of
from opentelemetry.sdk.trace import TracerProvider

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel.testing import CapturedSpans, capture


def closed_port() -> int:
    """A loopback port nobody listens on: export attempts there fail at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """An endpoint that accepts everything."""
    with FaultServer() as running:
        yield running


def sent(server: FaultServer) -> list[str]:
    """Names of every span the server received, in order."""
    return [name for request in server.requests for name in request.span_names]


class TestStepsByRunId:
    def test_open_run_gives_the_same_parent(self, captured: CapturedSpans) -> None:
        """``tcc.step``/``tcc.tool_call`` with an open run's id nest exactly like ``r.step()``."""
        r = tcc.run().prompt("hi")
        r.step(step_id="a").prompt("p").response("r").end()
        tcc.step(run_id=r.run_id, step_id="b").prompt("p").response("r").end()
        tcc.tool_call(r.run_id, tool_name="search").end()
        r.end()
        run = captured.by_name("invoke_agent")
        assert [(span.name, parent_of(span), run_id_of(span)) for span in captured.spans] == [
            ("chat", self_of(run), r.run_id),
            ("chat", self_of(run), r.run_id),
            ("execute_tool search", self_of(run), r.run_id),
            ("invoke_agent", None, r.run_id),
        ]

    def test_ended_run_is_still_the_parent(
        self, captured: CapturedSpans, user: UserTracing
    ) -> None:
        """With the id of a run that already ended, the step is still that run's child, even
        under another active span."""
        r = tcc.run().prompt("hi")
        r.end()
        with user.tracer.start_as_current_span("later"):
            tcc.step(run_id=r.run_id).prompt("p").response("r").end()
            tcc.tool_call(r.run_id, tool_name="search").end()
        run = captured.by_name("invoke_agent")
        assert [(span.name, parent_of(span), run_id_of(span)) for span in captured.spans] == [
            ("invoke_agent", None, r.run_id),
            ("chat", self_of(run), r.run_id),
            ("execute_tool search", self_of(run), r.run_id),
        ]

    def test_unknown_run_is_parented_to_the_active_span(
        self, captured: CapturedSpans, user: UserTracing
    ) -> None:
        """With a run id this process does not know, the record is stamped with it and parented
        to the active span."""
        with user.tracer.start_as_current_span("handler") as handler:
            tcc.step(run_id="remote-run").prompt("p").response("r").end()
            tcc.tool_call("remote-run", tool_name="search").end()
        expected_parent = live_ids(handler)
        assert [(span.name, parent_of(span), run_id_of(span)) for span in captured.spans] == [
            ("chat", expected_parent, "remote-run"),
            ("execute_tool search", expected_parent, "remote-run"),
        ]

    def test_unknown_run_without_active_span_is_a_root(self, captured: CapturedSpans) -> None:
        """With an unknown run id and no active span, the step is a root span stamped with the
        id."""
        tcc.step(run_id="remote-run").prompt("p").response("r").end()
        assert [(parent_of(span), run_id_of(span)) for span in captured.spans] == [
            (None, "remote-run")
        ]


class TestPerRunDestination:
    def test_run_with_its_own_key_and_url_is_recorded(self) -> None:
        """A run with its own ``api_key``/``tcc_url`` is still recorded into the configured
        provider, with its steps as its children."""
        with capture(base_url=f"http://127.0.0.1:{closed_port()}") as spans:
            r = tcc.run(api_key="other-key", tcc_url=f"http://127.0.0.1:{closed_port()}")
            r.prompt("hi")
            r.step().prompt("p").response("r").end()
            r.end()
            keyed = tcc.run(api_key="other-key").prompt("hi")
            keyed.end()
            recorded = spans.spans
        run = next((span for span in recorded if span.name == "invoke_agent"), None)
        assert [(span.name, run_id_of(span)) for span in recorded] == [
            ("chat", r.run_id),
            ("invoke_agent", r.run_id),
            ("invoke_agent", keyed.run_id),
        ]
        assert run is not None
        assert parent_of(recorded[0]) == self_of(run)


class TestClientStats:
    """``tcc.stats()`` reports the default client's counters."""

    @pytest.fixture
    def client(self) -> Iterator[Client]:
        """A fresh default client, shut down in teardown."""
        with fresh_client() as fresh:
            yield fresh

    def test_exported(self, server: FaultServer, client: Client) -> None:
        """A run with two steps is counted as three spans recorded and exported."""
        tcc.configure(base_url=server.url, api_key="k")
        with tcc.run() as r:
            r.prompt("hi")
            r.step().prompt("p").response("r").end()
            r.step().error("boom")
        assert tcc.flush()
        assert tcc.stats() == counters(recorded=3, exported=3)

    def test_refused(self, client: Client, caplog: pytest.LogCaptureFixture) -> None:
        """Spans the endpoint refuses are counted as dropped under the HTTP status, and a
        warning says so without raising."""
        with FaultServer(default=Reply(400)) as refusing:
            tcc.configure(base_url=refusing.url, api_key="k")
            with tcc.run() as r:
                r.prompt("hi")
                r.step().prompt("p").response("r").end()
            assert tcc.flush()
        assert tcc.stats() == counters(recorded=2, dropped={"http_400": 2})
        assert any("HTTP 400" in line for line in messages(caplog.records, logging.WARNING))

    def test_shutdown_then_record(self, server: FaultServer, client: Client) -> None:
        """After tcc.shutdown(), new records are neither sent nor counted."""
        tcc.configure(base_url=server.url, api_key="k")
        tcc.run().prompt("before").end()
        tcc.shutdown()
        tcc.run().prompt("after").end()
        assert tcc.flush()
        assert sent(server) == ["invoke_agent"]
        assert tcc.stats() == counters(recorded=1, exported=1)

    def test_reconfigure_same_provider(self, server: FaultServer, client: Client) -> None:
        """Configuring twice with the same tracer_provider counts each later span once, though
        the first (retired) processor stays attached to that provider."""
        provider = TracerProvider()
        try:
            tcc.configure(base_url=server.url, api_key="k", tracer_provider=provider)
            tcc.run().prompt("first").end()
            tcc.configure(base_url=server.url, api_key="k", tracer_provider=provider)
            tcc.run().prompt("second").end()
            assert tcc.flush()
        finally:
            provider.shutdown()
        assert sent(server) == ["invoke_agent", "invoke_agent"]
        assert tcc.stats() == counters(recorded=2, exported=2)
