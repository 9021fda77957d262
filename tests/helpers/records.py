"""What the record tests share: the attributes of minimal records, those records, and plain
views of captured spans and of tcc_otel's warnings."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest
from opentelemetry.sdk.trace import ReadableSpan

import tcc_otel as tcc
from tcc_otel.testing import CapturedSpans


def attributes(span: ReadableSpan) -> dict[str, object]:
    """The span's attributes as a plain dict."""
    return dict(span.attributes or {})


def typed(values: Mapping[str, object]) -> dict[str, tuple[str, object]]:
    """Pair each value with its type name, so ``True`` never equals ``1``."""
    return {key: (type(value).__name__, value) for key, value in values.items()}


def only(captured: CapturedSpans) -> ReadableSpan:
    """The single span captured."""
    spans = captured.spans
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Messages of the warnings (and worse) logged on ``tcc_otel``."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "tcc_otel" and record.levelno >= logging.WARNING
    ]


def step_attrs(**extra: object) -> dict[str, object]:
    """Attributes of ``tcc.step("run-1", step_id="step-1").prompt("p").response("r")``, plus
    ``extra``."""
    return {
        "tcc.type": "step",
        "tcc.runId": "run-1",
        "tcc.stepId": "step-1",
        "gen_ai.operation.name": "chat",
        "tcc.step.prompt": "p",
        "tcc.step.response": "r",
        "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "p"}]}]',
        "gen_ai.output.messages": (
            '[{"role": "assistant", "parts": [{"type": "text", "content": "r"}]}]'
        ),
        **extra,
    }


def run_attrs(**extra: object) -> dict[str, object]:
    """Attributes of ``tcc.run(run_id="run-1").prompt("hi")``, plus ``extra``."""
    return {
        "tcc.type": "run",
        "tcc.runId": "run-1",
        "gen_ai.operation.name": "invoke_agent",
        "tcc.run.user_prompt": "hi",
        "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
        **extra,
    }


def tool_attrs(**extra: object) -> dict[str, object]:
    """Attributes of ``tcc.tool_call("run-1", tool_call_id="call-1", tool_name="search")``, plus
    ``extra``."""
    return {
        "tcc.type": "tool_call",
        "tcc.runId": "run-1",
        "tcc.toolCallId": "call-1",
        "gen_ai.operation.name": "execute_tool",
        "tcc.tool_call.name": "search",
        "gen_ai.tool.name": "search",
        "gen_ai.tool.call.id": "call-1",
        **extra,
    }


def new_step() -> tcc.Step:
    return tcc.step("run-1", step_id="step-1").prompt("p").response("r")


def new_run() -> tcc.Run:
    return tcc.run(run_id="run-1").prompt("hi")


def new_tool_call() -> tcc.ToolCall:
    return tcc.tool_call("run-1", tool_call_id="call-1", tool_name="search")
