"""LightSpan: the span of a record in the default mode, where tcc_otel owns the export.

It implements OpenTelemetry's ``Span`` API, so it can be the active span (spans the user
starts under it nest, ``propagate.inject`` carries it), but it skips the SDK's per-attribute
validation and span processors: on ``end()`` it is handed to the export pipeline as it is, and
the record's attributes are derived and encoded on the export thread.
"""

from __future__ import annotations

import os
import random
import time
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.trace import (
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.util import types

from tcc_otel._export import _wire as _wire
from tcc_otel._schema import _keys as attrs
from tcc_otel._schema._limits import fit_attributes
from tcc_otel._schema._values import report_limits

if TYPE_CHECKING:
    from tcc_otel._export._pipeline import ExportPipeline

_ids = random.Random()  # our own generator: an application's random.seed() must not repeat ids
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_KINDS = {kind: kind.value + 1 for kind in SpanKind}  # API enum -> OTLP number
_STATUS = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}


class Deferred(Protocol):
    """Supplies the attributes of an ended record when it is encoded (export thread)."""

    def _final_attributes(self) -> dict[str, types.AttributeValue]: ...

    def _count_on_export(self, name: str, n: int) -> None:
        """Add ``n`` to the counter ``name`` of ``stats()`` (export thread)."""
        ...


def new_span_id() -> int:
    """A random non-zero 64-bit span id."""
    return _ids.getrandbits(64) or 1


def new_trace_id() -> int:
    """A random non-zero 128-bit trace id."""
    return _ids.getrandbits(128) or 1


def new_uuid() -> str:
    """A random UUID4 string, without the system call ``uuid.uuid4()`` makes."""
    bits = _ids.getrandbits(128)
    bits = (bits & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class LightSpan(Span):
    """A recording span that the export pipeline encodes itself. Thread-safe enough for the
    Span API's use: each call replaces or appends whole values."""

    __slots__ = (
        "_attrs",
        "_context",
        "_deferred",
        "_end",
        "_events",
        "_kind",
        "_name",
        "_parent",
        "_sink",
        "_span_id",
        "_start",
        "_status",
        "_trace_id",
        "_trace_state",
        "local",
        "run_id",
    )

    def __init__(
        self,
        name: str,
        kind: SpanKind,
        parent: SpanContext | None,
        attributes: dict[str, types.AttributeValue],
        run_id: str,
        sink: ExportPipeline | None,
        local: bool = True,
    ) -> None:
        if parent is not None and parent.is_valid:
            trace_id, trace_state = parent.trace_id, parent.trace_state
        else:
            parent, trace_id, trace_state = None, new_trace_id(), None
        # The SpanContext is made only when asked for: most child spans never need one.
        self._trace_id = trace_id
        self._span_id = new_span_id()
        self._trace_state = trace_state
        self._context: SpanContext | None = None
        self._parent = parent
        self._name = name
        self._kind = _KINDS[kind]
        self._attrs = attributes
        self._events: list[tuple[str, int, Mapping[str, Any] | None]] | None = None
        self._status: tuple[int, str | None] = (0, None)
        self._start = time.time_ns()
        self._end = 0
        self._deferred: Deferred | None = None
        self._sink = sink
        self.run_id = run_id
        self.local = local  # its run is a run of this process: it waits for the run span

    # --- the Span API -----------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        context = self._context
        if context is None:
            context = self._context = SpanContext(
                self._trace_id,
                self._span_id,
                is_remote=False,
                trace_flags=_SAMPLED,
                trace_state=self._trace_state,
            )
        return context

    def is_recording(self) -> bool:
        return not self._end

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        if not self._end:
            self._attrs.update(attributes)

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if not self._end:
            self._attrs[key] = value

    def add_event(
        self,
        name: str,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
    ) -> None:
        if self._end:
            return
        if self._events is None:
            self._events = []
        self._events.append((name, timestamp or time.time_ns(), dict(attributes or {})))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        """Links are not part of the TCC records; accepted and ignored."""

    def update_name(self, name: str) -> None:
        if not self._end:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end:
            return
        code = status.status_code if isinstance(status, Status) else status
        if isinstance(status, Status):
            description = status.description
        if code is StatusCode.UNSET or self._status[0] == 1:
            return  # as in the SDK: OK is final, UNSET changes nothing
        self._status = (_STATUS[code], description if code is StatusCode.ERROR else None)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        cls = type(exception)
        module, qualname = cls.__module__, cls.__qualname__
        event: dict[str, types.AttributeValue] = {
            "exception.type": qualname if module in ("", "builtins") else f"{module}.{qualname}",
            "exception.message": str(exception),
            "exception.stacktrace": "".join(
                traceback.format_exception(cls, exception, exception.__traceback__)
            ),
            "exception.escaped": str(escaped),
        }
        event.update(attributes or {})
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end:
            return
        self._end = end_time or time.time_ns()
        if self._sink is not None:
            self._sink.submit(self, self._is_run())

    # --- for the record and the pipeline ----------------------------------------------------

    def defer(self, record: Deferred) -> None:
        """Take the record's attributes from ``record`` when encoding, not now."""
        self._deferred = record

    def _is_run(self) -> bool:
        """Whether this is a run's span (the one its children wait for)."""
        return self._attrs.get(attrs.TCC_TYPE) == attrs.SpanKind.RUN.value

    def _encode(self, limits: SpanLimits | None = None) -> bytes:
        """The span as an OTLP ``Span`` message (export thread), within ``limits``: see
        ``_limits.fit_attributes``; what they cut is counted in the record's ``stats()``."""
        attributes = self._attrs
        deferred = self._deferred
        if deferred is not None:
            attributes = {**attributes, **deferred._final_attributes()}
            self._deferred = None  # record <-> span is a cycle: break it so refcounting frees both
        dropped = 0
        if limits is not None:
            max_count = limits.max_span_attributes
            max_length = limits.max_span_attribute_length
            fitted = fit_attributes(attributes, max_count, max_length)
            attributes, dropped = fitted.attributes, fitted.dropped
            if deferred is not None and (dropped or fitted.truncated):
                kind = attributes.get(attrs.TCC_TYPE)
                report_limits(
                    deferred._count_on_export, fitted, max_count, max_length, kind, provider=False
                )
        parent = self._parent
        code, message = self._status
        return _wire.span(
            trace_id=self._trace_id,
            span_id=self._span_id,
            parent_id=parent.span_id if parent is not None else None,
            parent_remote=bool(parent is not None and parent.is_remote),
            name=self._name,
            kind=self._kind,
            start_ns=self._start,
            end_ns=self._end,
            attrs=attributes,
            events=self._events or (),
            status_code=code,
            status_message=message,
            trace_state=_wire.trace_state_text(self._trace_state),
            dropped_attributes=dropped,
        )

    def __repr__(self) -> str:
        return f"LightSpan({self._name!r}, span_id={self._span_id:016x})"


def _reseed() -> None:
    _ids.seed()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)
