"""Tests for tcc_otel._local._rollup: a run's tokens and cost, and that the printed tree, the
store and the JSON API (which the web page shows) report the same totals for the same spans."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from helpers.received import RUN, RUN_SPAN, STEP, make_span, of

from tcc_otel._local._api import Api
from tcc_otel._local._model import ReceivedSpan
from tcc_otel._local._printer import RunPrinter
from tcc_otel._local._rollup import Totals, Usage, step_cost, totals, usage_of
from tcc_otel._local._server import Receiver
from tcc_otel._local._store import Store
from tcc_otel._schema import _keys as attrs

IN, OUT = attrs.GEN_AI_USAGE_INPUT_TOKENS, attrs.GEN_AI_USAGE_OUTPUT_TOKENS
REAL, ESTIMATED = attrs.STEP_REAL_TOTAL_COST, attrs.STEP_ESTIMATED_COST


class TestUsageOf:
    def test_run_span(self) -> None:
        """A run span reports its usage totals and tcc.run.total_cost."""
        values = of("run", **{IN: 520, OUT: 87, attrs.RUN_TOTAL_COST: 0.004, REAL: 9.0})
        assert usage_of(values) == Usage(True, 520, 87, 0.004)

    def test_step(self) -> None:
        """A step reports its usage and its cost: the real one, else the estimate."""
        assert usage_of(of("step", **{IN: 7, REAL: 0.5, ESTIMATED: 0.1})) == Usage(
            False, 7, None, 0.5
        )
        assert usage_of(of("step", **{OUT: 3, ESTIMATED: 0.1})) == Usage(False, None, 3, 0.1)

    @pytest.mark.parametrize(
        "values",
        [
            of("tool_call", **{IN: 1}),
            {IN: 100, OUT: 10, REAL: 0.2},  # an instrumented LLM call inside a step
            {attrs.GEN_AI_OPERATION_NAME: attrs.OP_INVOKE_AGENT, IN: 100},
        ],
    )
    def test_other_spans_report_nothing(self, values: dict[str, Any]) -> None:
        """Tool calls and spans that are neither run nor step report nothing, tokens or not."""
        assert usage_of(values) is None

    def test_ill_typed_values(self) -> None:
        """Only whole-number counts and finite numbers count: bools, text and NaN do not."""
        values = of("step", **{IN: True, OUT: "3", REAL: float("nan"), ESTIMATED: 0.25})
        assert usage_of(values) == Usage(False, None, None, 0.25)
        assert step_cost(of("step", **{REAL: 0})) == 0.0


class TestTotals:
    STEPS = (Usage(False, 400, 50, 0.0031), Usage(False, 120, None, None), Usage(False, None, 7, 1))

    def test_sum_over_steps(self) -> None:
        """Without a run span's totals, each figure is the sum over the steps that report it."""
        assert totals(self.STEPS) == Totals(520, 57, 577, 1.0031)

    def test_run_span_totals_win(self) -> None:
        """The run span's tokens and its cost replace the steps' sums, each on its own."""
        assert totals([*self.STEPS, Usage(True, 10, None, None)]) == Totals(10, None, 10, 1.0031)
        assert totals([Usage(True, None, None, 0.5), *self.STEPS]) == Totals(520, 57, 577, 0.5)

    def test_nothing_reported(self) -> None:
        """A run whose spans report nothing has no totals (the API shows null)."""
        assert (
            totals([]) == totals([Usage(True, None, None, None)]) == Totals(None, None, None, None)
        )

    def test_float_noise(self) -> None:
        """Summed costs are rounded to 12 places, so 0.1 + 0.2 is 0.3."""
        assert totals([Usage(False, None, None, 0.1), Usage(False, None, None, 0.2)]).cost == 0.3

    def test_run_span_twice(self) -> None:
        """If two run spans of one run carry totals, the larger counts, whatever their order."""
        small, large = Usage(True, 5, 1, 0.1), Usage(True, 9, 2, 0.2)
        assert totals([small, large]) == totals([large, small]) == Totals(9, 2, 11, 0.2)


# --- agreement: one run seen by the printer, the store and the API ---------------------------

WRAPPED = make_span(
    "0000000000000021",
    STEP.span_id,
    "chat gpt-4o",
    2,
    700,
    {attrs.GEN_AI_REQUEST_MODEL: "gpt-4o", IN: 400, OUT: 50},
)
"""An instrumented LLM call inside the manual step ``STEP``, repeating the step's tokens."""
LATE_STEP = make_span(
    "0000000000000022",
    RUN_SPAN.span_id,
    "chat",
    1200,
    1300,
    of("step", **{IN: 30, ESTIMATED: 0.002}),
)
"""A step that ended after its run span, so the run span's totals leave it out."""
MIDDLE = make_span("0000000000000023", RUN_SPAN.span_id, "retrieve", 10, 20, {})
ORPHAN = make_span("0000000000000024", MIDDLE.span_id, "http get", 11, 12, {})
"""A span without a run id whose run is its grandparent's; it arrives before its parent."""


def _run_span(**extra: Any) -> ReceivedSpan:
    values = {key: value for key, value in RUN_SPAN.attributes.items() if key not in (IN, OUT)}
    return make_span(RUN_SPAN.span_id, None, RUN_SPAN.name, 0, 1230, {**values, **extra})


def _batches(run_span: ReceivedSpan | None) -> list[list[ReceivedSpan]]:
    """The requests the spans arrive in: the orphan first, its parent and the rest later."""
    rest = [STEP, WRAPPED, LATE_STEP, MIDDLE]
    return [[ORPHAN], rest if run_span is None else [*rest, run_span]]


class _Seen(NamedTuple):
    """One run as each consumer of the spans reports it."""

    printed: str
    """The first line ``tcc-otel dev`` prints for the run."""
    runs: list[dict[str, Any]]
    """The run from ``Store.runs()``, ``Store.run()``, ``/api/runs``, ``/api/runs/{id}``."""


class _Dev(NamedTuple):
    """An in-memory store and a receiver answering its JSON API."""

    store: Store
    receiver: Receiver


@pytest.fixture
def dev() -> Iterator[_Dev]:
    """An in-memory store and a receiver on 127.0.0.1 serving its API, stopped in teardown."""
    with Store(":memory:") as store, Receiver("127.0.0.1", 0, on_get=Api(store)) as receiver:
        yield _Dev(store, receiver)


def _seen(dev: _Dev, batches: list[list[ReceivedSpan]]) -> _Seen:
    """Feed ``batches`` to a printer and the store as ``tcc-otel dev`` does; read the run back."""
    store, receiver = dev
    texts: list[str] = []
    printer = RunPrinter(texts.append, clock=lambda: 0.0)
    for batch in batches:
        printer.add(batch)
        store.add(batch)
    printer.flush_all()
    found = store.run(RUN)
    assert found is not None
    runs = [
        next(run for run in store.runs() if run["run_id"] == RUN),
        found["run"],
        next(run for run in _get(receiver, "/api/runs")["runs"] if run["run_id"] == RUN),
        _get(receiver, f"/api/runs/{RUN}")["run"],
    ]
    return _Seen(texts[0].splitlines()[0], runs)


def _get(receiver: Receiver, path: str) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
    try:
        connection.request("GET", path)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def _figures(run: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("input_tokens", "output_tokens", "total_tokens", "total_cost", "span_count")
    return tuple(run[key] for key in keys)


class TestAgreement:
    @pytest.mark.parametrize(
        ("run_span", "line", "figures"),
        [
            pytest.param(
                _run_span(**{IN: 400, OUT: 50}),
                "invoke_agent weather  1.23 s  OK  run 3f2a9c1e…  tokens 400→50  cost $0.0051",
                (400, 50, 450, 0.0051, 6),
                id="run-span-tokens",
            ),
            pytest.param(
                _run_span(**{IN: 400, OUT: 50, attrs.RUN_TOTAL_COST: 0.004}),
                "invoke_agent weather  1.23 s  OK  run 3f2a9c1e…  tokens 400→50  cost $0.004",
                (400, 50, 450, 0.004, 6),
                id="run-span-totals",
            ),
            pytest.param(
                _run_span(),
                "invoke_agent weather  1.23 s  OK  run 3f2a9c1e…  tokens 430→50  cost $0.0051",
                (430, 50, 480, 0.0051, 6),
                id="steps-summed",
            ),
        ],
    )
    def test_same_totals(
        self, dev: _Dev, run_span: ReceivedSpan, line: str, figures: tuple[Any, ...]
    ) -> None:
        """Tree, store and API agree: the run span's totals when it has them, else the steps'
        sums; the LLM call inside a step is not counted again; the orphan joins the run."""
        seen = _seen(dev, _batches(run_span))
        assert seen.printed == line
        assert [_figures(run) for run in seen.runs] == [figures] * 4

    def test_run_span_missing(self, dev: _Dev) -> None:
        """Without the run span everything sums the steps; spans whose only ancestor with a run
        id is that run span stay outside the run."""
        seen = _seen(dev, _batches(None))
        assert seen.printed == (
            f"run {RUN} (its run span was not received here; it may have been recorded by "
            "another process):"
        )
        assert [_figures(run) for run in seen.runs] == [(430, 50, 480, 0.0051, 3)] * 4
