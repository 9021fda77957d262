"""Road: where records' spans go and the rules their values follow, one per destination; and
the one place a record's span is started."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanContext, SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from tcc_otel._guard import Guard
from tcc_otel._records._span import LightSpan, Sink

_START = Guard("starting a record's span")

Feedback = Callable[[str, Any, Any, str], bool]
"""Send feedback: run id, score, text, the method called (for log lines) -> accepted."""


def _no_feedback(run_id: str, score: Any, text: Any, method: str) -> bool:
    return False


def _no_count(name: str, n: int) -> None:
    """Counting nowhere."""


def _nobody(run_id: str, context: SpanContext) -> None:
    """Nobody keeps ended runs."""


class Road:
    """What a record needs from the client that made it, as plain values and callables: the
    records never see the client, the configuration or the export side."""

    __slots__ = (
        "capture_content",
        "content_once",
        "feedback",
        "light",
        "max_content_bytes",
        "max_data_url_bytes",
        "note",
        "run_ended",
        "short_content",
        "sink",
        "tracer",
    )

    def __init__(
        self,
        tracer: Tracer | None = None,
        *,
        sink: Sink | None = None,
        light: bool = False,
        capture_content: bool = True,
        content_once: bool = False,
        max_content_bytes: int = 1024 * 1024,
        max_data_url_bytes: int = 32_000,
        note: Callable[[str, int], None] = _no_count,
        feedback: Feedback = _no_feedback,
        run_ended: Callable[[str, SpanContext], None] = _nobody,
    ) -> None:
        self.tracer = tracer or trace.NoOpTracer()
        self.sink = sink  # where LightSpans go when they end
        self.light = light  # records use LightSpans: tcc_otel owns the provider and the export
        self.capture_content = capture_content
        self.content_once = content_once  # content under the GenAI names only
        self.max_content_bytes = max_content_bytes
        self.max_data_url_bytes = max_data_url_bytes
        # a str this short needs no content-cap check: no cap or long data URL can apply
        self.short_content = min(max_data_url_bytes, max_content_bytes // 4)
        self.note = note  # count without a lock (Stats.note): setters run on callers' threads
        self.feedback = feedback
        self.run_ended = run_ended  # keeps the context of ended runs for late children


def open_span(
    road: Road,
    name: str,
    parent: Span | None,
    kind: SpanKind,
    attributes: dict[str, AttributeValue],
    run_id: str,
    *,
    local: bool = True,
) -> Span:
    """Start a record's span under ``parent`` (``None``: the active span). If OpenTelemetry
    fails, a non-recording span keeps the API working. ``local``: the run is open in this
    process, so the span waits for the run span and travels with it."""
    with _START:
        if road.light:
            parent_context = (parent or trace.get_current_span()).get_span_context()
            return LightSpan(name, kind, parent_context, attributes, run_id, road.sink, local)
        context = None if parent is None else trace.set_span_in_context(parent)
        return road.tracer.start_span(name, context=context, kind=kind, attributes=attributes)
    return trace.INVALID_SPAN
