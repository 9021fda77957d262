"""Carrying a run across services (tcc_otel/_records/_context.py): ``tcc.inject()`` writes the
active record's ``traceparent`` and its run id as baggage."""

from __future__ import annotations

import tcc_otel as tcc


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
