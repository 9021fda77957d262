"""Helpers for your own tests: capture tcc_otel's spans in memory instead of exporting them
(``capture``), and a fake OpenAI-compatible server on 127.0.0.1 for the real ``openai`` client and
the instrumentations around it (``FakeOpenAI``: deterministic replies, streaming, tool calls).

The records take tcc_otel's default road (the same builders, value rules and span limits as
what is exported); each ended span is handed over as an OpenTelemetry ``ReadableSpan``.
Not thread-safe to enter from several threads at once: it swaps the module-level client.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

import tcc_otel
from tcc_otel._client import Client
from tcc_otel._export._destination import SCOPE
from tcc_otel._export._encode import prepare
from tcc_otel._export._share import readable_span
from tcc_otel._local._fake_openai import FakeOpenAI
from tcc_otel._records._span import LightSpan
from tcc_otel._version import __version__

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from tcc_otel._config import ConfigureOptions

__all__ = ["CapturedSpans", "FakeOpenAI", "capture"]

_RESOURCE = Resource.get_empty()
_SCOPE = InstrumentationScope(SCOPE, __version__)


class CapturedSpans:
    """Spans ended while ``capture()`` was active, oldest first."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._limits = SpanLimits()  # OTEL_SPAN_ATTRIBUTE_* limits, as export applies them
        self._lock = threading.Lock()
        self._spans: list[ReadableSpan] = []

    @property
    def spans(self) -> list[ReadableSpan]:
        """Every finished span."""
        with self._lock:
            return list(self._spans)

    def by_name(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``.

        Raises:
            LookupError: no span, or more than one, has that name.
        """
        found = [span for span in self.spans if span.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one span named {name!r}, found {len(found)}")
        return found[0]

    def clear(self) -> None:
        """Forget the spans captured so far."""
        with self._lock:
            self._spans.clear()

    def submit(self, span: LightSpan, run_end: bool) -> None:
        """Take an ended span of the default road (what export would encode)."""
        prepared = prepare(span, self._limits, self._client.stats.add)
        readable = readable_span(span, prepared, _RESOURCE, _SCOPE)
        with self._lock:
            self._spans.append(readable)


@contextmanager
def capture(**options: Unpack[ConfigureOptions]) -> Iterator[CapturedSpans]:
    """Record tcc_otel spans into memory inside the ``with`` block; nothing is exported.

    Args:
        options: more ``tcc_otel.configure()`` keywords, e.g. ``capture_content=False``.
    """
    client = Client()
    options["exporter"] = "none"
    client.configure(**options)
    captured = CapturedSpans(client)
    client.record_into(captured)
    previous = tcc_otel._client
    tcc_otel._client = client
    try:
        yield captured
    finally:
        tcc_otel._client = previous
        client.shutdown(timeout=1.0)
