"""Tests for tcc_otel._local._printer: when each run's tree is printed, and under which run."""

from __future__ import annotations

from helpers.received import (
    LAST_STEP,
    ONE_RUN,
    OTHER_TRACE,
    RUN,
    RUN_SPAN,
    STEP,
    TOOL,
    TREE,
    USER_SPAN,
    make_span,
)

from tcc_otel._local._printer import RunPrinter


class _Output:
    """Collects what the printer writes, and a clock the test moves by hand."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.now = 0.0

    def write(self, text: str) -> None:
        self.texts.append(text)

    def clock(self) -> float:
        return self.now


def _printer(output: _Output) -> RunPrinter:
    return RunPrinter(output.write, settle=0.5, orphan_settle=2.0, clock=output.clock)


class TestRunPrinter:
    def test_waits_for_settle(self) -> None:
        """Children first, run span later: the tree prints `settle` seconds after the last span."""
        output = _Output()
        printer = _printer(output)
        printer.add([TOOL, STEP, USER_SPAN])
        output.now = 0.3
        printer.add([LAST_STEP, RUN_SPAN])
        assert printer.flush_due(0.7) == 0
        assert output.texts == []
        assert printer.flush_due(0.8) == 1
        assert printer.flush_due(5.0) == 0
        assert output.texts == [TREE + "\n\n"]
        assert printer.runs_printed == 1

    def test_late_spans(self) -> None:
        """Spans of a printed run come out as an addendum that does not count as a run."""
        output = _Output()
        printer = _printer(output)
        printer.add([RUN_SPAN, STEP])
        printer.flush_due(0.5)
        output.now = 3.0
        printer.add([TOOL, USER_SPAN])
        assert printer.flush_due(3.5) == 0
        assert output.texts[1:] == [
            f"late spans for run {RUN}:\n"
            "execute_tool get_weather  100 ms  ERROR  error: timeout after 5 s\n"
            "└─ http get               4.5 ms  OK\n\n"
        ]
        assert printer.runs_printed == 1

    def test_run_span_elsewhere(self) -> None:
        """Spans of a run whose run span never comes print after the longer orphan settle."""
        output = _Output()
        printer = _printer(output)
        printer.add([STEP])
        assert printer.flush_due(1.9) == 0
        assert printer.flush_due(2.0) == 1
        assert output.texts == [
            f"run {RUN} (its run span was not received here; "
            "it may have been recorded by another process):\n"
            "chat gpt-4o  800 ms  OK  tokens 400→50  cost $0.0031  finish tool_call\n\n"
        ]

    def test_runless_child_waits_for_its_parent(self) -> None:
        """A span without tcc.runId that arrives before its parent joins the run once it comes."""
        output = _Output()
        printer = _printer(output)
        printer.add([USER_SPAN])
        output.now = 1.0
        printer.add([TOOL, STEP, LAST_STEP, RUN_SPAN])
        assert printer.flush_due(1.5) == 1
        assert printer.flush_due(10.0) == 0
        assert output.texts == [TREE + "\n\n"]

    def test_runless_chain_waits(self) -> None:
        """Spans without tcc.runId two levels below a run span join the run once it comes."""
        output = _Output()
        printer = _printer(output)
        deeper = make_span("0000000000000006", USER_SPAN.span_id, "dns", 911, 912, {})
        printer.add([deeper])
        printer.add([USER_SPAN])
        assert printer.flush_due(1.9) == 0
        printer.add([TOOL, RUN_SPAN])
        assert printer.flush_due(2.5) == 1
        assert output.texts == [
            "invoke_agent weather         1.23 s  OK     run 3f2a9c1e…  tokens 520→87\n"
            "└─ execute_tool get_weather  100 ms  ERROR  error: timeout after 5 s\n"
            "   └─ http get               4.5 ms  OK\n"
            "      └─ dns                 1.0 ms  OK\n\n"
        ]

    def test_spans_outside_runs(self) -> None:
        """Spans that belong to no run print per trace after the orphan settle, not as runs."""
        output = _Output()
        printer = _printer(output)
        stray = make_span("0000000000000007", None, "GET /", 0, 5, {}, trace_id=OTHER_TRACE)
        printer.add([stray])
        assert printer.flush_due(2.0) == 0
        assert output.texts == [
            f"trace {OTHER_TRACE} (spans outside any tcc run):\nGET /  5.0 ms  OK\n\n"
        ]
        assert printer.runs_printed == 0

    def test_flush_all(self) -> None:
        """flush_all prints everything pending without waiting."""
        output = _Output()
        printer = _printer(output)
        printer.add(ONE_RUN)
        assert printer.flush_all() == 1
        assert output.texts == [TREE + "\n\n"]

    def test_write_may_call_back(self) -> None:
        """write runs outside the printer's lock, so it may read the printer's state."""
        seen: list[int] = []
        printer = RunPrinter(lambda _: seen.append(printer.runs_printed), clock=lambda: 0.0)
        printer.add(ONE_RUN)
        printer.flush_due(1.0)
        assert seen == [1]
