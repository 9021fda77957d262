"""How one setting is read: the keyword given in code, else the first of its environment
variables whose text is understood, else its default; and the parsers of that text."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple, TypeVar, cast
from urllib.parse import unquote

from tcc_otel._log import logger

IN_CODE = "configure()"
"""Source of a value passed as a keyword."""
DEFAULT = "default"
"""Source of a value nobody gave."""
SHOWN_KEY_CHARS = 6
"""A secret is never shown longer than this."""
_MIN_KEY_FOR_PREFIX = 10  # a shorter secret shows no prefix at all
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_KEY = "tcc_otel.setting"  # where a dataclass field's metadata holds its Setting
_T = TypeVar("_T")


@dataclass(frozen=True)
class Setting:
    """How one setting is given: in code, through environment variables, or by default."""

    env: tuple[str, ...]
    """Environment variables, first wins; a blank one counts as unset."""
    parse: Callable[[str], Any]
    """A variable's text (stripped) to the value; ``ValueError`` when the text is not
    understood, which counts as unset."""
    default: Any
    keyword: bool
    """``configure()`` takes it."""
    empty_is_unset: bool
    """A falsy keyword (``0``, ``""``) counts as not given."""
    warn: bool
    """Text that is not understood is logged and the default used, the later variables unread."""
    secret: bool
    """Its text is kept masked."""


class Found(NamedTuple):
    """A setting's value and where it came from."""

    value: Any
    source: str
    """``IN_CODE``, the environment variable, or ``DEFAULT``."""
    text: str | None
    """The variable's text, stripped (masked if secret); ``None`` unless read from one."""


def setting(
    default: _T,
    *env: str,
    parse: Callable[[str], _T] | None = None,
    keyword: bool = True,
    empty_is_unset: bool = False,
    warn: bool = False,
    secret: bool = False,
) -> _T:
    """Declare a dataclass field as a setting (``parse`` defaults to the text as given)."""
    how = Setting(env, parse or str, default, keyword, empty_is_unset, warn, secret)
    metadata = {_KEY: how}
    if isinstance(default, dict):  # a mutable default: each instance gets its own
        return cast(_T, field(default_factory=dict, metadata=metadata))
    return field(default=default, metadata=metadata)


def settings_of(cls: type[Any]) -> dict[str, Setting]:
    """The settings that the fields of dataclass ``cls`` declare, by field name, in order."""
    found = {one.name: one.metadata.get(_KEY) for one in fields(cls)}
    return {name: how for name, how in found.items() if isinstance(how, Setting)}


def find(how: Setting, given: Any) -> Found:
    """The value of one setting: ``given`` (a keyword; ``None`` is not given), else its
    environment variables, else its default."""
    if given is not None and (given or not how.empty_is_unset):
        return Found(given, IN_CODE, None)
    for name in how.env:
        text = os.environ.get(name, "").strip()
        if not text:
            continue
        try:
            return Found(how.parse(text), name, mask(text) if how.secret else text)
        except ValueError as exc:
            if how.warn:
                logger.warning("%s=%r %s; %s is used", name, text, exc, how.default)
                return Found(how.default, DEFAULT, None)
    return Found(how.default, DEFAULT, None)


def mask(secret: str) -> str:
    """The secret's first characters and an ellipsis; for a short one, only that it is set."""
    if len(secret) < _MIN_KEY_FOR_PREFIX:
        return "set (too short to show a prefix)"
    return secret[:SHOWN_KEY_CHARS] + "…"


def flag(text: str) -> bool:
    """``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off``, any case."""
    value = text.lower()
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise ValueError(f"{text!r} is neither true nor false")


def positive(text: str) -> float:
    """A number above zero."""
    value = float(text)
    if not value > 0:  # also refuses nan
        raise ValueError(f"{text!r} is not a positive number")
    return value


def count(text: str) -> int:
    """A finite number above zero, its fraction dropped."""
    try:
        return int(positive(text))
    except OverflowError:  # inf
        raise ValueError(f"{text!r} is not a finite number") from None


def headers(text: str) -> dict[str, str]:
    """OTLP headers, ``key=value,...`` URL-encoded; an entry without ``=`` is logged and
    skipped."""
    found = {}
    for pair in text.split(","):
        name, sep, value = pair.partition("=")
        if sep and name.strip():
            found[unquote(name.strip()).lower()] = unquote(value.strip())
        elif pair.strip():
            logger.warning("OTEL_EXPORTER_OTLP_HEADERS: ignored an entry without '='")
    return found
