"""A fresh default client per test, real SDK spans for the exporter, log lines of tcc_otel."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tcc_otel
from tcc_otel._client import Client

LOGGER = "tcc_otel"
"""The logger every tcc_otel failure is reported on."""


@contextmanager
def fresh_client() -> Iterator[Client]:
    """Make a new ``Client`` the target of ``tcc_otel``'s module functions for the block.

    On exit the previous client is put back and the new one is shut down, which delivers what
    is pending (bounded by a short timeout) and stops its worker thread.
    """
    client = Client()
    previous = tcc_otel._client
    tcc_otel._client = client
    try:
        yield client
    finally:
        tcc_otel._client = previous
        client.shutdown(timeout=2.0)


def make_spans(count: int, run_id: str = "run-1") -> list[ReadableSpan]:
    """``count`` ended SDK spans named ``span-0``... that belong to the run ``run_id``."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    for index in range(count):
        tracer.start_span(f"span-{index}", attributes={"tcc.runId": run_id}).end()
    provider.shutdown()
    return list(exporter.get_finished_spans())


def messages(records: list[logging.LogRecord], level: int = logging.WARNING) -> list[str]:
    """The formatted messages logged on ``tcc_otel`` at ``level`` or above, in order."""
    return [
        record.getMessage()
        for record in records
        if record.name == LOGGER and record.levelno >= level
    ]
