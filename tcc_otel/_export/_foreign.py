"""Spans of other GenAI instrumentations inside a run, on their way to TCC.

``take`` (caller's thread, when such a span ends) reads it with ``_schema._genai``: an LLM call
becomes a step and a tool span a tool call, in the copy bound for TCC; when a record of ours
encloses the call (``with r.step():`` around an instrumented request), that record takes the
call's fields instead (its own win) and the span stays a plain child, so each request counts
once. The span itself is never changed: the application's exporters get it as it was written.
``encode`` (export thread) writes TCC's copy.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, Union

from opentelemetry.sdk.trace import Event as SdkEvent
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits
from opentelemetry.util.types import AttributeValue

from tcc_otel._export import _wire
from tcc_otel._export._encode import fit
from tcc_otel._export._inside import Inside
from tcc_otel._records._step import Step
from tcc_otel._records._tool_call import ToolCall
from tcc_otel._schema import _genai
from tcc_otel._schema import _keys as keys
from tcc_otel._schema._build import STEP, Fields, Snapshot, attributes
from tcc_otel._schema._calls import Event, is_content_key, is_read_key
from tcc_otel._schema._from_semconv import CONTENT_EVENTS


class Counts(Protocol):
    """Where a step read from an instrumented call counts: its open run."""

    def count_step(self, fields: Fields) -> None: ...


class Foreign(NamedTuple):
    """Another instrumentation's span of a run, and what TCC's copy of it is."""

    span: ReadableSpan
    kind: str | None
    """``step`` or ``tool_call``: TCC's copy is one (read in full on the export thread);
    ``None``: a plain span."""
    events: tuple[Event, ...]
    """Content events logged for it (log records)."""
    enclosed: bool
    """A record of ours took its fields: TCC's copy is a plain span."""
    capture_content: bool
    content_once: bool


Taken = Union[ReadableSpan, Foreign]


class Reader(NamedTuple):
    """What reading other instrumentations' spans needs, one per configuration."""

    inside: Inside
    """Spans followed since they started inside a run (shared by a client's processors)."""
    open_run: Callable[[str], Counts | None]
    """The open run with that id, if any."""
    capture_content: bool
    content_once: bool


def take(span: ReadableSpan, run_id: str, reader: Reader) -> Taken:
    """What goes to export for another instrumentation's ended ``span`` of run ``run_id``:
    the span itself when TCC's copy is the same, else a ``Foreign``. Caller's thread: it reads
    only what counting needs (kind, models, tokens), and content only for a record of ours
    around the call that lacks it; the export thread reads the rest."""
    capture, once = reader.capture_content, reader.content_once
    opened = reader.inside.ended(span.context.span_id if span.context is not None else 0)
    logged = () if opened is None else tuple(opened.events)
    attributes = span.attributes or {}
    call = _genai.read(attributes, logged, content=False)
    if call is None:
        return span if capture else Foreign(span, None, (), False, False, once)
    record = None if opened is None else opened.record
    own = Step if call.kind == STEP else ToolCall
    if isinstance(record, own) and record.run_id == run_id:
        if record.lacks_content():  # even with capture off: a step needs them to end
            call = _genai.read(attributes, _events(span, logged)) or call
        if record.fill(_genai.fields(call)):
            return Foreign(span, None, (), True, capture, once)
    if call.kind == STEP:
        run = reader.open_run(run_id)
        if run is not None:
            run.count_step(_genai.fields(call))
    return Foreign(span, call.kind, logged, False, capture, once)


def _events(span: ReadableSpan, logged: tuple[Event, ...]) -> list[Event]:
    """The content events of a span: those logged for it, then its own content span events."""
    found = list(logged)
    found.extend(Event(e.name, None, e.attributes or {}) for e in span.events if _content(e.name))
    return found


def _content(event_name: str) -> bool:
    """Whether a span event carries a call's messages (folded into TCC's copy, or left out
    with content capture off); per-chunk events of a stream stay, with their times."""
    return event_name in CONTENT_EVENTS


def _record_id(span: ReadableSpan) -> str:
    """A stable UUID for a step or tool call read from a span: the same span, the same id."""
    context = span.get_span_context()
    trace_id, span_id = (context.trace_id, context.span_id) if context is not None else (0, 0)
    return str(uuid.UUID(int=((trace_id & (2**64 - 1)) << 64) | span_id, version=4))


def snapshot_of(item: Foreign) -> Snapshot | None:
    """The step or tool call TCC's copy of the span is, read in full (export thread)."""
    if item.kind is None:
        return None
    call = _genai.read(item.span.attributes or {}, _events(item.span, item.events))
    if call is None:
        return None
    found = _genai.fields(call)
    found[keys.TCC_TYPE] = call.kind
    found[keys.TCC_STEP_ID if call.kind == STEP else keys.TCC_TOOL_CALL_ID] = _record_id(item.span)
    return Snapshot(call.kind, found, item.capture_content, content_once=item.content_once)


def tcc_attributes(item: Foreign) -> dict[str, AttributeValue]:
    """TCC's copy of the span's attributes (export thread)."""
    found: Mapping[str, Any] = item.span.attributes or {}
    if item.enclosed:
        return {k: v for k, v in found.items() if not is_read_key(k)}
    snapshot = snapshot_of(item)
    if snapshot is not None:
        # The call's content is in the snapshot, in the conventions' shape: once is enough.
        start = {k: v for k, v in found.items() if not is_content_key(k)}
        return attributes(snapshot, start)
    if not item.capture_content:
        return {k: v for k, v in found.items() if not is_content_key(k)}
    return dict(found)


class Copy(NamedTuple):
    """TCC's copy of another instrumentation's span: what differs from the span itself."""

    attributes: dict[str, AttributeValue]
    """Within the span limits."""
    dropped: int
    """Attributes the limits left out."""
    events: list[SdkEvent] | None
    """``None``: the span's own."""


def tcc_copy(item: Foreign, limits: SpanLimits, count: Callable[[str, int], None]) -> Copy:
    """TCC's copy of the span within the ``OTEL_*`` span limits; ``count`` adds what they cut
    to ``stats()`` counters (export thread)."""
    fitted = fit(tcc_attributes(item), limits, count)
    keep_events = item.capture_content and item.kind is None and not item.enclosed
    events = None if keep_events else [e for e in item.span.events if not _content(e.name)]
    return Copy(fitted.attributes, fitted.dropped, events)


def encode(item: Foreign, limits: SpanLimits, count: Callable[[str, int], None]) -> bytes:
    """TCC's copy of the span, encoded (export thread)."""
    copy = tcc_copy(item, limits, count)
    return _wire.sdk_span(item.span, copy.attributes, copy.events, copy.dropped)
