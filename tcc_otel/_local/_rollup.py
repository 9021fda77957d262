"""A run's tokens and cost: its run span's own totals when it carries them, else its steps' sum.

The one place this rule lives; the tree, the store (so ``/api/runs`` and the web page) use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, TypeVar

from tcc_otel._local._values import as_count, as_number
from tcc_otel._schema import _keys as keys
from tcc_otel._schema._kinds import is_run

_STEP = keys.SpanKind.STEP.value
_N = TypeVar("_N", int, float)


class Usage(NamedTuple):
    """The tokens and cost one span reports for its run."""

    is_run: bool
    """The run span (its totals), else a step (its own usage)."""
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None


class Totals(NamedTuple):
    """A run's tokens and cost; ``None`` where nothing reported one."""

    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    """Input plus output."""
    cost: float | None
    """USD, rounded to 12 decimal places (hides float-sum noise)."""


def usage_of(attributes: Mapping[str, Any]) -> Usage | None:
    """What a run span or a step reports; ``None`` for any other span, so an instrumented LLM
    call inside a step does not count the step's tokens twice.

    A run span reports ``gen_ai.usage.*`` and ``tcc.run.total_cost``; a step its
    ``gen_ai.usage.*`` and its cost (see ``step_cost``).
    """
    run = is_run(attributes)
    if run:
        cost = as_number(attributes.get(keys.RUN_TOTAL_COST))
    elif attributes.get(keys.TCC_TYPE) == _STEP:
        cost = step_cost(attributes)
    else:
        return None
    return Usage(
        run,
        as_count(attributes.get(keys.GEN_AI_USAGE_INPUT_TOKENS)),
        as_count(attributes.get(keys.GEN_AI_USAGE_OUTPUT_TOKENS)),
        cost,
    )


def step_cost(attributes: Mapping[str, Any]) -> float | None:
    """A step's cost: ``tcc.step.real_total_cost``, else ``tcc.step.estimated_cost``."""
    real = as_number(attributes.get(keys.STEP_REAL_TOTAL_COST))
    return real if real is not None else as_number(attributes.get(keys.STEP_ESTIMATED_COST))


def totals(usages: Iterable[Usage]) -> Totals:
    """A run's totals from what its spans report (``usage_of``).

    Tokens are the run span's when it carries either count, else the sums over the steps;
    cost is the run span's ``tcc.run.total_cost`` when it has one, else the sum over the steps.
    Should several run spans carry totals (a run span sent twice), the largest counts.
    """
    runs: list[Usage] = []
    steps: list[Usage] = []
    for usage in usages:
        (runs if usage.is_run else steps).append(usage)
    own = [u for u in runs if u.input_tokens is not None or u.output_tokens is not None]
    if own:
        tokens_in = _largest(u.input_tokens for u in own)
        tokens_out = _largest(u.output_tokens for u in own)
    else:
        tokens_in = _sum(u.input_tokens for u in steps)
        tokens_out = _sum(u.output_tokens for u in steps)
    cost = _largest(u.cost for u in runs)
    if cost is None:
        cost = _sum(u.cost for u in steps)
    total = _sum((tokens_in, tokens_out))
    return Totals(tokens_in, tokens_out, total, None if cost is None else round(cost, 12))


def _sum(values: Iterable[_N | None]) -> _N | None:
    present = [value for value in values if value is not None]
    return sum(present) if present else None


def _largest(values: Iterable[_N | None]) -> _N | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None
