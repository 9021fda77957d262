"""The received-span model: spans and requests as plain Python values that compare with ``==``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SpanKey = tuple[str, str]
"""``(trace_id, span_id)``: what names a span uniquely."""


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as received, decoded to plain Python values so whole spans compare with ``==``."""

    trace_id: str
    """32 lower-case hex digits."""
    span_id: str
    """16 lower-case hex digits."""
    parent_span_id: str | None
    """16 lower-case hex digits, or ``None`` for a root span."""
    name: str
    kind: str
    """``INTERNAL``, ``SERVER``, ``CLIENT``, ``PRODUCER``, ``CONSUMER`` or ``UNSPECIFIED``."""
    start_ns: int
    end_ns: int
    status_code: str
    """``UNSET``, ``OK`` or ``ERROR``."""
    status_message: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    """``(name, attributes)`` per event, in the order sent."""
    resource: dict[str, Any]
    """Attributes of the resource that sent the span."""
    scope_name: str
    """Name of the instrumentation scope (the tracer's name)."""

    @property
    def key(self) -> SpanKey:
        """``(trace_id, span_id)``."""
        return (self.trace_id, self.span_id)

    @property
    def parent_key(self) -> SpanKey | None:
        """``(trace_id, parent_span_id)``, or ``None`` for a root span."""
        parent = self.parent_span_id
        return None if parent is None else (self.trace_id, parent)

    @property
    def duration_ms(self) -> float:
        """End minus start, in milliseconds."""
        return (self.end_ns - self.start_ns) / 1e6


@dataclass(frozen=True)
class ReceivedRequest:
    """One HTTP request the receiver answered."""

    path: str
    headers: dict[str, str]
    """Request headers with lower-case names."""
    body_size: int
    """Body bytes as sent: before decompression, without chunk framing."""
    span_count: int
    """Spans decoded from the body; 0 when it was not decoded."""
    status: int
    """HTTP status the receiver answered with."""
