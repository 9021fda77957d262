"""Tests for tcc_otel._local._tree: received spans rendered as a run tree."""

from __future__ import annotations

from dataclasses import replace

from helpers.received import LAST_STEP, ONE_RUN, RUN_SPAN, STEP, TOOL, TREE, make_span, of

from tcc_otel._local._tree import render_run
from tcc_otel._schema import _keys as attrs


class TestRenderRun:
    def test_run_tree(self) -> None:
        """A run renders as an aligned tree ordered by start time, with the run's summed cost."""
        assert render_run(ONE_RUN) == TREE

    def test_run_totals(self) -> None:
        """A run span's line shows its run's totals (``_rollup``): its own tcc.run.total_cost
        over the steps' sum, and the steps' tokens summed when it carries none."""
        run = replace(RUN_SPAN, attributes=of("run", **{attrs.RUN_TOTAL_COST: 0.01}))
        first_line = render_run([STEP, LAST_STEP, run]).splitlines()[0]
        assert first_line == (
            "invoke_agent weather  1.23 s  OK  run 3f2a9c1e…  tokens 520→87  cost $0.01"
        )

    def test_color(self) -> None:
        """With color=True errors are red and the run id is dim; nothing else changes."""
        red, dim, reset = "\x1b[31m", "\x1b[2m", "\x1b[0m"
        assert render_run([TOOL, RUN_SPAN], color=True) == (
            f"invoke_agent weather         1.23 s  OK     run {dim}3f2a9c1e…{reset}"
            "  tokens 520→87\n"
            f"└─ execute_tool get_weather  100 ms  {red}ERROR{reset}"
            f"  {red}error: timeout after 5 s{reset}"
        )

    def test_roots(self) -> None:
        """Spans whose parent is absent are roots by start time; a parent cycle still shows."""
        spans = [
            make_span("00000000000000b1", "00000000000000ff", "late root", 20, 45, {}),
            make_span("00000000000000a1", None, "early root", 10, 12, {}),
            make_span("00000000000000c1", "00000000000000c2", "cycle a", 30, 31, {}),
            make_span("00000000000000c2", "00000000000000c1", "cycle b", 32, 33, {}),
        ]
        assert render_run(spans) == (
            "early root  2.0 ms  OK\n"
            "late root    25 ms  OK\n"
            "cycle a     1.0 ms  OK\n"
            "└─ cycle b  1.0 ms  OK"
        )

    def test_untrusted_text(self) -> None:
        """Control characters in received text are blanked and long names are cut."""
        span = make_span("0000000000000001", None, "a\x1b[2Jb" + "x" * 100, 0, 2000, {})
        assert render_run([span]) == "a [2Jb" + "x" * 73 + "…  2.00 s  OK"

    def test_empty(self) -> None:
        """No spans render as an empty string."""
        assert render_run([]) == ""
