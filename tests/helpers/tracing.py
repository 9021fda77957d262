"""The application's own tracing beside tcc_otel's, and span relations as plain tuples."""

from __future__ import annotations

from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext


class UserTracing:
    """The application's own tracing: a private TracerProvider with an in-memory exporter."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("user-app")

    @property
    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


def ctx(span: ReadableSpan) -> SpanContext:
    """The span's own context."""
    context = span.get_span_context()
    assert context is not None
    return context


def ids(context: SpanContext | None) -> tuple[int, int] | None:
    """``(trace_id, span_id)`` of a span context, ``None`` for no parent."""
    return None if context is None else (context.trace_id, context.span_id)


def parent_of(span: ReadableSpan) -> tuple[int, int] | None:
    return ids(span.parent)


def self_of(span: ReadableSpan) -> tuple[int, int] | None:
    return ids(ctx(span))


def live_ids(span: trace.Span) -> tuple[int, int]:
    context = span.get_span_context()
    return (context.trace_id, context.span_id)


def traceparent_of(span: trace.Span) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def injected() -> dict[str, str]:
    """The headers ``opentelemetry.propagate.inject`` writes for the current context."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


def run_id_of(span: ReadableSpan) -> object:
    return (span.attributes or {}).get("tcc.runId")
