"""Road and open_span (tcc_otel/_records/_road.py), the one place a record's span starts: which
span each record nests under."""

from __future__ import annotations

from helpers.tracing import UserTracing, ctx, parent_of, self_of
from opentelemetry import context as otel_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import tcc_otel as tcc
from tcc_otel.testing import CapturedSpans

W3C_TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736


W3C_SPAN_ID = 0x00F067AA0BA902B7


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class TestParents:
    def test_steps_and_tool_calls_are_children_of_the_run(self, captured: CapturedSpans) -> None:
        """Steps and tool calls are the run's children in its trace; ``step.tool_call()`` is the
        step's child."""
        r = tcc.run().prompt("hi")
        s = r.step().prompt("p").response("r")
        s.tool_call("from_step").end()
        s.end()
        r.tool_call("from_run").end()
        r.end()
        run = captured.by_name("invoke_agent")
        step = captured.by_name("chat")
        assert {span.name: parent_of(span) for span in captured.spans} == {
            "execute_tool from_step": self_of(step),
            "chat": self_of(run),
            "execute_tool from_run": self_of(run),
            "invoke_agent": None,
        }

    def test_run_is_child_of_the_users_active_span(
        self, captured: CapturedSpans, user: UserTracing
    ) -> None:
        """The run span's parent is the span active in the user's own provider, e.g. a request
        span."""
        with user.tracer.start_as_current_span("GET /chat"):
            tcc.run().prompt("hi").end()
        (request,) = user.spans
        assert (parent_of(captured.by_name("invoke_agent")), request.name) == (
            self_of(request),
            "GET /chat",
        )

    def test_run_parent_from_w3c_traceparent(self, captured: CapturedSpans) -> None:
        """A context extracted from a W3C ``traceparent`` header becomes the run's parent."""
        remote = TraceContextTextMapPropagator().extract({"traceparent": TRACEPARENT})
        token = otel_context.attach(remote)
        try:
            r = tcc.run().prompt("hi")
            r.step().prompt("p").response("r").end()
            r.end()
        finally:
            otel_context.detach(token)
        run = captured.by_name("invoke_agent")
        assert (parent_of(run), parent_of(captured.by_name("chat"))) == (
            (W3C_TRACE_ID, W3C_SPAN_ID),
            (W3C_TRACE_ID, ctx(run).span_id),
        )

    def test_run_without_active_span_is_a_root(self, captured: CapturedSpans) -> None:
        """With no span active the run span is a root span."""
        tcc.run().prompt("hi").end()
        assert [parent_of(span) for span in captured.spans] == [None]
