"""The limit rules of tcc_otel/_schema/_limits.py, one pure function at a time, exact outputs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tcc_otel._schema._limits import (
    MARKER,
    Capped,
    Fitted,
    cap_content,
    cut_text,
    data_url_placeholder,
    finite,
    fit_attributes,
    fit_for_sdk,
    fit_json,
    fit_value,
    is_own,
    parse_json,
    replace_data_urls,
    utf8_len,
)

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def message(content: str) -> list[dict[str, Any]]:
    """A ``gen_ai.input.messages`` value holding ``content``."""
    return [{"role": "user", "parts": [{"type": "text", "content": content}]}]


class TestIsOwn:
    @pytest.mark.parametrize(
        ("key", "own"),
        [
            ("tcc.type", True),
            ("tcc.run.user_prompt", True),
            ("tcc.agent", True),
            ("tcc.userId", True),
            ("gen_ai.input.messages", True),
            ("error.type", True),
            ("tcc.metadata.plan", False),
            ("http.method", False),
            ("tccx.other", False),
            ("gen_aix", False),
        ],
    )
    def test_own_keys(self, key: str, own: bool) -> None:
        """tcc.* (but user metadata), gen_ai.* and error.type are tcc_otel's own."""
        assert is_own(key) is own


class TestCutText:
    def test_fitting_text_is_kept(self) -> None:
        """A text within the limit comes back as it is."""
        assert cut_text(LETTERS, 26) == LETTERS

    def test_cut_with_marker(self) -> None:
        """A longer text keeps its start and ends in the marker, exactly at the limit."""
        assert cut_text(LETTERS, 20) == "abcdef...[truncated]"
        assert len(cut_text(LETTERS, 20)) == 20

    def test_no_room_for_the_marker(self) -> None:
        """When the marker and one character do not fit, the text is only cut."""
        size = len(MARKER)
        assert (cut_text(LETTERS, size), cut_text(LETTERS, 3)) == (LETTERS[:size], "abc")

    def test_bytes_never_split_a_character(self) -> None:
        """Cut to UTF-8 bytes, a multi-byte character is kept whole or left out."""
        cut = cut_text("\u20ac" * 10, 20, in_bytes=True)  # 3 bytes each; the marker is 14
        assert (cut, utf8_len(cut)) == ("\u20ac\u20ac...[truncated]", 20)


class TestJson:
    def test_finite(self) -> None:
        """NaN and the infinities, as values and keys, become strings; the rest is kept."""
        value = {"v": float("nan"), "w": [float("inf"), -float("inf"), 1.5], float("nan"): (1,)}
        assert finite(value) == {
            "v": "NaN",
            "w": ["Infinity", "-Infinity", 1.5],
            "NaN": [1],
        }

    @pytest.mark.parametrize(
        ("text", "parsed"),
        [
            ('{"a": [1, "b"]}', {"a": [1, "b"]}),
            ("[1]", [1]),
            ('"text"', "text"),
            ("12", None),
            ("plain text", None),
            ('{"v": NaN}', None),
            ("", None),
        ],
    )
    def test_parse_json(self, text: str, parsed: object) -> None:
        """Only JSON objects, arrays and strings count as JSON; NaN is refused."""
        assert parse_json(text) == parsed

    def test_fit_json_cuts_the_long_string(self) -> None:
        """Short strings keep their length; the long one is cut and marked; the result is the
        limit's length exactly and still parses."""
        text = fit_json(message(LETTERS * 4), 80)
        assert text == (
            '[{"role": "user", "parts": [{"type": "text", "content": "abcd...[truncated]"}]}]'
        )
        assert (len(text), json.loads(text)[0]["role"]) == (80, "user")

    def test_fit_json_shares_the_room(self) -> None:
        """Strings over an equal share split the room equally; a short one stays whole."""
        text = fit_json({"a": "x" * 100, "b": "y" * 100, "c": "short"}, 70)
        assert text == ('{"a": "xxxxx...[truncated]", "b": "yyyyy...[truncated]", "c": "short"}')
        assert len(text) == 70

    def test_fit_json_counts_escapes(self) -> None:
        """Escaped characters count at their escaped length, and are never split."""
        text = fit_json({"q": 'a"b' * 20}, 30)
        assert text == '{"q": "a\\"ba\\"...[truncated]"}'
        assert (len(text), json.loads(text)) == (30, {"q": 'a"ba"...[truncated]'})

    def test_fit_json_in_bytes(self) -> None:
        """Measured in UTF-8 bytes, the result is within the byte limit."""
        text = fit_json({"a": "\u00e9" * 50}, 40, in_bytes=True)
        assert (text, utf8_len(text or "")) == (
            '{"a": "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9...[truncated]"}',
            39,
        )

    def test_fit_json_skeleton_too_long(self) -> None:
        """When the structure alone (every string emptied) is over the limit: None."""
        assert fit_json({"k": list(range(30))}, 40) is None

    def test_fit_json_too_deep(self) -> None:
        """A value nested deeper than Python recurses cannot be cut inside: None."""
        deep: list[Any] = ["x" * 100]
        for _ in range(5000):
            deep = [deep]
        assert fit_json(deep, 50) is None


class TestDataUrls:
    def test_long_data_url_replaced(self) -> None:
        """A base64 data URL over the bound becomes a placeholder with its media type and
        length; a short one, and the text around, stay."""
        long_url = "data:image/png;base64," + "A" * 100 + "=="
        short_url = "data:;base64,QUJD"
        text = f"see {long_url} and {short_url}."
        assert replace_data_urls(text, 50) == (
            f"see [data URL omitted: image/png, {len(long_url)} bytes] and {short_url}.",
            1,
        )

    def test_parameters_and_default_media_type(self) -> None:
        """Parameters are part of the URL; a URL naming no media type is text/plain."""
        text = "data:;charset=utf-8;base64," + "QUJD" * 30
        assert replace_data_urls(text, 50) == (data_url_placeholder("text/plain", len(text)), 1)

    def test_short_text_is_not_scanned(self) -> None:
        """Text no longer than the bound cannot hold a URL over it: returned as it is."""
        text = "data:image/png;base64,AAAA"
        assert replace_data_urls(text, len(text)) == (text, 0)

    def test_plain_data_url_is_kept(self) -> None:
        """Only base64 data URLs are replaced."""
        text = "data:text/plain," + "a" * 100
        assert replace_data_urls(text, 50) == (text, 0)


class TestCapContent:
    def test_small_value_untouched(self) -> None:
        """A value under both bounds comes back as it is."""
        assert cap_content("hello", 100, 50) == Capped("hello", False, 0)

    def test_text_cut_to_bytes(self) -> None:
        """Text over the cap is cut to exactly the cap in UTF-8 bytes, with the marker."""
        capped = cap_content("\u00e9" * 100, 40, 1000)
        assert capped == Capped("\u00e9" * 13 + MARKER, True, 0)
        assert utf8_len(capped.text or "") == 40

    def test_json_text_cut_inside(self) -> None:
        """JSON text over the cap is shortened inside and stays valid JSON."""
        capped = cap_content(json.dumps({"q": "z" * 200}), 40, 1000, may_be_json=True)
        assert capped == Capped('{"q": "zzzzzzzzzzzzzzzzz...[truncated]"}', True, 0)

    def test_json_value_given(self) -> None:
        """With the serialised value given, the text is not parsed again: same result."""
        value = {"q": "z" * 200}
        text = json.dumps(value)
        assert cap_content(text, 40, 1000, may_be_json=True, value=value) == cap_content(
            text, 40, 1000, may_be_json=True
        )

    def test_json_skeleton_over_the_cap(self) -> None:
        """JSON whose structure alone is over the cap is left out (``None``), counted as cut."""
        assert cap_content(json.dumps(list(range(50))), 40, 1000, may_be_json=True) == Capped(
            None, True, 0
        )

    def test_data_url_then_cap(self) -> None:
        """Data URLs are replaced first; what remains under the cap is not cut."""
        url = "data:image/jpeg;base64," + "B" * 500
        capped = cap_content(f"look {url}", 100, 50)
        assert capped == Capped(f"look [data URL omitted: image/jpeg, {len(url)} bytes]", False, 1)


class TestFitValue:
    def test_json_key_shortened_inside(self) -> None:
        """A JSON-valued attribute is shortened inside to the limit."""
        value = json.dumps(message("hello world " * 20))
        fitted, shortened = fit_value("gen_ai.input.messages", value, 100)
        assert (fitted, shortened) == (
            '[{"role": "user", "parts": [{"type": "text", "content": '
            '"hello world hello world ...[truncated]"}]}]',
            True,
        )

    def test_json_key_left_out(self) -> None:
        """A JSON-valued attribute whose skeleton is over the limit is left out."""
        assert fit_value("gen_ai.input.messages", json.dumps(message("x" * 99)), 40) == (
            None,
            True,
        )

    def test_args_that_are_not_json_are_cut_as_text(self) -> None:
        """Arguments that do not parse as JSON are cut as plain text."""
        assert fit_value("tcc.tool_call.args", "city=" + "x" * 50, 20) == (
            "city=x...[truncated]",
            True,
        )

    def test_other_values(self) -> None:
        """String arrays are cut item by item; numbers and short strings are kept."""
        assert [
            fit_value("gen_ai.response.finish_reasons", ("stop", "x" * 30), 20),
            fit_value("tcc.metadata.n", 12345, 2),
            fit_value("tcc.type", "run", 20),
        ] == [(["stop", "xxxxxx...[truncated]"], True), (12345, False), ("run", False)]


class TestFitAttributes:
    def test_no_limit_hit(self) -> None:
        """Attributes within both limits come back unchanged."""
        attributes = {"tcc.type": "run", "tcc.metadata.a": 1}
        assert fit_attributes(attributes, 128, None) == Fitted(attributes, 0, 0, 0)

    def test_own_kept_others_fill_the_room(self) -> None:
        """Own attributes are kept; the others fill the room left, in order."""
        attributes = {
            "tcc.type": "run",
            "app.tenant": "t-1",
            "tcc.metadata.a": 1,
            "tcc.metadata.b": 2,
            "gen_ai.input.messages": "[]",
            "error.type": "_OTHER",
        }
        assert fit_attributes(attributes, 4, None) == Fitted(
            {
                "tcc.type": "run",
                "app.tenant": "t-1",
                "gen_ai.input.messages": "[]",
                "error.type": "_OTHER",
            },
            2,
            0,
            0,
        )

    def test_own_kept_past_the_limit(self) -> None:
        """A limit below the number of own attributes still keeps every one of them."""
        attributes = {"tcc.type": "run", "tcc.runId": "r", "tcc.metadata.a": 1}
        assert fit_attributes(attributes, 1, None) == Fitted(
            {"tcc.type": "run", "tcc.runId": "r"}, 1, 0, 0
        )

    def test_lengths_then_count(self) -> None:
        """Values are shortened (or left out) first, then the count applies."""
        attributes = {
            "tcc.run.user_prompt": "p" * 30,
            "gen_ai.input.messages": json.dumps(message("p" * 30)),
            "tcc.metadata.a": "short",
        }
        assert fit_attributes(attributes, 2, 20) == Fitted(
            {"tcc.run.user_prompt": "pppppp...[truncated]", "tcc.metadata.a": "short"},
            0,
            1,
            1,
        )


class TestFitForSdk:
    def test_metadata_cut_to_the_room(self) -> None:
        """Metadata is cut to what our own attributes and the others present leave, and
        written first."""
        fitted = fit_for_sdk(
            {"tcc.type": "run", "app.x": 1},
            {"tcc.metadata.a": 1, "tcc.metadata.b": 2, "tcc.run.user_prompt": "p"},
            4,
            None,
        )
        assert fitted == Fitted({"tcc.metadata.a": 1, "tcc.run.user_prompt": "p"}, 1, 0, 0)
        assert list(fitted.attributes) == ["tcc.metadata.a", "tcc.run.user_prompt"]

    def test_own_present_re_set_last_when_full(self) -> None:
        """When the span would overflow, our own attributes given at start are written again,
        last, so the SDK evicts others first."""
        fitted = fit_for_sdk(
            {"tcc.type": "run", "tcc.runId": "r", "app.x": 1},
            {"tcc.metadata.a": 1, "tcc.run.user_prompt": "p"},
            3,
            None,
        )
        assert list(fitted.attributes.items()) == [
            ("tcc.run.user_prompt", "p"),
            ("tcc.type", "run"),
            ("tcc.runId", "r"),
        ]
        assert fitted.over_count == 1

    def test_no_count_limit(self) -> None:
        """Without a count limit nothing is cut and nothing is written twice."""
        fitted = fit_for_sdk(
            {"tcc.type": "run"}, {"tcc.metadata.a": 1, "tcc.agent": "a"}, None, None
        )
        assert fitted == Fitted({"tcc.metadata.a": 1, "tcc.agent": "a"}, 0, 0, 0)

    def test_values_shortened_for_the_sdk(self) -> None:
        """JSON values are shortened inside before the SDK would cut them mid-JSON."""
        fitted = fit_for_sdk(
            {}, {"gen_ai.tool.call.arguments": json.dumps({"q": "x" * 50})}, None, 30
        )
        assert fitted == Fitted(
            {"gen_ai.tool.call.arguments": '{"q": "xxxxxxx...[truncated]"}'}, 0, 0, 1
        )
