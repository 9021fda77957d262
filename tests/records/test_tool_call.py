"""ToolCall (tcc_otel/_records/_tool_call.py): every setter returns the record, and ``None``
passed to a setter changes nothing."""

from __future__ import annotations

import logging

import pytest
from helpers.records import attributes, new_tool_call, only, tool_attrs, typed, warnings_of

import tcc_otel as tcc
from tcc_otel.testing import CapturedSpans


class TestChaining:
    def test_tool_call_setters_return_the_tool_call(self, captured: CapturedSpans) -> None:
        """Every ToolCall setter returns the tool call itself."""
        t = tcc.tool_call("run-1")
        assert [t.name("search") is t, t.args("q") is t, t.result("r") is t] == [True] * 3


class TestNoneIsIgnored:
    def test_tool_call_setters(
        self, captured: CapturedSpans, caplog: pytest.LogCaptureFixture
    ) -> None:
        """``None`` passed to any ToolCall setter keeps the value set before and logs nothing."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        t = new_tool_call().args("q").result("r")
        t.name(None).args(None).result(None).end()
        assert typed(attributes(only(captured))) == typed(
            tool_attrs(
                **{
                    "tcc.tool_call.args": "q",
                    "tcc.tool_call.result": "r",
                    "gen_ai.tool.call.arguments": "q",
                    "gen_ai.tool.call.result": "r",
                }
            )
        )
        assert warnings_of(caplog) == []
