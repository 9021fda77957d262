"""Ten agent runs at once under asyncio, each with its steps and a tool call.

``async with tcc.run()`` makes the run's span the active span of its own task only, so the steps
and tool calls a task opens land under that task's run, however the tasks interleave. Each task
checks this as it goes (every span it opens is in its run's trace) and the script prints one
line per run.

See the spans (ten trees) with the local receiver::

    tcc-otel dev --runs 10             # in another terminal
    TCC_BASE_URL=http://127.0.0.1:4318 python examples/async_agent.py
"""

from __future__ import annotations

import asyncio

from opentelemetry import trace

import tcc_otel as tcc

CITIES = ["London", "Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Delhi", "Quito", "Perth", "Rome"]


def current_trace_id() -> int:
    """Trace id of the span active in this task (0 when none is)."""
    return trace.get_current_span().get_span_context().trace_id


async def fake_llm(prompt: str, delay: float) -> str:
    """Stands in for an LLM call; the delays differ per task so the tasks interleave."""
    await asyncio.sleep(delay)
    return f"answer to: {prompt}"


async def agent(index: int, city: str) -> tuple[str, int, int]:
    """One run: a step, a tool call, a second step. Returns (run id, trace id, spans checked)."""
    delay = 0.01 + 0.003 * (index % 4)
    checked = 0
    async with tcc.run(session_id=f"session-{index}") as r:
        r.prompt(f"What should I pack for {city}?", system_prompt="You are a travel agent.")
        r.metadata({"tcc.agent": "packing", "tcc.userId": f"user-{index}"})
        run_trace = current_trace_id()

        async with r.step() as s:
            s.prompt(f"Weather in {city}?").model(requested="gpt-4o-mini")
            s.response(await fake_llm(f"weather in {city}", delay)).finish_reason("tool_call")
            s.tokens(prompt_uncached=40 + index, completion=12)
            checked += int(current_trace_id() == run_trace)

        async with r.tool_call("get_forecast") as t:
            t.args({"city": city, "days": 3})
            await asyncio.sleep(delay)
            t.result({"city": city, "forecast": ["rain", "sun", "sun"]})
            checked += int(current_trace_id() == run_trace)

        async with r.step() as s:
            s.prompt(f"Packing list for {city}, forecast rain, sun, sun").model("gpt-4o-mini")
            answer = await fake_llm(f"packing list for {city}", delay)
            s.response(answer).finish_reason("stop").tokens(prompt_uncached=85, completion=30)
            checked += int(current_trace_id() == run_trace)

        r.response(answer)
    return r.run_id, run_trace, checked


async def main() -> None:
    results = await asyncio.gather(*(agent(i, city) for i, city in enumerate(CITIES)))
    for run_id, trace_id, checked in results:
        print(f"run {run_id}  trace {trace_id:032x}  {checked}/3 child spans in this run's trace")
    distinct_traces = len({trace_id for _, trace_id, _ in results})
    if distinct_traces != len(results) or any(checked != 3 for _, _, checked in results):
        raise SystemExit("a span landed outside its own run: context leaked between tasks")


if __name__ == "__main__":
    asyncio.run(main())
