"""Pure functions turning caller values into attribute values; bad values warn, never raise."""

from __future__ import annotations

import json
import math
from typing import Any

from tcc_otel._log import logger
from tcc_otel._redact import redact_text


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


def to_json(value: object, method: str) -> str | None:
    """Serialise ``value`` to a JSON string, or warn and return ``None`` when it cannot be."""
    try:
        return clean_text(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError, RecursionError):
        warn_dropped(method, "the value must be JSON-serialisable", value)
        return None


def to_text(value: object, method: str) -> str | None:
    """A text field: ``str`` as is, ``list``/``dict`` as JSON, anything else ``str()``."""
    if type(value) is str:
        return clean_text(value)
    if isinstance(value, (list, dict, tuple)):
        return to_json(value, method)
    try:
        return clean_text(str(value))
    except Exception:  # a user __str__ that raises must not break the agent
        warn_dropped(method, "the value must be convertible with str()", value)
        return None


def to_json_text(value: object, method: str) -> str | None:
    """A JSON field: a string is kept as is, any other value is serialised to JSON."""
    if isinstance(value, str):
        return clean_text(value)
    return to_json(value, method)


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
