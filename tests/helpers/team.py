"""The team's own tracing, installed as OpenTelemetry's GLOBAL provider (as an application does),
and checks on the span trees its exporter gets."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once


class Threads(SpanProcessor):
    """Records, for each span ended, its name and the thread that called ``on_end``."""

    def __init__(self) -> None:
        self.ended: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do at start."""

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self.ended.append((span.name, threading.current_thread().name))


class TeamTracing:
    """The application's tracing: an SDK provider whose exporter keeps spans in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.threads = Threads()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.provider.add_span_processor(self.threads)
        self.tracer = self.provider.get_tracer("team-app")

    @property
    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


@contextmanager
def global_team() -> Iterator[TeamTracing]:
    """A ``TeamTracing`` set as the global tracer provider for the block; OpenTelemetry sets
    that once per process, so its private guard is reset, and the globals are put back after."""
    saved = (trace._TRACER_PROVIDER_SET_ONCE, trace._TRACER_PROVIDER)
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    team = TeamTracing()
    trace.set_tracer_provider(team.provider)
    try:
        yield team
    finally:
        trace._TRACER_PROVIDER_SET_ONCE, trace._TRACER_PROVIDER = saved
        team.provider.shutdown()


def scope_of(span: ReadableSpan) -> str:
    """The name of the span's instrumentation scope."""
    scope = span.instrumentation_scope
    return "" if scope is None else scope.name


def tree(spans: list[ReadableSpan]) -> dict[str, str | None]:
    """Each span's name and its parent's name (``None`` for a root); names must be unique."""
    names = Counter(span.name for span in spans)
    assert [name for name, n in names.items() if n > 1] == []
    by_id = {span.context.span_id: span.name for span in spans if span.context is not None}
    return {
        span.name: None if span.parent is None else by_id.get(span.parent.span_id, "(missing)")
        for span in spans
    }


def orphans(spans: list[ReadableSpan]) -> list[str]:
    """Names of the spans whose parent is not among ``spans`` (a root is no orphan)."""
    ids = {span.context.span_id for span in spans if span.context is not None}
    return [
        span.name for span in spans if span.parent is not None and span.parent.span_id not in ids
    ]
