"""The record base: one span, plain fields, the ended flag, context managers, and the end that
hands a frozen snapshot to export (or, on the user's SDK span, writes the built attributes)."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, TypeVar, Union

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from tcc_otel._guard import Guard
from tcc_otel._records._context import RECORD
from tcc_otel._records._road import Road
from tcc_otel._records._span import LightSpan
from tcc_otel._schema import _keys as attrs
from tcc_otel._schema._build import Snapshot, attributes, span_name
from tcc_otel._schema._genai import gaps
from tcc_otel._schema._limits import fit_for_sdk, is_own
from tcc_otel._schema._values import (
    Unconvertible,
    clean_text,
    raw_text,
    report_limits,
    status_text,
    to_content,
    warn_dropped,
    warn_once,
)

R = TypeVar("R", bound="Record")

Converted = Union[AttributeValue, Unconvertible, None]
"""A setter's value after conversion: ``None`` changes nothing; ``Unconvertible`` is
remembered so that ``end()`` can say why a required field is missing."""


class Record:
    """What Run, Step and ToolCall share: a span that starts now and ends once.

    No lock: a setter checks the ended flag and writes one value (atomic under the GIL);
    ending is claimed exactly once (popping a one-element list is atomic), and export gets a
    copy of the fields, so a setter racing an ``end()`` on another thread can neither
    double-end the record nor change what was handed over.
    """

    __slots__ = (
        "__weakref__",
        "_claim",
        "_ended",
        "_fields",
        "_filled",
        "_road",
        "_run_id",
        "_span",
        "_status",
        "_tokens",
        "_unconverted",
    )

    _NAME: ClassVar[str] = "Record"
    """The class name, as messages name the API (``Step.prompt()``); set for each subclass."""
    _KIND: ClassVar[str] = ""
    """``run``, ``step`` or ``tool_call``: which builder makes the span's attributes."""
    _REQUIRED: ClassVar[dict[str, str]] = {}
    """Field key -> the call that sets it; ``end()`` raises ``ValueError`` if one is missing."""
    _CONTENT: ClassVar[tuple[str, ...]] = ()
    """Content field keys a call made inside the record may fill (``lacks_content``)."""
    _END: ClassVar[Guard] = Guard("Record.end")
    _EXIT: ClassVar[Guard] = Guard("Record.__exit__")

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls._NAME = cls.__name__
        cls._END = Guard(f"{cls._NAME}.end")
        cls._EXIT = Guard(f"{cls._NAME}.__exit__")

    def __init__(self, road: Road, span: Span, run_id: str) -> None:
        self._road = road
        self._span = span
        self._run_id = run_id
        self._ended = False
        self._claim = [True]  # popped by whichever call ends the record
        self._status: tuple[StatusCode, str | None] | None = None  # set by status()
        self._fields: dict[str, AttributeValue] = {}
        self._tokens: list[Any] | None = None  # context tokens of ``with`` blocks, if any
        self._unconverted: dict[str, Unconvertible] | None = None  # required fields that failed
        self._filled = False  # took the fields of an instrumented call inside it (``fill``)

    # --- state -----------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        """Id of the run this record belongs to."""
        return self._run_id

    @property
    def ended(self) -> bool:
        """Whether ``end()`` or ``error()`` was called."""
        return self._ended

    @property
    def span(self) -> Span:
        """The OpenTelemetry span carrying this record."""
        return self._span

    def _require_open(self, method: str) -> None:
        """Raise if the record already ended."""
        if self._ended:
            self._raise_ended(method)

    def _raise_ended(self, method: str) -> None:
        name = self._NAME
        raise RuntimeError(
            f"{name}.{method}() was called after the {name.lower()} already ended; "
            f"set every field before {name}.end() or {name}.error()."
        )

    def _claim_end(self, method: str) -> bool:
        """Mark the record ended, once: ``False`` if another call ended it first."""
        try:
            self._claim.pop()
        except IndexError:
            return False
        self._ended = True
        return True

    def _set(self: R, method: str, key: str, value: Converted) -> R:
        """Store one converted field (``None`` changes nothing) and return ``self``."""
        if self._ended:
            self._raise_ended(method)
        if type(value) is str and not self._unconverted:  # the common case, inline
            self._fields[key] = value
        else:
            self._store(key, value)
        return self

    def _set_all(self: R, method: str, values: dict[str, Converted]) -> R:
        """Store several converted fields of one setter call (``None`` leaves one as it is)
        and return ``self``."""
        self._require_open(method)
        for key, value in values.items():
            self._store(key, value)
        return self

    def _store(self, key: str, value: Converted) -> None:
        """Write one converted field; call with the lock held."""
        if value is None:
            return
        if isinstance(value, Unconvertible):
            if key in self._REQUIRED:
                if self._unconverted is None:
                    self._unconverted = {}
                self._unconverted[key] = value
            return
        self._fields[key] = value
        if self._unconverted:
            self._unconverted.pop(key, None)

    def _text(self, value: Any, method: str) -> str | Unconvertible | None:
        """A text field (not content): ``str`` as is, ``list``/``dict`` as JSON, else
        ``str()``, cleaned. Call without the lock."""
        if type(value) is str:
            return clean_text(value)
        if value is None:
            return None
        text = raw_text(value, method)
        return text if isinstance(text, Unconvertible) else clean_text(text)

    def _content(
        self, value: Any, method: str, *, as_json: bool = False
    ) -> str | Unconvertible | None:
        """A content value within this client's caps (see ``to_content``). Call without the
        lock: a big value takes time."""
        road = self._road
        if type(value) is str and len(value) <= road.short_content:
            return clean_text(value)  # too short for a cap or a long data URL to apply
        return to_content(
            value,
            method,
            as_json=as_json,
            max_bytes=road.max_content_bytes,
            max_data_url_bytes=road.max_data_url_bytes,
            count=road.note,
        )

    def status(self: R, code: Any, message: Any = None) -> R:
        """Set the status: ``0`` success, ``2`` error with ``message`` (redacted). ``end()``
        still needs the required fields; another code is warned about and ignored."""
        if code is None:
            return self._set("status", "", None)
        if type(code) is not int or code not in (0, 2):
            warn_dropped(
                f"{self._NAME}.status()", "the code must be 0 (success) or 2 (error)", code
            )
            return self._set("status", "", None)
        text = None if message is None else status_text(message)
        self._require_open("status")
        self._status = (StatusCode.OK, None) if code == 0 else (StatusCode.ERROR, text)
        return self

    def lacks_content(self) -> bool:
        """Whether a content field of this record (a step's prompt or response, a tool call's
        arguments or result) is not set yet: a call made inside it may fill it (``fill``)."""
        return not self._filled and any(key not in self._fields for key in self._CONTENT)

    def fill(self, found: Mapping[str, AttributeValue]) -> bool:
        """Take the fields of an instrumented call made inside this record (another
        instrumentation's span, read by ``_schema._genai``) where this record has none: the
        record's own fields win. Once per record; ``False`` if it ended or took one already."""
        if self._ended or self._filled:
            return False
        self._filled = True
        fields = self._fields
        for key, value in gaps(fields, found).items():
            if key in attrs.CONTENT_KEYS and type(value) is str:
                converted = self._content(value, f"{self._NAME} (instrumented call)")
                if isinstance(converted, str):
                    fields[key] = converted
            else:
                fields[key] = value
            if self._unconverted:
                self._unconverted.pop(key, None)
        return True

    # --- ending ----------------------------------------------------------------------------

    def end(self) -> None:
        """End the record and hand its span to export.

        Raises:
            ValueError: a required field is missing; the record stays open.
            RuntimeError: the record already ended.
        """
        self._require_open("end")
        self._check_complete()
        if not self._claim_end("end"):
            self._raise_ended("end")
        self._finish(None, None)

    def error(self, status_message: str | None = None) -> None:
        """Mark the record as failed and end it; no required field is needed.

        Args:
            status_message: what went wrong; secrets in it are redacted before it is stored.

        Raises:
            RuntimeError: the record already ended.
        """
        if not self._claim_end("error"):
            self._raise_ended("error")
        message = None if status_message is None else status_text(status_message)
        self._finish(message, attrs.ERROR_TYPE_OTHER)

    def _check_complete(self) -> None:
        fields = self._fields
        for key in self._REQUIRED:
            if key not in fields:
                break
        else:
            return
        missing = [(key, call) for key, call in self._REQUIRED.items() if key not in fields]
        name = self._NAME
        for key, call in missing:
            failed = (self._unconverted or {}).get(key)
            if failed is not None:
                raise ValueError(
                    f"{name}.end() needs {call} first: the value given to it, of type "
                    f"{failed.type_name}, could not be converted to text ({failed.error}), so "
                    f"it was left out. Pass a str, or call {name}.error() to end it as failed."
                )
        raise ValueError(
            f"{name}.end() needs {' and '.join(call for _, call in missing)} first "
            f"(or call {name}.error() to end it as failed)."
        )

    def _finish(self, error_message: str | None, error_type: str | None) -> None:
        """Set the status, hand the snapshot over and end the span. Never raises.

        A LightSpan takes the snapshot and export builds name and attributes from it on its
        own thread (the fields no longer change); an SDK span gets them built now.
        """
        span = self._span
        snapshot: Snapshot | None = None
        with self._END:
            if error_type is None and self._status is not None:
                code, error_message = self._status
                if code is StatusCode.ERROR:
                    error_type = attrs.ERROR_TYPE_OTHER
                else:
                    span.set_status(Status(StatusCode.OK))
            if error_type is not None:
                span.set_attribute(attrs.ERROR_TYPE, error_type)
                span.set_status(Status(StatusCode.ERROR, error_message))
            snapshot = self._snapshot()
            if isinstance(span, LightSpan):
                span.finish(snapshot)
            else:
                self._write_within_limits(span, attributes(snapshot))
                span.update_name(span_name(snapshot.kind, snapshot.fields))
        with self._END:
            span.end()
            self._after_end(snapshot)

    def _write_within_limits(self, span: Span, final: dict[str, AttributeValue]) -> None:
        """Provider mode: write the attributes so that the SDK span's own limits keep ours
        (see ``_limits.fit_for_sdk``); count what was cut (without a lock: caller thread) and
        add it to the span's dropped-attributes count."""
        limits = getattr(span, "_limits", None)  # the SDK span enforces its provider's limits
        max_count = _limit(limits, "max_span_attributes")
        max_length = _limit(limits, "max_span_attribute_length")
        present = _attributes_of(span)
        fitted = fit_for_sdk(present, final, max_count, max_length)
        evicted = 0
        if max_count is not None and len(present) + len(fitted.attributes) > max_count:
            keys = len(set(present).union(fitted.attributes))
            span.set_attributes(fitted.attributes)
            evicted = keys - len(_attributes_of(span))  # what the SDK evicted for good
        else:
            span.set_attributes(fitted.attributes)
        if fitted.dropped:
            bounded = getattr(span, "_attributes", None)
            if isinstance(bounded, BoundedAttributes):
                bounded.dropped += fitted.dropped  # the SDK's count; it has no public setter
        if fitted.dropped or fitted.truncated or evicted:
            report_limits(
                self._road.note,
                fitted._replace(over_count=fitted.over_count + evicted),
                max_count,
                max_length,
                self._NAME,
                provider=True,
            )
        if max_count is not None and len(fitted.attributes) > max_count:
            _warn_if_ours_evicted(fitted.attributes, max_count, self._NAME)

    def _snapshot(self) -> Snapshot:
        """What export needs of the ended record (a run adds its steps)."""
        road = self._road
        return Snapshot(
            self._KIND, dict(self._fields), road.capture_content, content_once=road.content_once
        )

    def _after_end(self, snapshot: Snapshot | None) -> None:
        """Hook run after the span ended, with what was handed to export (``None`` if a bug
        stopped that)."""

    # --- context managers -------------------------------------------------------------------

    def __enter__(self: R) -> R:
        context = otel_context.set_value(RECORD, self, trace.set_span_in_context(self._span))
        token = otel_context.attach(context)
        if self._tokens is None:
            self._tokens = [token]
        else:
            self._tokens.append(token)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._exit(exc)
        finally:
            if self._tokens:
                otel_context.detach(self._tokens.pop())
        # returns None: the caller's exception keeps propagating untouched

    async def __aenter__(self: R) -> R:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _exit(self, exc: BaseException | None) -> None:
        if self._ended:  # the body already called end() or error()
            return
        missing: ValueError | None = None
        if exc is None:
            try:
                self._check_complete()
            except ValueError as err:
                missing = err
        if not self._claim_end("__exit__"):
            return  # another thread ended it meanwhile
        if exc is None and missing is None:
            self._finish(None, None)
            return
        if missing is not None:  # misuse: still end the span so nothing is lost, then say so
            self._finish(status_text(missing), type(missing).__name__)
            raise missing
        assert exc is not None
        if isinstance(exc, Exception):
            with self._EXIT:
                self._span.record_exception(exc)
            message = status_text(f"{type(exc).__name__}: {exc}")
        else:  # KeyboardInterrupt, SystemExit, GeneratorExit, CancelledError
            message = type(exc).__name__
        self._finish(message, type(exc).__name__)


def _limit(limits: object, name: str) -> int | None:
    """One limit of an SDK ``SpanLimits`` (``None``: no limit, or not an SDK span)."""
    value = getattr(limits, name, None)
    return value if isinstance(value, int) and value >= 0 else None


def _warn_if_ours_evicted(
    written: Mapping[str, AttributeValue], max_count: int, record: str
) -> None:
    """Warn once when the user's provider keeps fewer attributes than tcc_otel's own."""
    own = sum(1 for key in written if is_own(key))
    if own > max_count:
        warn_once(
            "provider count limit",
            "the TracerProvider given to configure() keeps %d attributes per span, fewer than "
            "the %d tcc_otel writes on this %s span, so it dropped some of them; raise "
            "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT (or max_span_attributes of its SpanLimits) to at "
            "least %d (warned once)",
            max_count,
            own,
            record,
            own,
        )


def _attributes_of(span: Span) -> Mapping[str, AttributeValue]:
    """The attributes an SDK span holds now (empty for other spans)."""
    found = getattr(span, "attributes", None)
    return found if isinstance(found, Mapping) else {}
