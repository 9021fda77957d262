"""Tests for tcc_otel._local._runs: which run a span belongs to."""

from __future__ import annotations

from collections.abc import Iterable

from helpers.received import OTHER_TRACE, RUN, RUN_SPAN, TOOL, TRACE, USER_SPAN, make_span, of

from tcc_otel._local._model import SpanKey
from tcc_otel._local._runs import group_runs, resolve
from tcc_otel._schema import _keys as attrs

RUN_KEY = (TRACE, RUN_SPAN.span_id)
TOOL_KEY = (TRACE, TOOL.span_id)
USER_KEY = (TRACE, USER_SPAN.span_id)
DEEPER = make_span("0000000000000006", USER_SPAN.span_id, "dns lookup", 911, 912, {})
"""A span the user opened inside ``USER_SPAN``: two levels below a span with a run id."""


class _Filed:
    """What a caller filed before: spans with their runs, and spans still waiting."""

    def __init__(self, runs: dict[SpanKey, str], waiting: dict[SpanKey, list[SpanKey]]) -> None:
        self.runs = runs
        self.waiting = waiting
        self.asked: list[SpanKey] = []

    def run_of(self, key: SpanKey) -> str | None:
        self.asked.append(key)
        return self.runs.get(key)

    def waiting_under(self, key: SpanKey) -> Iterable[SpanKey]:
        return self.waiting.get(key, [])


class TestGroupRuns:
    def test_groups(self) -> None:
        """Spans group by tcc.runId; a span without one follows its ancestor, else its trace."""
        other_run = make_span(
            "0000000000000009", None, "invoke_agent", 0, 1, {attrs.TCC_RUN_ID: "run-2"}
        )
        stray = make_span("0000000000000007", None, "GET /", 0, 5, {}, trace_id=OTHER_TRACE)
        spans = [USER_SPAN, stray, TOOL, other_run, RUN_SPAN]
        assert group_runs(spans) == {
            RUN: [USER_SPAN, TOOL, RUN_SPAN],
            OTHER_TRACE: [stray],
            "run-2": [other_run],
        }


class TestResolve:
    def test_nearest_ancestor(self) -> None:
        """A span without a run id takes its nearest ancestor's run, however deep, in any order."""
        assert resolve([DEEPER, USER_SPAN, TOOL]) == {
            TOOL_KEY: RUN,
            USER_KEY: RUN,
            (TRACE, DEEPER.span_id): RUN,
        }

    def test_own_run_id_wins(self) -> None:
        """A span's own tcc.runId is its run even under a span of another run (a sub-agent)."""
        inner = make_span("00000000000000a1", TOOL.span_id, "invoke_agent", 0, 1, of("run"))
        inner.attributes[attrs.TCC_RUN_ID] = "run-inner"
        assert resolve([TOOL, inner]) == {TOOL_KEY: RUN, inner.key: "run-inner"}

    def test_ancestor_not_here(self) -> None:
        """A span whose ancestors carry no run id, or have not arrived, is left out."""
        root = make_span("00000000000000b1", None, "GET /", 0, 5, {})
        child = make_span("00000000000000b2", root.span_id, "db", 1, 2, {})
        assert resolve([USER_SPAN, DEEPER, root, child]) == {}

    def test_parent_filed_before(self) -> None:
        """A span whose parent was filed earlier takes the parent's run from ``known``."""
        known = _Filed({TOOL_KEY: RUN}, {})
        assert resolve([DEEPER, USER_SPAN], known) == {USER_KEY: RUN, (TRACE, DEEPER.span_id): RUN}
        assert sorted(known.asked) == sorted([USER_KEY, TOOL_KEY])

    def test_waiting_spans_are_placed(self) -> None:
        """Spans that waited for an ancestor are placed when it comes, through waiting parents."""
        known = _Filed({}, {TOOL_KEY: [USER_KEY], USER_KEY: [(TRACE, DEEPER.span_id)]})
        assert resolve([TOOL], known) == {
            TOOL_KEY: RUN,
            USER_KEY: RUN,
            (TRACE, DEEPER.span_id): RUN,
        }

    def test_cycle(self) -> None:
        """Spans whose parents form a cycle end, placed only through a run id among them."""
        first = make_span("00000000000000c1", "00000000000000c2", "a", 0, 1, {})
        second = make_span("00000000000000c2", "00000000000000c1", "b", 0, 1, of("step"))
        assert resolve([first, second]) == {first.key: RUN, second.key: RUN}
        assert resolve([first]) == {}
