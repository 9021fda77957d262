"""A LangChain agent traced by Arize's OpenInference instrumentation, with its runs recorded by
tcc_otel: OpenInference's LLM spans become TCC steps and its tool spans TCC tool calls.

The chat model is LangChain's own fake one (no key, no network), made to report itself as an
OpenAI model with token usage, as ``ChatOpenAI`` does. Nothing here calls ``r.step()``: every
LLM call and tool invocation inside the run reaches TCC from the instrumentation's spans.

Run it with the packages it needs (``requirements-openinference.txt``)::

    tcc-otel dev                                   # a local receiver, in another terminal
    TCC_BASE_URL=http://127.0.0.1:4318 python examples/auto_instrumentation/langchain_agent.py
"""

from __future__ import annotations

import json
import sys
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import tcc_otel as tcc

QUESTION = "What is the weather in Paris?"


@tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return json.dumps({"city": city, "temperature": 15, "conditions": "cloudy"})


class FakeOpenAIChat(GenericFakeChatModel):
    """LangChain's fake chat model, reporting itself as an OpenAI model (as ChatOpenAI does)."""

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params.update(ls_provider="openai", ls_model_name="gpt-4o-mini")
        return params


def reply(content: str, input_tokens: int, output_tokens: int, **more: Any) -> AIMessage:
    """An answer as a provider integration returns it: model, finish reason and usage."""
    return AIMessage(
        content=content,
        usage_metadata={
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
        response_metadata={
            "model_name": "gpt-4o-mini-2024-07-18",
            "finish_reason": "tool_calls" if more.get("tool_calls") else "stop",
        },
        **more,
    )


def agent(question: str) -> str:
    call = {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}
    model = FakeOpenAIChat(
        messages=iter(
            [
                reply("", 24, 6, tool_calls=[call]),
                reply("It is 15 °C and cloudy in Paris.", 41, 9),
            ]
        )
    )
    with tcc.run() as run:
        run.prompt(question)
        history: list[BaseMessage] = [
            SystemMessage("You are a weather agent."),
            HumanMessage(question),
        ]
        answer = model.invoke(history)
        history.append(answer)
        for tool_call in answer.tool_calls:
            history.append(get_weather.invoke(tool_call))
        final = model.invoke(history)
        text = str(final.content)
        run.response(text)
    return text


def main() -> int:
    trace.set_tracer_provider(TracerProvider())  # the application's own provider
    LangChainInstrumentor().instrument()
    print(agent(QUESTION))
    tcc.flush(10.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
