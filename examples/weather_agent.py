"""A weather agent traced with tcc_otel: one run, three steps (the second fails), one tool call.

The LLM and the weather API are small fake functions with short sleeps, so the script is
offline and deterministic and the span durations still show. The run uses the plain API
(``r = tcc.run()`` ... ``r.end()``), as in The Context Company's docs; steps and the tool call
use both styles: ``with`` blocks, and explicit ``.end()`` / ``.error()``.

See its spans with no account and no key (``make demo`` does both steps)::

    tcc-otel dev                       # a local receiver on 127.0.0.1:4318, in another terminal
    TCC_BASE_URL=http://127.0.0.1:4318 python examples/weather_agent.py

With ``TCC_API_KEY`` set (and no ``TCC_BASE_URL``), the spans go to The Context Company.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import tcc_otel as tcc

SYSTEM_PROMPT = "You are a weather agent. Use get_weather for current conditions. Be brief."
USER_PROMPT = "What is the weather in London?"
MODEL = "gpt-4o"

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    }
]

# USD per token: (uncached input, cached input, output); gpt-4o list prices.
PRICES = {"gpt-4o-2024-08-06": (2.50e-6, 1.25e-6, 10.00e-6)}


@dataclass(frozen=True)
class ToolRequest:
    """A tool call the model asks for."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Completion:
    """What a (fake) chat completion returns."""

    model: str
    text: str
    finish_reason: str
    prompt_uncached: int
    prompt_cached: int
    completion: int
    tool_calls: tuple[ToolRequest, ...] = ()

    @property
    def cost(self) -> float:
        uncached, cached, output = PRICES[self.model]
        total = (
            self.prompt_uncached * uncached + self.prompt_cached * cached + self.completion * output
        )
        return round(total, 8)


class FakeLLM:
    """Replays scripted completions; an exception in the script is raised instead."""

    def __init__(self, script: list[Completion | Exception]) -> None:
        self._script = list(script)

    def chat(self, model: str, messages: list[dict[str, Any]]) -> Completion:
        time.sleep(0.03)  # the "network round trip", so the step span has a duration
        outcome = self._script.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def get_weather(city: str, unit: str = "celsius") -> dict[str, Any]:
    """The tool: a fake weather API."""
    time.sleep(0.02)
    return {"city": city, "temperature": 15, "unit": unit, "conditions": "cloudy"}


def render(messages: list[dict[str, Any]]) -> str:
    """The step prompt as it would be sent: one ``role: content`` line per message."""
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def destination() -> str | None:
    """Where this process's spans go, from the environment tcc_otel reads; ``None``: nowhere."""
    key = os.environ.get("TCC_API_KEY", "").strip()
    base = os.environ.get("TCC_BASE_URL", "").strip().rstrip("/")
    if not key and urlsplit(base).hostname not in ("localhost", "127.0.0.1", "::1"):
        return None  # without a key, spans are sent only to a receiver on this machine
    if not base:
        host = "dev.thecontext.company" if key.startswith("dev_") else "api.thecontext.company"
        base = f"https://{host}"
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def main() -> None:
    llm = FakeLLM(
        [
            Completion(
                model="gpt-4o-2024-08-06",
                text="",
                finish_reason="tool_call",
                prompt_uncached=312,
                prompt_cached=0,
                completion=18,
                tool_calls=(
                    ToolRequest("call_w1", "get_weather", {"city": "London", "unit": "celsius"}),
                ),
            ),
            TimeoutError("chat completion timed out after 30 s"),
            Completion(
                model="gpt-4o-2024-08-06",
                text="It is 15 °C and cloudy in London right now.",
                finish_reason="stop",
                prompt_uncached=62,
                prompt_cached=312,
                completion=14,
            ),
        ]
    )

    r = tcc.run(session_id="session-7f3a", conversational=True)
    r.prompt(USER_PROMPT, system_prompt=SYSTEM_PROMPT)
    r.metadata({"tcc.agent": "weather", "tcc.userId": "user-42"}, plan="pro")

    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": USER_PROMPT},
    ]

    # Step 1, as a context manager: ends on exit, or is marked as error if the body raises.
    with r.step() as s:
        s.prompt(render(messages)).tool_definitions(TOOLS)
        c = llm.chat(MODEL, messages)
        asked = [{"id": t.id, "name": t.name, "arguments": t.arguments} for t in c.tool_calls]
        s.response(asked)  # any value: a list or dict is recorded as JSON
        s.model(requested=MODEL, used=c.model).finish_reason(c.finish_reason).cost(c.cost)
        s.tokens(
            prompt_uncached=c.prompt_uncached,
            prompt_cached=c.prompt_cached,
            completion=c.completion,
        )

    # The tools the model asked for, each as a context manager too.
    for call in c.tool_calls:
        with r.tool_call(call.name, tool_call_id=call.id) as tc:
            tc.args(call.arguments)
            weather = get_weather(**call.arguments)
            tc.result(weather)
        messages.append({"role": "tool", "content": json.dumps(weather)})

    # Step 2, with the plain API: the LLM call times out. A failed step needs no response,
    # and it does not fail the run.
    s = r.step()
    s.prompt(render(messages)).model(requested=MODEL)
    try:
        c = llm.chat(MODEL, messages)
        s.response(c.text).end()
    except TimeoutError as e:
        s.error(str(e))

    # Step 3: the retry succeeds.
    s = r.step()
    s.prompt(render(messages)).model(requested=MODEL)
    c = llm.chat(MODEL, messages)
    s.response(c.text).model(used=c.model).finish_reason(c.finish_reason).cost(c.cost)
    s.tokens(
        prompt_uncached=c.prompt_uncached, prompt_cached=c.prompt_cached, completion=c.completion
    )
    s.end()

    r.response(c.text)
    r.end()

    # Nothing waits on the network above: the spans are exported in the background, and what is
    # still pending is sent when the process exits. tcc.flush() sends it now, if you need to
    # (say, before a serverless handler returns); this script does not.
    where = destination()
    if where is None:
        print(
            f"run {r.run_id}: recorded, not sent: set TCC_API_KEY, or TCC_BASE_URL for tcc-otel dev"
        )
    else:
        print(f"run {r.run_id}: spans sent to {where}")


if __name__ == "__main__":
    main()
