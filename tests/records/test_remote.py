"""RemoteRun (tcc_otel/_records/_remote.py): ``tcc.continue_run(headers)`` continues a run of
another service, from its W3C headers."""

from __future__ import annotations

import pytest
from opentelemetry import trace

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel._local._server import Receiver


class TestContinueRun:
    def test_continue_run_joins_trace_and_run(self, receiver: Receiver, client: Client) -> None:
        """Records made from another service's headers keep its run id and nest under its span,
        and spans started inside the block nest there too."""
        tcc.configure(base_url=receiver.url)
        caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        headers = {"traceparent": caller, "baggage": "tcc.runId=run-remote"}
        with tcc.continue_run(headers) as run:
            assert run.run_id == "run-remote"
            run.tool_call("lookup").args({"id": 7}).result("ok").end()
            run.step().prompt("p").response("r").end()
            inner = trace.get_current_span().get_span_context()
        assert tcc.flush(10.0)
        assert [
            (span.name, span.trace_id, span.parent_span_id, span.attributes["tcc.runId"])
            for span in sorted(receiver.spans, key=lambda span: span.name)
        ] == [
            ("chat", "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "run-remote"),
            (
                "execute_tool lookup",
                "0af7651916cd43dd8448eb211c80319c",
                "b7ad6b7169203331",
                "run-remote",
            ),
        ]
        assert f"{inner.span_id:016x}" == "b7ad6b7169203331"

    def test_continue_run_needs_a_run_id(self, captured: object) -> None:
        """Headers without tcc.runId baggage and no run_id= is misuse, said at the call."""
        with pytest.raises(ValueError, match=r"no tcc.runId in the headers' baggage; pass run_id"):
            tcc.continue_run(
                {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
            )
        assert tcc.continue_run({}, run_id="given").run_id == "given"


class TestContinueRunHeaders:
    def test_header_names_any_case(self, captured: object) -> None:
        """Headers as HTTP servers hand them over (``Traceparent``, ``Baggage``) are understood."""
        headers = {
            "Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "Baggage": "tcc.runId=run-case",
        }
        run = tcc.continue_run(headers)
        assert (run.run_id, trace.get_current_span(run.context).get_span_context().span_id) == (
            "run-case",
            0xB7AD6B7169203331,
        )

    def test_given_run_id_travels_on(self, captured: object) -> None:
        """With ``run_id=``, inject() inside the block forwards that id, not the caller's."""
        headers = {
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "baggage": "tcc.runId=upstream",
        }
        with tcc.continue_run(headers, run_id="mine"):
            forwarded = dict(tcc.inject())
        assert forwarded["baggage"] == "tcc.runId=mine"
