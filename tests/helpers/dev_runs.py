"""Runs recorded with tcc_otel for the tests of the tcc-otel dev store and API, and the run
summaries expected of them."""

from __future__ import annotations

from typing import Any

import tcc_otel as tcc

KEY = "test-key-123"
TIMES = ("start_ns", "end_ns", "duration_ms", "offset_ms")
"""Clock-dependent fields, left out of whole-structure comparisons."""


def record_run(run_id: str, *, session: str = "session-1", agent: str = "weather") -> None:
    """Record one run: a step with model, tokens and cost, a tool call, and a failed step."""
    with tcc.run(run_id=run_id, session_id=session) as r:
        r.prompt("Weather in London?").metadata({"tcc.agent": agent})
        with r.step(step_id=f"{run_id}-s1") as s:
            s.prompt("Weather in London?").model(requested="gpt-4o", used="gpt-4o-2024-08-06")
            s.response("Calling get_weather.").finish_reason("tool_call")
            s.tokens(prompt_uncached=100, prompt_cached=20, completion=18).cost(0.0005)
        with r.tool_call("get_weather", tool_call_id=f"{run_id}-t1") as t:
            t.args({"city": "London"}).result({"temperature": 15})
        r.step(step_id=f"{run_id}-s2").prompt("Summarise").error("model overloaded")
        r.response("15 °C.")


def failed_run(run_id: str, *, session: str = "session-2", agent: str = "search") -> None:
    """Record a run whose status is error, with one step of another model."""
    with tcc.run(run_id=run_id, session_id=session) as r:
        r.prompt("Find it").metadata({"tcc.agent": agent})
        with r.step(step_id=f"{run_id}-s1") as s:
            s.prompt("Find it").model(used="gpt-4o-mini").tokens(prompt_uncached=7, completion=3)
            s.response("Nothing.").cost(0.0001)
        r.status(2, "search failed")


def untimed(value: Any) -> Any:
    """``value`` without its clock-dependent fields, recursively."""
    if isinstance(value, dict):
        return {key: untimed(item) for key, item in value.items() if key not in TIMES}
    if isinstance(value, list):
        return [untimed(item) for item in value]
    return value


def summary(run_id: str, **changes: Any) -> dict[str, Any]:
    """The untimed summary of a run recorded by ``record_run``, with ``changes`` applied."""
    expected: dict[str, Any] = {
        "run_id": run_id,
        "name": "invoke_agent weather",
        "status": "ok",
        "session": "session-1",
        "agent": "weather",
        "models": ["gpt-4o-2024-08-06"],
        "input_tokens": 120,
        "output_tokens": 18,
        "total_tokens": 138,
        "total_cost": 0.0005,
        "span_count": 4,
        "error_count": 1,
    }
    expected.update(changes)
    return expected


FAILED = {
    "run_id": "run-f",
    "name": "invoke_agent search",
    "status": "error",
    "session": "session-2",
    "agent": "search",
    "models": ["gpt-4o-mini"],
    "input_tokens": 7,
    "output_tokens": 3,
    "total_tokens": 10,
    "total_cost": 0.0001,
    "span_count": 2,
    "error_count": 1,
}
