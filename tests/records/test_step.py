"""Step (tcc_otel/_records/_step.py): every setter returns the record, and ``None``
passed to a setter changes nothing."""

from __future__ import annotations

import logging

import pytest
from helpers.records import attributes, new_step, only, step_attrs, typed, warnings_of

import tcc_otel as tcc
from tcc_otel.testing import CapturedSpans


class TestChaining:
    def test_step_setters_return_the_step(self, captured: CapturedSpans) -> None:
        """Every Step setter returns the step itself."""
        s = tcc.step("run-1")
        assert [
            s.prompt("p") is s,
            s.response("r") is s,
            s.model(requested="m", used="m2") is s,
            s.tokens(prompt_uncached=1, prompt_cached=2, completion=3) is s,
            s.cost(0.5) is s,
            s.finish_reason("stop") is s,
            s.tool_definitions("[]") is s,
        ] == [True] * 7

    def test_one_chained_expression_records_everything(self, captured: CapturedSpans) -> None:
        """A whole step written as one chain is recorded with every field."""
        tcc.step("run-1", step_id="step-1").prompt("p").response("r").model(used="m").finish_reason(
            "stop"
        ).end()
        assert typed(attributes(only(captured))) == typed(
            step_attrs(
                **{
                    "tcc.step.model_used": "m",
                    "tcc.step.finish_reason": "stop",
                    "gen_ai.response.model": "m",
                    "gen_ai.response.finish_reasons": ("stop",),
                    "gen_ai.output.messages": (
                        '[{"role": "assistant", "parts": [{"type": "text", "content": "r"}], '
                        '"finish_reason": "stop"}]'
                    ),
                }
            )
        )


class TestNoneIsIgnored:
    def test_step_setters(self, captured: CapturedSpans, caplog: pytest.LogCaptureFixture) -> None:
        """``None`` passed to any Step setter keeps the value set before and logs nothing."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        s = new_step().model(requested="m").tokens(completion=3).cost(0.5).finish_reason("stop")
        s.tool_definitions("[]")
        s.prompt(None).response(None).model(None, None).tokens(None, None, None).cost(None)
        s.finish_reason(None).tool_definitions(None).end()
        assert typed(attributes(only(captured))) == typed(
            step_attrs(
                **{
                    "tcc.step.model_requested": "m",
                    "tcc.step.completion_tokens": 3,
                    "tcc.step.real_total_cost": 0.5,
                    "tcc.step.finish_reason": "stop",
                    "tcc.step.tool_definitions": "[]",
                    "gen_ai.request.model": "m",
                    "gen_ai.usage.output_tokens": 3,
                    "gen_ai.response.finish_reasons": ("stop",),
                    "gen_ai.tool.definitions": "[]",
                    "gen_ai.output.messages": (
                        '[{"role": "assistant", "parts": [{"type": "text", "content": "r"}], '
                        '"finish_reason": "stop"}]'
                    ),
                }
            )
        )
        assert warnings_of(caplog) == []
