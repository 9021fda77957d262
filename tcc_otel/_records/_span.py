"""LightSpan: the span of a record in the default mode, where tcc_otel owns the export.

It implements OpenTelemetry's ``Span`` API, so it can be the active span (spans the user
starts under it nest, ``propagate.inject`` carries it), but it skips the SDK's per-attribute
validation and span processors: setters store plain values, and ``end()`` hands it, with the
record's ``Snapshot``, to its ``Sink``. Export reads its public fields; it never calls back.
"""

from __future__ import annotations

import os
import random
import time
import traceback
from collections.abc import Mapping
from typing import Any, Protocol

from opentelemetry.trace import (
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.util import types

from tcc_otel._schema._build import Snapshot
from tcc_otel._schema._kinds import is_run
from tcc_otel._schema._values import to_id

_ids = random.Random()  # our own generator: an application's random.seed() must not repeat ids
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_KINDS = {kind: kind.value + 1 for kind in SpanKind}  # API enum -> OTLP number
_STATUS = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}

Event = tuple[str, int, Mapping[str, Any]]
"""An event: name, time in ns since the epoch, attributes."""


class Sink(Protocol):
    """Where ended LightSpans go (the export pipeline)."""

    def submit(self, span: LightSpan, run_end: bool) -> None:
        """Take an ended span; never blocks or raises."""
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


def id_or_new(given: object) -> str:
    """The id the caller gave, as an exportable string; a new UUID4 when it gave none
    (``None`` or ``""``, as ``contextcompany`` does)."""
    return new_uuid() if given is None or given == "" else to_id(given)


class LightSpan(Span):
    """A recording span that the export side encodes itself. Thread-safe enough for the Span
    API's use: each call replaces or appends whole values.

    Read by export once ended: ``trace_id``, ``span_id``, ``parent``, ``trace_state``, ``name``
    (a record's is built from its ``snapshot``), ``kind`` (OTLP number), ``start_ns``,
    ``end_ns``, ``attributes`` (given at start or set through the Span API), ``events``,
    ``status`` (OTLP code, message), ``snapshot``, ``run_id``, ``local``.
    """

    __slots__ = (
        "_context",
        "_sink",
        "attributes",
        "end_ns",
        "events",
        "kind",
        "local",
        "name",
        "parent",
        "run_id",
        "snapshot",
        "span_id",
        "start_ns",
        "status",
        "trace_id",
        "trace_state",
    )

    def __init__(
        self,
        name: str,
        kind: SpanKind,
        parent: SpanContext | None,
        attributes: dict[str, types.AttributeValue],
        run_id: str,
        sink: Sink | None,
        local: bool = True,
    ) -> None:
        self.trace_state: TraceState | None = None
        if parent is not None and parent.is_valid:
            self.trace_id, self.trace_state = parent.trace_id, parent.trace_state
        else:
            parent, self.trace_id = None, new_trace_id()
        self.span_id = new_span_id()
        self._context: SpanContext | None = None  # made when asked: most spans never need one
        self.parent = parent
        self.name = name
        self.kind = _KINDS[kind]
        self.attributes = attributes
        self.events: list[Event] | None = None
        self.status: tuple[int, str | None] = (0, None)
        self.start_ns = time.time_ns()
        self.end_ns = 0
        self.snapshot: Snapshot | None = None
        self._sink = sink
        self.run_id = run_id
        self.local = local  # its run is a run of this process: it waits for the run span

    # --- the Span API -----------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        context = self._context
        if context is None:
            context = self._context = SpanContext(
                self.trace_id,
                self.span_id,
                is_remote=False,
                trace_flags=_SAMPLED,
                trace_state=self.trace_state,
            )
        return context

    def is_recording(self) -> bool:
        return not self.end_ns

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        if not self.end_ns:
            self.attributes.update(attributes)

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if not self.end_ns:
            self.attributes[key] = value

    def add_event(
        self,
        name: str,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
    ) -> None:
        if self.end_ns:
            return
        if self.events is None:
            self.events = []
        self.events.append((name, timestamp or time.time_ns(), dict(attributes or {})))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        """Links are not part of the TCC records; accepted and ignored."""

    def update_name(self, name: str) -> None:
        if not self.end_ns:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.end_ns:
            return
        code = status.status_code if isinstance(status, Status) else status
        if isinstance(status, Status):
            description = status.description
        if code is StatusCode.UNSET or self.status[0] == 1:
            return  # as in the SDK: OK is final, UNSET changes nothing
        self.status = (_STATUS[code], description if code is StatusCode.ERROR else None)

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
        if self.end_ns:
            return
        self.end_ns = end_time or time.time_ns()
        if self._sink is not None:
            self._sink.submit(self, self.is_run)

    # --- for the record ---------------------------------------------------------------------

    def finish(self, snapshot: Snapshot) -> None:
        """Take the ended record's snapshot, from which export builds the span's name and
        attributes; call just before ``end()``."""
        self.snapshot = snapshot

    @property
    def is_run(self) -> bool:
        """Whether this is a run's span (the one its children wait for)."""
        return is_run(self.attributes)

    def __repr__(self) -> str:
        return f"LightSpan({self.name!r}, span_id={self.span_id:016x})"


def _reseed() -> None:
    _ids.seed()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)
