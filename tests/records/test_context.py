"""Carrying a run across services (tcc_otel/_records/_context.py): ``tcc.inject()`` writes the
active record's ``traceparent`` and its run id as baggage, always in W3C format; ``extract``
reads such headers in any case; ``run_id_in`` says which run the active context belongs to."""

from __future__ import annotations

from helpers.tracing import UserTracing
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator

import tcc_otel as tcc
from tcc_otel._records._context import extract, run_id_in
from tcc_otel.testing import CapturedSpans

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class TestInject:
    def test_inject_carries_the_active_record(self, captured: object) -> None:
        """Inside a step, inject() writes the step's traceparent and the run's id as baggage."""
        with tcc.run(run_id="run-i") as run:
            run.prompt("q")
            with run.step() as step:
                step.prompt("p").response("r")
                headers = dict(tcc.inject())
                context = step.span.get_span_context()
        assert headers == {
            "traceparent": (
                f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
            ),
            "baggage": "tcc.runId=run-i",
        }

    def test_inject_outside_a_run(self, captured: object) -> None:
        """Outside any run and span, inject() adds nothing and returns the given headers."""
        headers = {"accept": "application/json"}
        assert tcc.inject(headers) is headers
        assert headers == {"accept": "application/json"}

    def test_w3c_whatever_the_global_propagator(self, captured: CapturedSpans) -> None:
        """``inject()`` writes W3C headers even when the application's global propagator
        writes none: the other side is TCC-aware code."""
        before = propagate.get_global_textmap()
        propagate.set_global_textmap(CompositePropagator([]))  # OTEL_PROPAGATORS=none
        try:
            with tcc.run(run_id="run-w") as run:
                run.prompt("q")
                headers = dict(tcc.inject())
                global_headers: dict[str, str] = {}
                propagate.inject(global_headers)
        finally:
            propagate.set_global_textmap(before)
        assert (sorted(headers), headers["baggage"], global_headers) == (
            ["baggage", "traceparent"],
            "tcc.runId=run-w",
            {},
        )


class TestExtract:
    def test_header_names_in_any_case(self) -> None:
        """Header names in any case give the caller's span context and baggage."""
        context = extract({"TraceParent": CALLER, "BAGGAGE": "tcc.runId=run-x"})
        span_context = trace.get_current_span(context).get_span_context()
        assert (
            f"{span_context.trace_id:032x}",
            f"{span_context.span_id:016x}",
            span_context.is_remote,
            baggage.get_baggage("tcc.runId", context),
        ) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", True, "run-x")

    def test_nothing_to_extract(self) -> None:
        """Headers without W3C fields give a context with no valid span and no run."""
        context = extract({"accept": "application/json"})
        assert (
            trace.get_current_span(context).get_span_context().is_valid,
            run_id_in(context),
        ) == (False, None)


class TestRunIdIn:
    def test_records_span(self, captured: CapturedSpans) -> None:
        """Inside a record's ``with`` block the context belongs to the record's run."""
        with tcc.run(run_id="run-1") as run:
            run.prompt("q")
            with run.step() as step:
                step.prompt("p").response("r")
                found = run_id_in(otel_context.get_current())
        assert found == "run-1"

    def test_application_span_of_a_run(self, user: UserTracing) -> None:
        """An SDK span carrying ``tcc.runId`` (a record of the user's provider, or a span of a
        run's) gives that run, over any run the baggage names."""
        context = baggage.set_baggage("tcc.runId", "from-baggage", Context())
        token = otel_context.attach(context)
        try:
            with user.tracer.start_as_current_span("app", attributes={"tcc.runId": "run-2"}):
                found = run_id_in(otel_context.get_current())
        finally:
            otel_context.detach(token)
        assert found == "run-2"

    def test_baggage(self, user: UserTracing) -> None:
        """Under a span of no run, the run named by the baggage (from another service)."""
        context = baggage.set_baggage("tcc.runId", "run-3", Context())
        token = otel_context.attach(context)
        try:
            with user.tracer.start_as_current_span("handler"):
                found = run_id_in(otel_context.get_current())
        finally:
            otel_context.detach(token)
        assert found == "run-3"

    def test_no_run(self, user: UserTracing) -> None:
        """Under a span of no run, and without baggage, the context belongs to no run."""
        with user.tracer.start_as_current_span("handler"):
            found = run_id_in(otel_context.get_current())
        assert (found, run_id_in(Context())) == (None, None)
