"""Helpers for your own tests: capture tcc_otel's spans in memory instead of exporting them
(``capture``; with your global SDK provider's instrumentations, the LLM calls inside runs as the
steps TCC would get), and a fake OpenAI-compatible server on 127.0.0.1 for the real ``openai``
client and the instrumentations around it (``FakeOpenAI``: deterministic replies, streaming,
tool calls).

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
from tcc_otel._export._foreign import Copy, Foreign, tcc_copy
from tcc_otel._export._pipeline import Item
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

    def submit(self, item: Item, run_end: bool) -> None:
        """Take an ended span as export would encode it: a record's span of the default road,
        or TCC's copy of a span another instrumentation started inside a run (an LLM call as a
        step, ...)."""
        count = self._client.stats.add
        readable: ReadableSpan
        if isinstance(item, LightSpan):
            readable = readable_span(item, prepare(item, self._limits, count), _RESOURCE, _SCOPE)
        elif isinstance(item, Foreign):
            readable = _as_copied(item.span, tcc_copy(item, self._limits, count))
        else:
            readable = item
        with self._lock:
            self._spans.append(readable)

    def flush(self, timeout: float) -> bool:
        """Nothing waits: every span is in ``spans`` once it ended."""
        return True

    def shutdown(self, timeout: float) -> None:
        """Nothing to stop."""


def _as_copied(span: ReadableSpan, copy: Copy) -> ReadableSpan:
    """``span`` with the attributes and events of TCC's copy of it."""
    return ReadableSpan(
        name=span.name,
        context=span.get_span_context(),
        parent=span.parent,
        resource=span.resource,
        attributes=copy.attributes,
        events=span.events if copy.events is None else copy.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


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
