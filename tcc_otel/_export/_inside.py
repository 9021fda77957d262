"""Spans of other instrumentations open inside a run: the record around each, and the content
events logged for it, until the span ends. Shared by a client's span and log processors."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from tcc_otel._schema._calls import Event

OPEN_SPANS_KEPT = 10_000
"""Open spans followed at most; past it the oldest is forgotten (a span that never ends)."""
EVENTS_PER_SPAN = 256
"""Content events kept per span; the rest are left out of TCC's copy (logged by the app)."""


class Opened:
    """One followed span: the record a ``with`` block made active around it, and its events."""

    __slots__ = ("events", "record")

    def __init__(self, record: object | None) -> None:
        self.record = record
        self.events: list[Event] = []


class Inside:
    """Followed spans by span id. No lock: each call is one dict operation under the GIL."""

    def __init__(
        self, limit: int = OPEN_SPANS_KEPT, count: Callable[[str, int], None] | None = None
    ) -> None:
        self._open: dict[int, Opened] = {}
        self._limit = limit
        self._count = count  # lock-free ``stats()`` notes of what the bounds left out

    def started(self, span_id: int, record: object | None) -> None:
        """A span started inside a run; ``record`` is the record around it, if any."""
        spans = self._open
        if span_id in spans:
            return  # another of our processors on the same provider saw it first
        if len(spans) >= self._limit:
            # Another thread may change it meanwhile: the bound holds on the next call.
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                del spans[next(iter(spans))]
                self._note("followed_spans_forgotten")
        spans[span_id] = Opened(record)

    def logged(self, span_id: int, event: Event) -> bool:
        """A content event for ``span_id``; ``False`` when that span is not followed."""
        opened = self._open.get(span_id)
        if opened is None:
            return False
        if len(opened.events) < EVENTS_PER_SPAN:
            opened.events.append(event)
        else:
            self._note("content_events_dropped")
        return True

    def _note(self, name: str) -> None:
        if self._count is not None:
            self._count(name, 1)

    def ended(self, span_id: int) -> Opened | None:
        """Stop following ``span_id``; what was gathered for it."""
        return self._open.pop(span_id, None)

    def clear(self) -> None:
        """Forget everything (a forked child: the parent's open spans are not its own)."""
        self._open = {}
