"""Functions turning caller values into attribute values; bad values warn, never raise. Also
the warn-once log lines of the value rules and span limits."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tcc_otel._log import logger
from tcc_otel._schema._limits import (
    MARKER,
    Capped,
    Fitted,
    cap_content,
    cut_text,
    dumps,
    finite,
    fits,
)
from tcc_otel._schema._redact import redact_text

_warned: set[str] = set()  # topics already warned about in this process


def clean_text(text: str) -> str:
    """Return ``text`` with NUL characters and lone surrogates replaced by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: protobuf would refuse the whole batch
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def status_text(message: object) -> str:
    """A status message as stored: secrets redacted, unexportable characters replaced."""
    return clean_text(redact_text(str(message)))


def to_id(value: object) -> str:
    """An id given by the caller, as an exportable string."""
    return clean_text(value if type(value) is str else str(value))


def warn_dropped(method: str, what: str, value: object) -> None:
    """Log the one warning for a value that was left out of the span."""
    logger.warning(
        "%s: %s, got %s; that field was left out of the span, the rest is kept",
        method,
        what,
        type(value).__name__,
    )


class Unconvertible:
    """A value that could not be converted to text: its type and what went wrong."""

    __slots__ = ("error", "type_name")

    def __init__(self, value: object, error: str) -> None:
        self.type_name = type(value).__name__
        self.error = error

    def __repr__(self) -> str:
        return f"Unconvertible({self.type_name}: {self.error})"


def json_text(value: object, method: str) -> tuple[str, Any] | None:
    """``value`` as JSON text (not yet cleaned) and the value serialised; non-finite numbers
    become strings (one warning per method). Warns and returns ``None`` when it cannot be."""
    try:
        return dumps(value), value
    except ValueError:  # NaN or Infinity (or a circular reference, refused below)
        pass
    except (TypeError, RecursionError):
        warn_dropped(method, "the value must be JSON-serialisable", value)
        return None
    try:
        safe = finite(value)
        text = dumps(safe)
    except (TypeError, ValueError, RecursionError):
        warn_dropped(method, "the value must be JSON-serialisable", value)
        return None
    warn_once(
        f"non-finite {method}",
        "%s: NaN and infinite numbers are not valid JSON; in this %s they were written as the "
        'strings "NaN", "Infinity" and "-Infinity" (warned once per method)',
        method,
        type(value).__name__,
    )
    return text, safe


def raw_text(value: object, method: str) -> str | Unconvertible:
    """A text field before cleaning: ``str`` as is, ``list``/``dict`` as JSON, else ``str()``.
    A value that cannot be converted is warned about and described."""
    if type(value) is str:
        return value
    if isinstance(value, (list, dict, tuple)):
        found = json_text(value, method)
        return Unconvertible(value, "not JSON-serialisable") if found is None else found[0]
    try:
        return str(value)
    except Exception as exc:  # a user __str__ that raises must not break the agent
        warn_dropped(method, "the value must be convertible with str()", value)
        return Unconvertible(value, f"str() raised {_describe(exc)}")


def _describe(exc: Exception) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:  # its own __str__ raises too
        return type(exc).__name__


def to_text(value: object, method: str) -> str | None:
    """A text field: ``str`` as is, ``list``/``dict`` as JSON, anything else ``str()``."""
    text = raw_text(value, method)
    return None if isinstance(text, Unconvertible) else clean_text(text)


def to_content(
    value: object,
    method: str,
    *,
    as_json: bool,
    max_bytes: int,
    max_data_url_bytes: int,
    count: Callable[[str, int], None],
) -> str | Unconvertible | None:
    """A content value (prompt, response, arguments, result, tool definitions) as stored.

    Converted as a text field, or with ``as_json`` a string kept and anything else serialised;
    then capped (``_limits.cap_content``) before anything copies it, cleaned, counted with
    ``count`` and warned about once. ``None`` when it cannot be serialised (warned).
    """
    if value is None:
        return None
    serialised: Any = None
    if as_json and not isinstance(value, str):
        found = json_text(value, method)
        if found is None:
            return None
        text, serialised = found
    else:
        converted = raw_text(value, method)
        if isinstance(converted, Unconvertible):
            return converted
        text = converted
    capped = cap_content(text, max_bytes, max_data_url_bytes, may_be_json=as_json, value=serialised)
    cleaned = None if capped.text is None else clean_text(capped.text)
    if cleaned is not capped.text and cleaned is not None and not fits(cleaned, max_bytes, True):
        # a NUL (1 byte) became U+FFFD (3 bytes); JSON text has its NULs escaped: plain cut
        capped = capped._replace(text=cut_text(cleaned, max_bytes, True), truncated=True)
        cleaned = capped.text
    if capped.truncated or capped.data_urls:
        report_cap(count, capped, method, max_bytes, max_data_url_bytes)
    return cleaned


def warn_once(topic: str, msg: str, *args: object) -> None:
    """Log ``msg % args`` as a warning the first time ``topic`` comes up in this process."""
    if topic in _warned:
        return
    _warned.add(topic)  # a race may log twice; never worth a lock on the caller's thread
    logger.warning(msg, *args)


def report_limits(
    count: Callable[[str, int], None],
    fitted: Fitted,
    max_count: int | None,
    max_length: int | None,
    span_kind: object,
    provider: bool,
) -> None:
    """Count what the span limits did to one span (``attributes_cut``, ``truncated``) and warn
    once per limit, saying how to raise it."""
    if fitted.dropped:
        count("attributes_cut", fitted.dropped)
    if fitted.truncated:
        count("truncated", fitted.truncated)
    if fitted.over_count:
        warn_once(
            "count limit",
            "the span attribute count limit (%s, from %s) left %d attributes out of a %s span: "
            "user metadata and attributes the application set go first, tcc_otel's own are "
            "kept. Raise the limit to keep them; tcc.stats()['attributes_cut'] counts them "
            "(warned once)",
            max_count,
            _source("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT or OTEL_ATTRIBUTE_COUNT_LIMIT", provider),
            fitted.over_count,
            span_kind,
        )
    if fitted.truncated or fitted.too_long:
        warn_once(
            "length limit",
            "the span attribute value length limit (%s characters, from %s) shortened %d "
            "values of a %s span and left out %d JSON values whose structure alone is longer; "
            "JSON values are shortened inside and stay valid JSON. Raise the limit to keep "
            "them whole; tcc.stats()['truncated'] and ['attributes_cut'] count them "
            "(warned once)",
            max_length,
            _source(
                "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT or OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
                provider,
            ),
            fitted.truncated,
            span_kind,
            fitted.too_long,
        )


def _source(env: str, provider: bool) -> str:
    """Where a span limit in force comes from."""
    if provider:
        return f"the SpanLimits of the TracerProvider given to configure(): {env}, or code"
    return env


INT64_MAX = 2**63 - 1
"""Largest integer an OTLP attribute can carry."""


def to_count(value: object, method: str, name: str) -> int | None:
    """A token count: a non-negative ``int`` (``bool`` refused), else warn and return ``None``."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT64_MAX:
        return int(value)
    warn_dropped(method, f"{name} must be a non-negative int below 2**63", value)
    return None


def to_cost(value: object, method: str) -> float | None:
    """A cost: a finite non-negative number (``bool`` refused), else warn and return ``None``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        cost = float(value)
        if math.isfinite(cost) and cost >= 0:
            return cost
    warn_dropped(method, "the cost must be a finite non-negative number", value)
    return None


def to_metadata_value(value: object, method: str, key: str) -> Any:
    """A metadata value: ``str``/``int``/``float``/``bool`` kept, anything else warned, ``None``."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, (bool, float)) or (
        isinstance(value, int) and -INT64_MAX - 1 <= value <= INT64_MAX
    ):
        return value
    warn_dropped(
        method, f"metadata value for {key!r} must be str, int (64-bit), float or bool", value
    )
    return None


def report_cap(
    count: Callable[[str, int], None],
    capped: Capped,
    method: str,
    max_bytes: int,
    max_data_url_bytes: int,
) -> None:
    """Count what the content cap did to one value (``truncated``, ``data_urls_replaced``) and
    warn once for each, naming the setting that decides it."""
    if capped.data_urls:
        count("data_urls_replaced", capped.data_urls)
        warn_once(
            "data url",
            "%s: base64 data: URLs longer than TCC_MAX_DATA_URL_BYTES (%d) are replaced by "
            "'[data URL omitted: <media type>, <length> bytes]'; tcc.stats()"
            "['data_urls_replaced'] counts them (warned once)",
            method,
            max_data_url_bytes,
        )
    if capped.truncated:
        count("truncated", 1)
        warn_once(
            "content cap",
            "%s: a value over TCC_MAX_CONTENT_BYTES (%d UTF-8 bytes) was cut to fit, ending in "
            "'%s' (JSON values are shortened inside and stay valid JSON); raise "
            "TCC_MAX_CONTENT_BYTES to keep more. tcc.stats()['truncated'] counts them "
            "(warned once)",
            method,
            max_bytes,
            MARKER,
        )
