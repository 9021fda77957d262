"""The tcc-otel[cost] extra: cost estimated from model and tokens, and run totals."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan

import tcc_otel as tcc
from tcc_otel.testing import CapturedSpans

genai_prices = pytest.importorskip("genai_prices", reason="the cost extra needs Python 3.11+")

pytestmark = pytest.mark.cost_extra


def price(model: str, uncached: int, cached: int, completion: int) -> float:
    """What genai-prices itself says the call costs, in USD."""
    usage: Any = genai_prices.Usage(
        input_tokens=uncached + cached, cache_read_tokens=cached, output_tokens=completion
    )
    return float(genai_prices.calc_price(usage, model).total_price)


def attributes_of(captured: CapturedSpans, name: str) -> dict[str, Any]:
    """The attributes of the one span called ``name``."""
    span: ReadableSpan = captured.by_name(name)
    return dict(span.attributes or {})


class TestEstimates:
    def test_step_without_cost_gets_an_estimate(self, captured: CapturedSpans) -> None:
        """A step with model and tokens but no cost() gets genai-prices' price for them."""
        with tcc.run() as run:
            run.prompt("q")
            step = run.step().prompt("p").response("r").model(used="gpt-4o")
            step.tokens(prompt_uncached=1200, prompt_cached=800, completion=300).end()
        step_attrs = attributes_of(captured, "chat gpt-4o")
        assert step_attrs["tcc.step.estimated_cost"] == price("gpt-4o", 1200, 800, 300)
        assert "tcc.step.real_total_cost" not in step_attrs

    def test_real_cost_wins(self, captured: CapturedSpans) -> None:
        """A step whose cost was given gets no estimate."""
        with tcc.run() as run:
            run.prompt("q")
            run.step().prompt("p").response("r").model(used="gpt-4o").tokens(10, 0, 5).cost(
                0.5
            ).end()
        step_attrs = attributes_of(captured, "chat gpt-4o")
        assert (
            step_attrs["tcc.step.real_total_cost"],
            "tcc.step.estimated_cost" in step_attrs,
        ) == (
            0.5,
            False,
        )

    def test_unknown_model_has_no_estimate(self, captured: CapturedSpans) -> None:
        """A model genai-prices does not know gets no estimate and raises nothing."""
        with tcc.run() as run:
            run.prompt("q")
            run.step().prompt("p").response("r").model(used="house-model-7").tokens(5, 0, 5).end()
        assert "tcc.step.estimated_cost" not in attributes_of(captured, "chat house-model-7")

    def test_no_tokens_no_estimate(self, captured: CapturedSpans) -> None:
        """Without token counts there is nothing to price."""
        with tcc.run() as run:
            run.prompt("q")
            run.step().prompt("p").response("r").model(used="gpt-4o").end()
        assert "tcc.step.estimated_cost" not in attributes_of(captured, "chat gpt-4o")


class TestRunTotals:
    def test_totals_sum_real_and_estimated(self, captured: CapturedSpans) -> None:
        """The run's total cost sums real costs where given and estimates otherwise; unknown
        models add nothing; total tokens count input and output of every step."""
        with tcc.run() as run:
            run.prompt("q")
            run.step().prompt("a").response("b").model(used="gpt-4o").tokens(100, 0, 20).cost(
                0.25
            ).end()
            run.step().prompt("c").response("d").model(used="gpt-4o").tokens(1000, 500, 50).end()
            run.step().prompt("e").response("f").model(used="house-model-7").tokens(7, 0, 3).end()
        run_attrs = attributes_of(captured, "invoke_agent")
        assert (run_attrs["tcc.run.total_tokens"], run_attrs["tcc.run.total_cost"]) == (
            100 + 20 + 1500 + 50 + 7 + 3,
            pytest.approx(0.25 + price("gpt-4o", 1000, 500, 50)),
        )

    def test_no_priced_step_no_total_cost(self, captured: CapturedSpans) -> None:
        """A run whose steps have no cost and no known price gets tokens but no total cost."""
        with tcc.run() as run:
            run.prompt("q")
            run.step().prompt("a").response("b").tokens(4, 0, 2).end()
        run_attrs = attributes_of(captured, "invoke_agent")
        assert (run_attrs["tcc.run.total_tokens"], "tcc.run.total_cost" in run_attrs) == (6, False)


def test_without_the_extra_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """With genai-prices absent, a step with model and tokens gets no estimate and the run no
    totals: the base schema is unchanged."""
    from tcc_otel._schema import _cost as _cost
    from tcc_otel.testing import capture

    monkeypatch.setattr(_cost, "_prices", None)
    with capture() as captured, tcc.run() as run:
        run.prompt("q")
        run.step().prompt("p").response("r").model(used="gpt-4o").tokens(10, 0, 5).end()
    keys = {key for span in captured.spans for key in (span.attributes or {})}
    assert keys.isdisjoint(
        {"tcc.step.estimated_cost", "tcc.run.total_tokens", "tcc.run.total_cost"}
    )
