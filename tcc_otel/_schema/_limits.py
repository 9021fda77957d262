"""Limits on attribute values and counts, each rule written once. Pure: no state, no I/O.

- **Count** (``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT``, else ``OTEL_ATTRIBUTE_COUNT_LIMIT``; 128 by
  default): tcc_otel's own attributes (``is_own``) are always kept; the others (user metadata
  ``tcc.metadata.*``, attributes the application set on the span) fill the room left, in the
  order they were set, and the rest is cut. What is cut is the span's dropped-attributes count.
- **Length** (``OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT``, else
  ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``; characters): a JSON value (``JSON_KEYS``, when it parses)
  is shortened inside, in its strings, so it stays valid JSON; when even its skeleton (every
  string emptied) is too long it is left out. A plain string is cut and ends in ``MARKER`` when
  the limit leaves room for it.
- **Content cap** (``TCC_MAX_CONTENT_BYTES``; UTF-8 bytes): the same cutting, for each prompt,
  response, argument, result and tool definition.
- **Data URLs**: a base64 ``data:`` URL longer than ``TCC_MAX_DATA_URL_BYTES`` inside content is
  replaced by ``[data URL omitted: <media type>, <n> bytes]`` (``n``: the URL's length).
- **Non-finite numbers**: NaN, Infinity and -Infinity inside a JSON value become the JSON strings
  ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final, NamedTuple, Union, cast

from opentelemetry.util.types import AttributeValue

from tcc_otel._schema import _keys as attrs

MARKER: Final = "...[truncated]"
"""Ends a value, or a string inside a JSON value, that a limit shortened. ASCII, so that an
ASCII text stays stored at one byte per character once cut."""
DATA_URL_PLACEHOLDER: Final = "[data URL omitted: {media_type}, {size} bytes]"
"""Replaces a long base64 data URL; ``size`` is the URL's length, ``media_type`` as written in
it (``text/plain`` when it names none, as RFC 2397 says)."""
NON_FINITE_NAN: Final = "NaN"
NON_FINITE_INFINITY: Final = "Infinity"
NON_FINITE_NEGATIVE_INFINITY: Final = "-Infinity"
JSON_KEYS: Final = frozenset(
    {
        attrs.GEN_AI_INPUT_MESSAGES,
        attrs.GEN_AI_OUTPUT_MESSAGES,
        attrs.GEN_AI_SYSTEM_INSTRUCTIONS,
        attrs.GEN_AI_TOOL_DEFINITIONS,
        attrs.STEP_TOOL_DEFINITIONS,
        attrs.TOOL_CALL_ARGS,
        attrs.TOOL_CALL_RESULT,
        attrs.GEN_AI_TOOL_CALL_ARGUMENTS,
        attrs.GEN_AI_TOOL_CALL_RESULT,
    }
)
"""Attributes whose value is JSON text when it parses as a JSON object, array or string."""

_OWN_PREFIXES = ("tcc.", "gen_ai.")
_SHORT = 32  # a JSON string this short is kept whole while there is room: cutting it saves little
_MARKER_SIZE = {False: len(MARKER), True: len(MARKER.encode("utf-8"))}  # characters, bytes
_DATA_URL = re.compile(
    r"data:([A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+)?"  # media type
    r"(?:;[A-Za-z0-9!#$&^_.+-]+=[A-Za-z0-9!#$&^_.+%-]*)*"  # parameters
    r";base64,[A-Za-z0-9+/]*=*"
)
JsonContainer = Union[dict[str, Any], list[Any], str]


class Capped(NamedTuple):
    """One content value after the content cap."""

    text: str | None
    """Within the cap; ``None`` when a JSON value's structure alone is over it."""
    truncated: bool
    """Whether it was cut (or left out)."""
    data_urls: int
    """Data URLs replaced by a placeholder."""


class Fitted(NamedTuple):
    """One span's attributes after the OpenTelemetry span limits."""

    attributes: dict[str, AttributeValue]
    """What to write, in the order to write it."""
    over_count: int
    """Attributes cut by the count limit."""
    too_long: int
    """JSON attributes left out: even their skeleton is over the length limit."""
    truncated: int
    """Values shortened to the length limit."""

    @property
    def dropped(self) -> int:
        """Attributes left out: the span's dropped-attributes count."""
        return self.over_count + self.too_long

    @property
    def cuts(self) -> tuple[int, int, int]:
        """``(over_count, too_long, truncated)``: what the limits did, without the values."""
        return self.over_count, self.too_long, self.truncated


# --- which attribute is ours ------------------------------------------------------------------


def is_own(key: str) -> bool:
    """Whether ``key`` is tcc_otel's own attribute, kept whatever the count limit: ``tcc.*``
    except user metadata (``tcc.metadata.*``), ``gen_ai.*`` and ``error.type``."""
    if key.startswith(_OWN_PREFIXES):
        return not key.startswith(attrs.METADATA_PREFIX)
    return key == attrs.ERROR_TYPE


# --- measuring and cutting text -----------------------------------------------------------------


def utf8_len(text: str) -> int:
    """UTF-8 bytes of ``text`` (a lone surrogate counts 3)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def fits(text: str, limit: int, in_bytes: bool = False) -> bool:
    """Whether ``text`` is within ``limit`` characters (or UTF-8 bytes); measures bytes only
    when the length alone cannot tell."""
    length = len(text)
    if length > limit:
        return False
    return not in_bytes or length * 4 <= limit or utf8_len(text) <= limit


def cut_text(text: str, limit: int, in_bytes: bool = False) -> str:
    """``text`` within ``limit`` characters (or UTF-8 bytes): as it is when it fits, else its
    start followed by ``MARKER``, or only its start when the limit leaves no room for both."""
    if fits(text, limit, in_bytes):
        return text
    room = limit - _MARKER_SIZE[in_bytes]
    if room < 1:
        return _head(text, limit, in_bytes)
    return _head(text, room, in_bytes) + MARKER


def _head(text: str, limit: int, in_bytes: bool) -> str:
    """The longest start of ``text`` within ``limit`` characters (or UTF-8 bytes)."""
    head = text[:limit]  # every character is at least one byte: never encode more than this
    if not in_bytes or head.isascii():
        return head
    return head.encode("utf-8", "surrogatepass")[:limit].decode("utf-8", "ignore")


def _size(text: str, in_bytes: bool) -> int:
    return utf8_len(text) if in_bytes else len(text)


# --- data URLs ----------------------------------------------------------------------------------


def data_url_placeholder(media_type: str, size: int) -> str:
    """What replaces a base64 data URL of ``size`` characters."""
    return DATA_URL_PLACEHOLDER.format(media_type=media_type, size=size)


def replace_data_urls(text: str, max_bytes: int) -> tuple[str, int]:
    """``text`` with each base64 ``data:`` URL longer than ``max_bytes`` replaced by a
    placeholder, and how many were replaced. Texts too short to hold one are not scanned."""
    if len(text) <= max_bytes or "data:" not in text:
        return text, 0
    pieces: list[str] = []
    start = 0
    for match in _DATA_URL.finditer(text):
        size = match.end() - match.start()
        if size > max_bytes:
            pieces.append(text[start : match.start()])
            pieces.append(data_url_placeholder(match.group(1) or "text/plain", size))
            start = match.end()
    if not pieces:
        return text, 0
    pieces.append(text[start:])
    return "".join(pieces), len(pieces) // 2


# --- JSON ---------------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    """``value`` as JSON text, as tcc_otel writes it (non-ASCII kept, no NaN).

    Raises:
        TypeError: a value JSON cannot hold.
        ValueError: a non-finite number (see ``finite``), or a circular reference.
    """
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def finite(value: Any) -> Any:
    """``value`` with every NaN, Infinity and -Infinity (values and keys) as the strings
    ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``; containers are copied, the rest is kept.

    Raises:
        RecursionError: ``value`` contains itself.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else _non_finite_text(value)
    if isinstance(value, dict):
        return {
            _non_finite_text(k) if isinstance(k, float) and not math.isfinite(k) else k: finite(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def _non_finite_text(number: float) -> str:
    if math.isnan(number):
        return NON_FINITE_NAN
    return NON_FINITE_INFINITY if number > 0 else NON_FINITE_NEGATIVE_INFINITY


def parse_json(text: str) -> JsonContainer | None:
    """The JSON object, array or string ``text`` holds; ``None`` for anything else (plain text,
    a bare number, or JSON with NaN/Infinity)."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return None
    return cast(JsonContainer, value) if isinstance(value, (dict, list, str)) else None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def fit_json(value: Any, limit: int, in_bytes: bool = False) -> str | None:
    """``value`` as JSON text within ``limit`` characters (or UTF-8 bytes), still valid JSON.

    Its strings (not keys) are cut: strings within an equal share of the room, or of at most
    32 characters while room is left, keep their length; the others share the rest equally and
    end in ``MARKER`` where there is room for it. ``None`` when even the skeleton, every string
    emptied, is over the limit, or when it is nested too deep to walk. ``value`` must be
    JSON-serialisable and finite; it is never serialised whole (the caller found it too long),
    only its skeleton and the result.
    """
    leaves: list[str] = []
    try:
        hollow = _hollow(value, leaves)
    except RecursionError:  # nested deeper than Python recurses: no way to cut it inside
        return None
    room = limit - _size(dumps(hollow), in_bytes)
    if room < 0:
        return None
    # A string longer than the limit is cut whatever its share: measure no more of it.
    sizes = [_size(_escaped(leaf[: limit + 1]), in_bytes) for leaf in leaves]
    shares = _share(sizes, room)
    cut = [
        leaf if size <= share else _cut_leaf(leaf, share, in_bytes)
        for leaf, size, share in zip(leaves, sizes, shares)
    ]
    text = dumps(_fill(hollow, iter(cut)))
    return text if fits(text, limit, in_bytes) else None


def _hollow(value: Any, leaves: list[str]) -> Any:
    """A copy of ``value`` with every string emptied, collecting the strings in order."""
    if isinstance(value, str):
        leaves.append(value)
        return ""
    if isinstance(value, dict):
        return {key: _hollow(item, leaves) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_hollow(item, leaves) for item in value]
    return value


def _fill(hollow: Any, leaves: Iterator[str]) -> Any:
    """``hollow`` with its strings taken from ``leaves``, in the order ``_hollow`` found them."""
    if isinstance(hollow, str):
        return next(leaves)
    if isinstance(hollow, dict):
        return {key: _fill(item, leaves) for key, item in hollow.items()}
    if isinstance(hollow, list):
        return [_fill(item, leaves) for item in hollow]
    return hollow


def _escaped(text: str) -> str:
    """``text`` as it appears between the quotes of a JSON string."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _share(sizes: list[int], room: int) -> list[int]:
    """Split ``room`` over strings of ``sizes``, shortest first: a string within an equal share
    of what is left keeps its size, and so does a short one (``_SHORT``: roles, types, names)
    while it fits; the others split what is left equally."""
    shares = [0] * len(sizes)
    left = room
    for done, index in enumerate(sorted(range(len(sizes)), key=sizes.__getitem__)):
        size = sizes[index]
        equal = left // (len(sizes) - done)
        share = size if size <= equal or size <= min(_SHORT, left) else equal
        shares[index] = share
        left -= share
    return shares


def _cut_leaf(leaf: str, share: int, in_bytes: bool) -> str:
    """The longest start of ``leaf`` whose JSON form, with ``MARKER`` when it fits too, is
    within ``share``."""
    marker = _MARKER_SIZE[in_bytes]
    suffix, room = (MARKER, share - marker) if share > marker else ("", share)
    head = _head(leaf, room, in_bytes)
    if _size(_escaped(head), in_bytes) > room:  # escapes (\n, \", \u0000) take more room
        low, high = 0, len(head) - 1  # the longest start that fits is head[:low]
        while low < high:
            middle = (low + high + 1) // 2
            if _size(_escaped(head[:middle]), in_bytes) <= room:
                low = middle
            else:
                high = middle - 1
        head = head[:low]
    return head + suffix


# --- the content cap ----------------------------------------------------------------------------


def cap_content(
    text: str,
    max_bytes: int,
    max_data_url_bytes: int,
    *,
    may_be_json: bool = False,
    value: Any = None,
) -> Capped:
    """One content value within the content cap.

    Base64 data URLs longer than ``max_data_url_bytes`` become placeholders; then a value over
    ``max_bytes`` UTF-8 bytes is cut: inside, when it is JSON, else with ``MARKER``. Short
    values are returned after a length check only.

    Args:
        text: the value as text.
        max_bytes: the cap, in UTF-8 bytes.
        max_data_url_bytes: the longest data URL kept.
        may_be_json: ``text`` may be JSON (arguments, results, tool definitions).
        value: the finite JSON value ``text`` serialises, when the caller has it; saves
            parsing ``text`` again.
    """
    if len(text) <= max_data_url_bytes and fits(text, max_bytes, in_bytes=True):
        return Capped(text, False, 0)
    text, replaced = replace_data_urls(text, max_data_url_bytes)
    if fits(text, max_bytes, in_bytes=True):
        return Capped(text, False, replaced)
    if may_be_json:
        parsed = value if value is not None and not replaced else parse_json(text)
        if parsed is not None:
            return Capped(fit_json(parsed, max_bytes, in_bytes=True), True, replaced)
    return Capped(cut_text(text, max_bytes, in_bytes=True), True, replaced)


# --- the OpenTelemetry span limits --------------------------------------------------------------


def fit_value(
    key: str, value: AttributeValue, max_length: int
) -> tuple[AttributeValue | None, bool]:
    """One attribute value within the length limit: JSON shortened inside (``None``: its
    skeleton alone is too long, leave it out), strings and string arrays cut with ``MARKER``;
    and whether it was shortened."""
    if isinstance(value, str):
        if len(value) <= max_length:
            return value, False
        if key in JSON_KEYS:
            parsed = parse_json(value)
            if parsed is not None:
                return fit_json(parsed, max_length), True
        return cut_text(value, max_length), True
    if isinstance(value, (list, tuple)) and any(
        isinstance(item, str) and len(item) > max_length for item in value
    ):
        texts = cast("list[str] | tuple[str, ...]", value)  # attribute arrays are homogeneous
        return [cut_text(item, max_length) for item in texts], True
    return value, False


def fit_attributes(
    attributes: Mapping[str, AttributeValue], max_count: int | None, max_length: int | None
) -> Fitted:
    """A span's attributes within both span limits (default mode, where tcc_otel encodes).

    Lengths first, then the count: every own attribute is kept, even past the limit; the others
    fill the room left in their order.
    """
    if max_length is None and (max_count is None or len(attributes) <= max_count):
        return Fitted(attributes if type(attributes) is dict else dict(attributes), 0, 0, 0)
    values, too_long, truncated = _fit_lengths(attributes, max_length)
    if max_count is None or len(values) <= max_count:
        return Fitted(values, 0, too_long, truncated)
    room = max(0, max_count - sum(1 for key in values if is_own(key)))
    kept: dict[str, AttributeValue] = {}
    for key, item in values.items():
        if is_own(key):
            kept[key] = item
        elif room:
            kept[key] = item
            room -= 1
    return Fitted(kept, len(values) - len(kept), too_long, truncated)


def fit_for_sdk(
    present: Mapping[str, AttributeValue],
    final: Mapping[str, AttributeValue],
    max_count: int | None,
    max_length: int | None,
) -> Fitted:
    """What to write at end on an SDK span that applies the same limits itself (provider mode).

    The SDK cuts strings without caring for JSON, and when full it evicts the oldest attribute
    (a re-set attribute becomes the newest). So values are shortened here first; the others in
    ``final`` (user metadata) are cut to the room left by our own attributes and the others
    already ``present``; they are written first, then our own, then (when an eviction could
    happen) our own ``present`` ones again, so that ours survive whenever the limit allows them.
    ``over_count`` counts only what is cut here, not what the SDK evicts.
    """
    values, too_long, truncated = _fit_lengths(final, max_length)
    own = {key: item for key, item in values.items() if is_own(key)}
    others = [key for key in values if not is_own(key)]
    if max_count is None:
        return Fitted({**{key: values[key] for key in others}, **own}, 0, too_long, truncated)
    own_present = {key: item for key, item in present.items() if is_own(key) and key not in values}
    others_present = sum(1 for key in present if not is_own(key) and key not in values)
    room = max(0, max_count - len(own) - len(own_present) - others_present)
    out = {key: values[key] for key in others[:room]}
    out.update(own)
    if len(present) + len(out) > max_count:
        out.update(own_present)
    return Fitted(out, len(others) - len(others[:room]), too_long, truncated)


def _fit_lengths(
    attributes: Mapping[str, AttributeValue], max_length: int | None
) -> tuple[dict[str, AttributeValue], int, int]:
    """The attributes within the length limit, how many were left out, how many shortened."""
    if max_length is None:
        return dict(attributes), 0, 0
    out: dict[str, AttributeValue] = {}
    too_long = truncated = 0
    for key, value in attributes.items():
        fitted, shortened = fit_value(key, value, max_length)
        if fitted is None:
            too_long += 1
            continue
        out[key] = fitted
        truncated += shortened
    return out, too_long, truncated
