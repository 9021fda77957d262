"""Span processor that hands run spans of an OpenTelemetry provider to an export pipeline."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Protocol

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from tcc_otel._export._foreign import Reader, Taken, take
from tcc_otel._export._pipeline import Item
from tcc_otel._guard import Guard
from tcc_otel._records._context import record_in, run_id_in
from tcc_otel._schema import _keys as attrs
from tcc_otel._schema._kinds import is_run, run_id_of


class Taker(Protocol):
    """Where the processor hands spans: an export pipeline, or ``tcc_otel.testing``'s memory."""

    def submit(self, item: Item, run_end: bool) -> None: ...

    def flush(self, timeout: float) -> bool: ...

    def shutdown(self, timeout: float) -> None: ...


_START = Guard("following a span started inside a run")
_READ = Guard("reading another instrumentation's span")


class BackgroundProcessor(SpanProcessor):
    """Takes ended spans that belong to a run; the pipeline exports them off the caller's
    thread. Spans started inside a run get its ``tcc.runId``; spans outside any run are not
    ours to send and are ignored. With a ``reader``, other instrumentations' LLM and tool
    spans become steps and tool calls in TCC's copy (``_foreign``).

    Several processors may sit on one provider, one per destination: each takes the spans
    whose run ``route_of`` maps to its ``route`` (``None`` for the configured destination).
    """

    def __init__(
        self,
        pipeline: Taker,
        *,
        route: Hashable | None = None,
        route_of: Callable[[str], Hashable | None] | None = None,
        reader: Reader | None = None,
    ) -> None:
        self.pipeline = pipeline
        self._route = route
        self._route_of = route_of
        self._reader = reader  # reads other instrumentations' LLM and tool spans
        self._retired = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Stamp ``tcc.runId`` on a span the application starts inside a run, step or tool
        call, so that it travels to TCC with the run."""
        if self._retired:
            return
        span_attrs = span.attributes
        if span_attrs and attrs.TCC_RUN_ID in span_attrs:
            return  # one of our records, or stamped already
        context = parent_context or otel_context.get_current()
        run_id = run_id_in(context)
        if run_id is not None:
            span.set_attribute(attrs.TCC_RUN_ID, run_id)
            if self._reader is not None and self._routed_here(run_id):
                with _START:
                    self._reader.inside.started(span.context.span_id, record_in(context))

    def on_end(self, span: ReadableSpan) -> None:
        """Hand ``span`` to the pipeline if it belongs to a run routed here."""
        if self._retired:
            return  # configure() replaced us; the new processor takes this span
        span_attrs = span.attributes
        run_id = run_id_of(span_attrs)
        if run_id is None:
            return
        if not self._routed_here(run_id):
            return  # the run has its own key or URL: another processor sends it
        if attrs.TCC_TYPE in span_attrs or self._reader is None:  # ours (provider mode)
            self.pipeline.submit(span, is_run(span_attrs))
            return
        item: Taken = span
        with _READ:
            item = take(span, run_id, self._reader)
        self.pipeline.submit(item, False)

    def _routed_here(self, run_id: str) -> bool:
        """Whether this processor sends the spans of ``run_id``."""
        return self._route_of is None or self._route_of(run_id) == self._route

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything handed over so far; ``True`` if done within the timeout."""
        return self.pipeline.flush(timeout_millis / 1000)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Deliver what is pending within ``timeout`` seconds, then stop; idempotent."""
        self.pipeline.shutdown(timeout)

    def retire(self) -> None:
        """Ignore spans from now on: a newer processor on the same provider takes them."""
        self._retired = True
