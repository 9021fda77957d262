"""Usage code that must pass mypy --strict: the public API's types, as a user writes them."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace import TracerProvider

import tcc_otel as tcc
from tcc_otel.testing import capture


def chained() -> str:
    r: tcc.Run = tcc.run(session_id="s-1", conversational=True)
    r.prompt("What is the weather in London?", system_prompt="You are a weather agent.")
    r.metadata({"tcc.agent": "weather"}, plan="pro").status(0)
    s: tcc.Step = r.step().prompt("p").response("r").model(requested="gpt-4o", used="gpt-4o-1")
    s.tokens(prompt_uncached=10, prompt_cached=2, completion=5).cost(0.001).finish_reason("stop")
    s.tool_definitions([{"name": "get_weather"}]).status(0).end()
    t: tcc.ToolCall = r.tool_call("get_weather").args({"city": "London"}).result("15C")
    t.status(2, "tool failed").end()
    tcc.step(run_id=r.run_id).error("timeout")
    tcc.tool_call(r.run_id, tool_name="search").error()
    r.response("15C").end()
    accepted: bool = tcc.submit_feedback(r.run_id, score="thumbs_up")
    return f"{r.run_id} {accepted}"


def config_helpers() -> str:
    key: str = tcc.get_api_key()
    other: str = tcc.get_api_key(api_key="dev_key")
    url: str = tcc.get_url("/v1/feedback")
    return url + tcc.get_url("/v1/custom", api_key=other) + key


def managed() -> None:
    with tcc.run() as r, r.step() as s:
        s.prompt("p").response("r")
        with s.tool_call("search") as t:
            t.name("search")
        r.prompt("u")


async def in_tasks() -> None:
    async def one() -> None:
        async with tcc.run() as r:
            r.prompt("u")
            async with r.step() as s:
                s.prompt("p").response("r")

    await asyncio.gather(one(), one())


def configured(provider: TracerProvider) -> bool:
    tcc.configure(tracer_provider=provider, capture_content=False, shutdown_timeout=2.0)
    with capture() as spans:
        managed()
        names = [span.name for span in spans.spans]
    tcc.shutdown()
    return bool(names) and tcc.flush(timeout=1.0) and "dropped" in tcc.stats()
