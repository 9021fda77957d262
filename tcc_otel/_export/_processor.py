"""Span processor that hands run spans of an OpenTelemetry provider to an export pipeline."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from tcc_otel._export._pipeline import ExportPipeline
from tcc_otel._records._context import run_id_in
from tcc_otel._schema import _keys as attrs
from tcc_otel._schema._kinds import is_run, run_id_of


class BackgroundProcessor(SpanProcessor):
    """Takes ended spans that belong to a run; the pipeline exports them off the caller's
    thread. Spans started inside a run get its ``tcc.runId``; spans outside any run are not
    ours to send and are ignored.

    Several processors may sit on one provider, one per destination: each takes the spans
    whose run ``route_of`` maps to its ``route`` (``None`` for the configured destination).
    """

    def __init__(
        self,
        pipeline: ExportPipeline,
        *,
        route: Hashable | None = None,
        route_of: Callable[[str], Hashable | None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self._route = route
        self._route_of = route_of
        self._retired = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Stamp ``tcc.runId`` on a span the application starts inside a run, step or tool
        call, so that it travels to TCC with the run."""
        if self._retired:
            return
        span_attrs = span.attributes
        if span_attrs and attrs.TCC_RUN_ID in span_attrs:
            return  # one of our records, or stamped already
        run_id = run_id_in(parent_context or otel_context.get_current())
        if run_id is not None:
            span.set_attribute(attrs.TCC_RUN_ID, run_id)

    def on_end(self, span: ReadableSpan) -> None:
        """Hand ``span`` to the pipeline if it belongs to a run routed here."""
        if self._retired:
            return  # configure() replaced us; the new processor takes this span
        span_attrs = span.attributes
        run_id = run_id_of(span_attrs)
        if run_id is None:
            return
        if self._route_of is not None and self._route_of(run_id) != self._route:
            return  # the run has its own key or URL: another processor sends it
        self.pipeline.submit(span, is_run(span_attrs))

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything handed over so far; ``True`` if done within the timeout."""
        return self.pipeline.flush(timeout_millis / 1000)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Deliver what is pending within ``timeout`` seconds, then stop; idempotent."""
        self.pipeline.shutdown(timeout)

    def retire(self) -> None:
        """Ignore spans from now on: a newer processor on the same provider takes them."""
        self._retired = True
