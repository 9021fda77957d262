"""One ended LightSpan as an OTLP ``Span`` message: name and attributes built from its record's
snapshot (``_schema._build``), within the ``OTEL_*`` span limits; what they cut is counted."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.util.types import AttributeValue

from tcc_otel._export import _wire
from tcc_otel._records._span import LightSpan
from tcc_otel._schema import _keys as keys
from tcc_otel._schema._build import attributes, span_name
from tcc_otel._schema._limits import Fitted, fit_attributes
from tcc_otel._schema._values import report_limits


class Prepared(NamedTuple):
    """A LightSpan's name and attributes as they are sent."""

    name: str
    attributes: dict[str, AttributeValue]
    dropped: int
    """Attributes the limits left out."""


def prepare(span: LightSpan, limits: SpanLimits, count: Callable[[str, int], None]) -> Prepared:
    """Build ``span``'s name and attributes from its snapshot and fit them to ``limits``;
    ``count`` adds what the limits did to ``stats()`` counters. Frees the snapshot."""
    found = span.attributes
    snapshot = span.snapshot
    name = span.name
    if snapshot is not None:
        found = attributes(snapshot, found)
        name = span_name(snapshot.kind, snapshot.fields)
        span.snapshot = None  # the fields are not needed any more: free them with the bytes
    fitted = fit(found, limits, count)
    return Prepared(name, fitted.attributes, fitted.dropped)


def fit(
    found: dict[str, AttributeValue], limits: SpanLimits, count: Callable[[str, int], None]
) -> Fitted:
    """A span's attributes within the ``OTEL_*`` span ``limits`` (export thread); ``count``
    adds what the limits did to ``stats()`` counters."""
    max_count = limits.max_span_attributes
    max_length = limits.max_span_attribute_length
    fitted = fit_attributes(found, max_count, max_length)
    if fitted.dropped or fitted.truncated:
        kind = found.get(keys.TCC_TYPE)
        report_limits(count, fitted, max_count, max_length, kind, provider=False)
    return fitted


def light_span(span: LightSpan, limits: SpanLimits, count: Callable[[str, int], None]) -> bytes:
    """``span`` encoded (export thread); ``count`` adds to ``stats()`` counters."""
    return encode_prepared(span, prepare(span, limits, count))


def encode_prepared(span: LightSpan, prepared: Prepared) -> bytes:
    """``span`` encoded with the name and attributes ``prepare`` built for it, which the
    application's own span processors may get too (``_share``)."""
    name, found, dropped = prepared
    parent = span.parent
    code, message = span.status
    return _wire.span(
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_id=parent.span_id if parent is not None else None,
        parent_remote=bool(parent is not None and parent.is_remote),
        name=name,
        kind=span.kind,
        start_ns=span.start_ns,
        end_ns=span.end_ns,
        attrs=found,
        events=span.events or (),
        status_code=code,
        status_message=message,
        trace_state=_wire.trace_state_text(span.trace_state),
        dropped_attributes=dropped,
    )
