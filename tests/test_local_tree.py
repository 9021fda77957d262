"""Tests for tcc_otel._local._tree (rendering) and tcc_otel._local._printer (when runs print)."""

from __future__ import annotations

from typing import Any

from tcc_otel._local._printer import RunPrinter
from tcc_otel._local._receiver import ReceivedSpan
from tcc_otel._local._tree import group_runs, render_run
from tcc_otel._schema import _keys as attrs

TRACE = "0af7651916cd43dd8448eb211c80319c"
OTHER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
RUN = "3f2a9c1e-77b4-4d2e-9a51-0c6f2d1b8e40"
MS = 1_000_000
"""Nanoseconds in a millisecond."""


def _span(
    span_id: str,
    parent: str | None,
    name: str,
    start_ms: float,
    end_ms: float,
    attributes: dict[str, Any],
    status: str = "UNSET",
    message: str = "",
    trace_id: str = TRACE,
) -> ReceivedSpan:
    return ReceivedSpan(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind="INTERNAL",
        start_ns=int(start_ms * MS),
        end_ns=int(end_ms * MS),
        status_code=status,
        status_message=message,
        attributes=attributes,
        events=[],
        resource={"service.name": "weather-agent"},
        scope_name="tcc_otel",
    )


def _of(kind: str, **extra: Any) -> dict[str, Any]:
    return {attrs.TCC_RUN_ID: RUN, attrs.TCC_TYPE: kind, **extra}


RUN_SPAN = _span(
    "0000000000000001",
    None,
    "invoke_agent weather",
    0,
    1230,
    {
        **_of("run"),
        attrs.GEN_AI_USAGE_INPUT_TOKENS: 520,
        attrs.GEN_AI_USAGE_OUTPUT_TOKENS: 87,
    },
)
STEP = _span(
    "0000000000000002",
    "0000000000000001",
    "chat gpt-4o",
    1,
    801,
    {
        **_of("step"),
        attrs.GEN_AI_REQUEST_MODEL: "gpt-4o",
        attrs.GEN_AI_RESPONSE_MODEL: "gpt-4o",
        attrs.GEN_AI_USAGE_INPUT_TOKENS: 400,
        attrs.GEN_AI_USAGE_OUTPUT_TOKENS: 50,
        attrs.STEP_REAL_TOTAL_COST: 0.0031,
        attrs.STEP_FINISH_REASON: "tool_call",
    },
)
TOOL = _span(
    "0000000000000003",
    "0000000000000001",
    "execute_tool get_weather",
    900,
    1000,
    {**_of("tool_call"), attrs.GEN_AI_TOOL_NAME: "get_weather"},
    status="ERROR",
    message="timeout\nafter 5 s",
)
USER_SPAN = _span("0000000000000005", "0000000000000003", "http get", 910, 914.5, {})
LAST_STEP = _span(
    "0000000000000004",
    "0000000000000001",
    "chat",
    1000,
    1225.5,
    {
        **_of("step"),
        attrs.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        attrs.GEN_AI_USAGE_INPUT_TOKENS: 120,
        attrs.GEN_AI_USAGE_OUTPUT_TOKENS: 37,
        attrs.STEP_REAL_TOTAL_COST: 0.001,
        attrs.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
    },
)
ONE_RUN = [TOOL, STEP, LAST_STEP, USER_SPAN, RUN_SPAN]
"""A run in arrival order: children first, the run span last."""

TREE = (
    "invoke_agent weather         1.23 s  OK     run 3f2a9c1e…  tokens 520→87  cost $0.0041\n"
    "├─ chat gpt-4o               800 ms  OK     tokens 400→50  cost $0.0031  finish tool_call\n"
    "├─ execute_tool get_weather  100 ms  ERROR  error: timeout after 5 s\n"
    "│  └─ http get               4.5 ms  OK\n"
    "└─ chat                      226 ms  OK     model gpt-4o-mini  tokens 120→37  cost $0.001"
    "  finish stop"
)


class TestRenderRun:
    def test_run_tree(self) -> None:
        """A run renders as an aligned tree ordered by start time, with the run's summed cost."""
        assert render_run(ONE_RUN) == TREE

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
            _span("00000000000000b1", "00000000000000ff", "late root", 20, 45, {}),
            _span("00000000000000a1", None, "early root", 10, 12, {}),
            _span("00000000000000c1", "00000000000000c2", "cycle a", 30, 31, {}),
            _span("00000000000000c2", "00000000000000c1", "cycle b", 32, 33, {}),
        ]
        assert render_run(spans) == (
            "early root  2.0 ms  OK\n"
            "late root    25 ms  OK\n"
            "cycle a     1.0 ms  OK\n"
            "└─ cycle b  1.0 ms  OK"
        )

    def test_untrusted_text(self) -> None:
        """Control characters in received text are blanked and long names are cut."""
        span = _span("0000000000000001", None, "a\x1b[2Jb" + "x" * 100, 0, 2000, {})
        assert render_run([span]) == "a [2Jb" + "x" * 73 + "…  2.00 s  OK"

    def test_empty(self) -> None:
        """No spans render as an empty string."""
        assert render_run([]) == ""


class TestGroupRuns:
    def test_groups(self) -> None:
        """Spans group by tcc.runId; a span without one follows its ancestor, else its trace."""
        other_run = _span(
            "0000000000000009", None, "invoke_agent", 0, 1, {attrs.TCC_RUN_ID: "run-2"}
        )
        stray = _span("0000000000000007", None, "GET /", 0, 5, {}, trace_id=OTHER_TRACE)
        spans = [USER_SPAN, stray, TOOL, other_run, RUN_SPAN]
        assert group_runs(spans) == {
            RUN: [USER_SPAN, TOOL, RUN_SPAN],
            OTHER_TRACE: [stray],
            "run-2": [other_run],
        }


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

    def test_spans_outside_runs(self) -> None:
        """Spans that belong to no run print per trace after the orphan settle, not as runs."""
        output = _Output()
        printer = _printer(output)
        stray = _span("0000000000000007", None, "GET /", 0, 5, {}, trace_id=OTHER_TRACE)
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
