"""Tests for tcc_otel._env: how one setting is read from code or the environment, and the
parsers of environment text."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tcc_otel._env import (
    DEFAULT,
    IN_CODE,
    Found,
    Setting,
    count,
    find,
    flag,
    headers,
    mask,
    positive,
    setting,
    settings_of,
)


@dataclass(frozen=True)
class Example:
    """Two settings and a plain field."""

    limit: int = setting(5, "EXAMPLE_LIMIT", "EXAMPLE_LIMIT_FALLBACK", parse=count)
    tags: dict[str, str] = setting({}, "EXAMPLE_TAGS", parse=headers, keyword=False)  # noqa: RUF009
    note: str = ""


def _how(*, empty_is_unset: bool = False, warn: bool = False, secret: bool = False) -> Setting:
    """``Example.limit``'s setting with these flags."""
    limit = settings_of(Example)["limit"]
    return dataclasses.replace(limit, empty_is_unset=empty_is_unset, warn=warn, secret=secret)


class TestDeclaration:
    def test_settings_of(self) -> None:
        """The fields declared with ``setting()`` are the settings, with their declaration."""
        found = settings_of(Example)
        assert (list(found), found["limit"].env, found["limit"].default, found["tags"].keyword) == (
            ["limit", "tags"],
            ("EXAMPLE_LIMIT", "EXAMPLE_LIMIT_FALLBACK"),
            5,
            False,
        )

    def test_defaults(self) -> None:
        """A declared field has its default; a dict default is each instance's own."""
        first, second = Example(), Example()
        assert (first.limit, first.tags, first.tags is second.tags) == (5, {}, False)


class TestFind:
    def test_keyword_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A keyword is used over the environment; ``None`` counts as not given."""
        monkeypatch.setenv("EXAMPLE_LIMIT", "9")
        how = settings_of(Example)["limit"]
        assert (find(how, 3), find(how, None)) == (
            Found(3, IN_CODE, None),
            Found(9, "EXAMPLE_LIMIT", "9"),
        )

    def test_empty_keyword(self) -> None:
        """With ``empty_is_unset`` a falsy keyword counts as not given; without, it is used."""
        assert (find(_how(empty_is_unset=True), 0), find(_how(), 0)) == (
            Found(5, DEFAULT, None),
            Found(0, IN_CODE, None),
        )

    @pytest.mark.parametrize(
        ("first", "second", "expected"),
        [
            ("7", "8", Found(7, "EXAMPLE_LIMIT", "7")),
            ("  ", "8", Found(8, "EXAMPLE_LIMIT_FALLBACK", "8")),
            ("lots", "8", Found(8, "EXAMPLE_LIMIT_FALLBACK", "8")),
            ("lots", "many", Found(5, DEFAULT, None)),
        ],
    )
    def test_first_understood_variable_wins(
        self, monkeypatch: pytest.MonkeyPatch, first: str, second: str, expected: Found
    ) -> None:
        """Variables are read in order; blank or not understood text counts as unset."""
        monkeypatch.setenv("EXAMPLE_LIMIT", first)
        monkeypatch.setenv("EXAMPLE_LIMIT_FALLBACK", second)
        assert find(settings_of(Example)["limit"], None) == expected

    def test_warn(self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
        """With ``warn`` text not understood is logged, and the default used without reading
        the next variable."""
        monkeypatch.setenv("EXAMPLE_LIMIT", "lots")
        monkeypatch.setenv("EXAMPLE_LIMIT_FALLBACK", "8")
        found = find(_how(warn=True), None)
        assert (found, [r.getMessage() for r in caplog.records]) == (
            Found(5, DEFAULT, None),
            ["EXAMPLE_LIMIT='lots' could not convert string to float: 'lots'; 5 is used"],
        )

    def test_secret_text_is_masked(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The text of a secret setting is kept masked."""
        monkeypatch.setenv("EXAMPLE_LIMIT", "12345678901")
        assert find(_how(secret=True), None).text == "123456…"


class TestParsers:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            *[("1", True), ("TRUE", True), ("yes", True), ("On", True)],
            *[("0", False), ("false", False), ("NO", False), ("off", False)],
        ],
    )
    def test_flag(self, text: str, value: bool) -> None:
        """The usual spellings of true and false are understood, in any case."""
        assert flag(text) is value

    @pytest.mark.parametrize(
        ("parse", "text"),
        [(flag, "maybe"), (flag, "2")]
        + [(number, text) for number in (positive, count) for text in ("x", "-1", "0", "nan")],
    )
    def test_not_understood(self, parse: Callable[[str], object], text: str) -> None:
        """Other spellings, and numbers that are not above zero, raise ValueError."""
        with pytest.raises(ValueError):  # noqa: PT011 -- the message is not the point
            parse(text)

    def test_numbers(self) -> None:
        """Numbers may be written as floats; a count drops the fraction and refuses inf."""
        assert (positive("2.5"), count("1e3"), count("7.9")) == (2.5, 1000, 7)
        with pytest.raises(ValueError, match="not a finite number"):
            count("inf")

    def test_headers(self, caplog: pytest.LogCaptureFixture) -> None:
        """Headers are split on commas and URL-decoded, names lowercased; an entry without
        ``=`` is skipped with a warning."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        assert headers("Authorization=Bearer%20k, x-team = ai ,junk,") == {
            "authorization": "Bearer k",
            "x-team": "ai",
        }
        assert [r.getMessage() for r in caplog.records] == [
            "OTEL_EXPORTER_OTLP_HEADERS: ignored an entry without '='"
        ]

    @pytest.mark.parametrize(
        ("secret", "shown"),
        [("dev_abcdefghij", "dev_ab…"), ("short_key", "set (too short to show a prefix)")],
    )
    def test_mask(self, secret: str, shown: str) -> None:
        """A secret shows its first six characters at most, and none when short."""
        assert mask(secret) == shown
