"""Received spans of one run built by hand (a run, two steps, a tool call, a user's span inside
the tool call) and the tree ``tcc-otel dev`` prints for them: for the tree, printer, resolver and
rollup tests."""

from __future__ import annotations

from typing import Any

from tcc_otel._local._model import ReceivedSpan
from tcc_otel._schema import _keys as attrs

TRACE = "0af7651916cd43dd8448eb211c80319c"
"""The trace of every span unless a test names another."""
OTHER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
RUN = "3f2a9c1e-77b4-4d2e-9a51-0c6f2d1b8e40"
"""The run id of ``of()``'s spans."""
MS = 1_000_000
"""Nanoseconds in a millisecond."""


def make_span(
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
    """A span of ``trace_id`` (default ``TRACE``), times in ms; kind INTERNAL."""
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


def of(kind: str, **extra: Any) -> dict[str, Any]:
    """Attributes of a ``kind`` span (``run``, ``step``, ``tool_call``) of run ``RUN``."""
    return {attrs.TCC_RUN_ID: RUN, attrs.TCC_TYPE: kind, **extra}


RUN_SPAN = make_span(
    "0000000000000001",
    None,
    "invoke_agent weather",
    0,
    1230,
    {
        **of("run"),
        attrs.GEN_AI_USAGE_INPUT_TOKENS: 520,
        attrs.GEN_AI_USAGE_OUTPUT_TOKENS: 87,
    },
)
STEP = make_span(
    "0000000000000002",
    "0000000000000001",
    "chat gpt-4o",
    1,
    801,
    {
        **of("step"),
        attrs.GEN_AI_REQUEST_MODEL: "gpt-4o",
        attrs.GEN_AI_RESPONSE_MODEL: "gpt-4o",
        attrs.GEN_AI_USAGE_INPUT_TOKENS: 400,
        attrs.GEN_AI_USAGE_OUTPUT_TOKENS: 50,
        attrs.STEP_REAL_TOTAL_COST: 0.0031,
        attrs.STEP_FINISH_REASON: "tool_call",
    },
)
TOOL = make_span(
    "0000000000000003",
    "0000000000000001",
    "execute_tool get_weather",
    900,
    1000,
    {**of("tool_call"), attrs.GEN_AI_TOOL_NAME: "get_weather"},
    status="ERROR",
    message="timeout\nafter 5 s",
)
USER_SPAN = make_span("0000000000000005", "0000000000000003", "http get", 910, 914.5, {})
LAST_STEP = make_span(
    "0000000000000004",
    "0000000000000001",
    "chat",
    1000,
    1225.5,
    {
        **of("step"),
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
