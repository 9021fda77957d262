"""Helpers for your own tests: capture tcc_otel's spans in memory instead of exporting them.

Not thread-safe to enter from several threads at once: it swaps the module-level client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tcc_otel
from tcc_otel._client import Client

__all__ = ["CapturedSpans", "capture"]


class CapturedSpans:
    """Spans ended while ``capture()`` was active, oldest first."""

    def __init__(self, exporter: InMemorySpanExporter, provider: TracerProvider) -> None:
        self.exporter = exporter
        self.provider = provider

    @property
    def spans(self) -> list[ReadableSpan]:
        """Every finished span."""
        return list(self.exporter.get_finished_spans())

    def by_name(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``.

        Raises:
            LookupError: no span, or more than one, has that name.
        """
        found = [span for span in self.exporter.get_finished_spans() if span.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one span named {name!r}, found {len(found)}")
        return found[0]

    def clear(self) -> None:
        """Forget the spans captured so far."""
        self.exporter.clear()


@contextmanager
def capture(**options: Any) -> Iterator[CapturedSpans]:
    """Record tcc_otel spans into memory inside the ``with`` block; nothing is exported.

    Args:
        options: more ``tcc_otel.configure()`` keywords, e.g. ``capture_content=False``.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = Client()
    client.configure(tracer_provider=provider, exporter="none", **options)
    previous = tcc_otel._client
    tcc_otel._client = client
    try:
        yield CapturedSpans(exporter, provider)
    finally:
        tcc_otel._client = previous
        client.shutdown(timeout=1.0)
        provider.shutdown()
