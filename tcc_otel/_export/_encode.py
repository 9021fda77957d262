"""One ended LightSpan as an OTLP ``Span`` message: name and attributes built from its record's
snapshot (``_schema._build``), within the ``OTEL_*`` span limits; what they cut is counted.

The span travels as a ``Row`` of plain values, so that the same functions encode it in this
process or in the helper process (``_offload``), which gets the row marshalled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Optional

from opentelemetry.util.types import AttributeValue

from tcc_otel._export import _wire
from tcc_otel._schema import _keys as keys
from tcc_otel._schema._build import Snapshot, attributes, span_name
from tcc_otel._schema._limits import Fitted, fit_attributes
from tcc_otel._schema._values import report_limits

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanLimits

    from tcc_otel._records._span import LightSpan

Row = tuple[Any, ...]
"""An ended LightSpan as plain values (``row``): ids, name, kind, times, attributes, events,
status, trace state and its snapshot as a plain tuple. ``marshal`` can carry it when the
application's values are plain (they nearly always are)."""
SpanLimitValues = tuple[Optional[int], Optional[int]]
"""The attribute count and value length limits."""
Cuts = tuple[int, int, int]
"""What the limits did to a span: ``Fitted``'s over_count, too_long, truncated."""


class Prepared(NamedTuple):
    """A LightSpan's name and attributes as they are sent."""

    name: str
    attributes: dict[str, AttributeValue]
    dropped: int
    """Attributes the limits left out."""


def row(span: LightSpan) -> Row:
    """``span`` as plain values; it keeps its snapshot."""
    parent = span.parent
    snapshot = span.snapshot
    code, message = span.status
    return (
        span.trace_id,
        span.span_id,
        None if parent is None else parent.span_id,
        bool(parent is not None and parent.is_remote),
        span.name,
        span.kind,
        span.start_ns,
        span.end_ns,
        span.attributes,
        span.events,
        code,
        message,
        _wire.trace_state_text(span.trace_state),
        None if snapshot is None else tuple(snapshot),
    )


def limit_values(limits: SpanLimits) -> SpanLimitValues:
    """The two limits ``encode_row`` applies."""
    return limits.max_span_attributes, limits.max_span_attribute_length


def build(found: dict[str, AttributeValue], snapshot: Snapshot | None, name: str) -> Prepared:
    """A span's name and attributes: built from its record's snapshot when it has one."""
    if snapshot is not None:
        found = attributes(snapshot, found)
        name = span_name(snapshot.kind, snapshot.fields)
    return Prepared(name, found, 0)


def encode_row(plain: Row, limits: SpanLimitValues) -> tuple[bytes, Cuts, object]:
    """A row's ``Span`` message, what the limits cut and the ``tcc.type`` they cut it from
    (the helper process's whole job, and the export thread's in this process)."""
    snapshot = None if plain[13] is None else Snapshot(*plain[13])
    name, found, _ = build(plain[8], snapshot, plain[4])
    fitted = fit_attributes(found, *limits)
    body = _message(plain, name, fitted.attributes, fitted.dropped)
    return body, fitted.cuts, found.get(keys.TCC_TYPE)


def report(
    cuts: Cuts, kind: object, limits: SpanLimitValues, count: Callable[[str, int], None]
) -> None:
    """Count (and warn once about) what the span limits cut from one encoded span."""
    if any(cuts):
        report_limits(count, Fitted({}, *cuts), *limits, kind, provider=False)


def light_span(
    span: LightSpan, limits: SpanLimitValues, count: Callable[[str, int], None]
) -> bytes:
    """``span`` encoded within ``limits`` (export thread); ``count`` adds to ``stats()``
    counters. Frees its snapshot."""
    body, cuts, kind = encode_row(row(span), limits)
    span.snapshot = None  # the fields are not needed any more: free them with the bytes
    report(cuts, kind, limits, count)
    return body


def prepare(span: LightSpan, limits: SpanLimits, count: Callable[[str, int], None]) -> Prepared:
    """Build ``span``'s name and attributes from its snapshot and fit them to ``limits``;
    ``count`` adds what the limits did to ``stats()`` counters. Frees the snapshot."""
    name, found, _ = build(span.attributes, span.snapshot, span.name)
    span.snapshot = None  # the fields are not needed any more: free them with the bytes
    fitted = fit(found, limits, count)
    return Prepared(name, fitted.attributes, fitted.dropped)


def fit(
    found: dict[str, AttributeValue], limits: SpanLimits, count: Callable[[str, int], None]
) -> Fitted:
    """A span's attributes within the ``OTEL_*`` span ``limits`` (export thread); ``count``
    adds what the limits did to ``stats()`` counters."""
    values = limit_values(limits)
    fitted = fit_attributes(found, *values)
    report(fitted.cuts, found.get(keys.TCC_TYPE), values, count)
    return fitted


def encode_prepared(span: LightSpan, prepared: Prepared) -> bytes:
    """``span`` encoded with the name and attributes ``prepare`` built for it, which the
    application's own span processors may get too (``_share``)."""
    return _message(row(span), *prepared)


def _message(plain: Row, name: str, found: dict[str, AttributeValue], dropped: int) -> bytes:
    return _wire.span(
        trace_id=plain[0],
        span_id=plain[1],
        parent_id=plain[2],
        parent_remote=plain[3],
        name=name,
        kind=plain[5],
        start_ns=plain[6],
        end_ns=plain[7],
        attrs=found,
        events=plain[9] or (),
        status_code=plain[10],
        status_message=plain[11],
        trace_state=plain[12],
        dropped_attributes=dropped,
    )
