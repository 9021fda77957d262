"""The record base: one span, a lock, the ended flag, context managers and end/error plumbing."""

from __future__ import annotations

import json
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from tcc_otel import _attributes as attrs
from tcc_otel._encode import status_text
from tcc_otel._guard import internal_error
from tcc_otel._light import LightSpan

if TYPE_CHECKING:
    from tcc_otel._client import Client, Pipeline

R = TypeVar("R", bound="Record")


class Record:
    """What Run, Step and ToolCall share: a span that starts now and ends once.

    Setters write plain values into ``_fields`` under the lock; ``end()``/``error()`` build the
    span's attributes and end it outside the lock, so processors never run under it.
    """

    __slots__ = (
        "__weakref__",
        "_client",
        "_ended",
        "_fields",
        "_lock",
        "_pipeline",
        "_run_id",
        "_span",
        "_status",
        "_tokens",
    )

    _NAME: ClassVar[str] = "Record"
    _REQUIRED: ClassVar[dict[str, str]] = {}
    """Field key -> the call that sets it; ``end()`` raises ``ValueError`` if one is missing."""

    def __init__(self, client: Client, pipeline: Pipeline, span: Span, run_id: str) -> None:
        self._client = client
        self._pipeline = pipeline
        self._span = span
        self._run_id = run_id
        self._lock = threading.Lock()
        self._ended = False
        self._status: tuple[StatusCode, str | None] | None = None  # set by Run.status()
        self._fields: dict[str, AttributeValue] = {}
        self._tokens: list[Any] | None = None  # context tokens of ``with`` blocks, if any

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
        """Raise if the record already ended; call with the lock held."""
        if self._ended:
            name = self._NAME
            raise RuntimeError(
                f"{name}.{method}() was called after the {name.lower()} already ended; "
                f"set every field before {name}.end() or {name}.error()."
            )

    def _set(self: R, method: str, key: str, value: AttributeValue | None) -> R:
        """Store one converted field (``None`` changes nothing) and return ``self``."""
        with self._lock:
            self._require_open(method)
            if value is not None:
                self._fields[key] = value
        return self

    # --- ending ----------------------------------------------------------------------------

    def end(self) -> None:
        """End the record and hand its span to export.

        Raises:
            ValueError: a required field is missing; the record stays open.
            RuntimeError: the record already ended.
        """
        with self._lock:
            self._require_open("end")
            self._check_complete()
            self._ended = True
        self._finish(None, None)

    def error(self, status_message: str | None = None) -> None:
        """Mark the record as failed and end it; no required field is needed.

        Args:
            status_message: what went wrong; secrets in it are redacted before it is stored.

        Raises:
            RuntimeError: the record already ended.
        """
        with self._lock:
            self._require_open("error")
            self._ended = True
        message = None if status_message is None else status_text(status_message)
        self._finish(message, attrs.ERROR_TYPE_OTHER)

    def _check_complete(self) -> None:
        missing = [call for key, call in self._REQUIRED.items() if key not in self._fields]
        if missing:
            name = self._NAME
            raise ValueError(
                f"{name}.end() needs {' and '.join(missing)} first "
                f"(or call {name}.error() to end it as failed)."
            )

    def _finish(self, error_message: str | None, error_type: str | None) -> None:
        """Write name, status and attributes onto the span and end it. Never raises.

        A LightSpan takes the attributes later, on the export thread: after ``end()`` the
        fields no longer change, so deriving them there gives the same result.
        """
        span = self._span
        try:
            if error_type is None and self._status is not None:
                code, error_message = self._status
                if code is StatusCode.ERROR:
                    error_type = attrs.ERROR_TYPE_OTHER
                else:
                    span.set_status(Status(StatusCode.OK))
            if error_type is not None:
                span.set_attribute(attrs.ERROR_TYPE, error_type)
                span.set_status(Status(StatusCode.ERROR, error_message))
            if isinstance(span, LightSpan):
                span.defer(self)
            else:
                span.set_attributes(self._final_attributes())
            span.update_name(self._span_name())
        except Exception:
            internal_error(f"{self._NAME}.end")
        try:
            span.end()
            self._after_end()
        except Exception:
            internal_error(f"{self._NAME}.end")

    def _final_attributes(self) -> dict[str, AttributeValue]:
        """The attributes written at end, without content when capture is off."""
        attributes = self._attributes()
        if not self._pipeline.capture_content:
            for key in attrs.CONTENT_KEYS.intersection(attributes):
                del attributes[key]
        return attributes

    def _attributes(self) -> dict[str, AttributeValue]:
        """All attributes to write at end; subclasses derive the GenAI ones here."""
        return dict(self._fields)

    def _span_name(self) -> str:
        raise NotImplementedError

    def _after_end(self) -> None:
        """Hook run after the span ended."""

    # --- context managers -------------------------------------------------------------------

    def __enter__(self: R) -> R:
        token = otel_context.attach(trace.set_span_in_context(self._span))
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
        with self._lock:
            if self._ended:  # the body already called end() or error()
                return
            missing: ValueError | None = None
            if exc is None:
                try:
                    self._check_complete()
                except ValueError as err:
                    missing = err
            self._ended = True
        if exc is None and missing is None:
            self._finish(None, None)
            return
        if missing is not None:  # misuse: still end the span so nothing is lost, then say so
            self._finish(status_text(missing), type(missing).__name__)
            raise missing
        assert exc is not None
        if isinstance(exc, Exception):
            try:
                self._span.record_exception(exc)
            except Exception:
                internal_error(f"{self._NAME}.__exit__")
            message = status_text(f"{type(exc).__name__}: {exc}")
        else:  # KeyboardInterrupt, SystemExit, GeneratorExit, CancelledError
            message = type(exc).__name__
        self._finish(message, type(exc).__name__)


def messages_json(role: str, content: str, finish_reason: str | None = None) -> str:
    """One GenAI semconv chat message, as the JSON array the conventions specify."""
    message: dict[str, Any] = {"role": role, "parts": _text_parts(content)}
    if finish_reason is not None:
        message["finish_reason"] = finish_reason
    return json.dumps([message], ensure_ascii=False)


def parts_json(content: str) -> str:
    """GenAI semconv message parts holding one text, as JSON (``gen_ai.system_instructions``)."""
    return json.dumps(_text_parts(content), ensure_ascii=False)


def _text_parts(content: str) -> list[dict[str, str]]:
    return [{"type": "text", "content": content}]
