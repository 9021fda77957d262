"""A weather agent whose LLM calls are traced by OpenTelemetry's own OpenAI instrumentation
(``opentelemetry-instrumentation-openai-v2``) and whose runs are tcc_otel's.

The real ``openai`` client talks to the fake OpenAI-compatible server bundled with tcc_otel (no
key, no network): it is started here unless ``OPENAI_BASE_URL`` is set. Two LLM calls and one
tool call make one run. The first call is made inside a manual step, which sets the prompt
itself: TCC gets one step for it, the instrumentation's span filling in model, tokens and finish
reason. The second call is left to the instrumentation alone: it becomes a step of its own.

The application also runs its own tracing (a global ``TracerProvider`` printing a line per span
here): its exporter gets the whole tree, our run/step/tool spans included.

Run it with the packages it needs (``requirements-openai-v2.txt``; ``make demo-auto`` does it all)::

    tcc-otel dev                                   # a local receiver, in another terminal
    TCC_BASE_URL=http://127.0.0.1:4318 python examples/auto_instrumentation/openai_agent.py
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import tcc_otel as tcc
from tcc_otel.testing import FakeOpenAI

MODEL = "gpt-4o-mini"
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


class PrintingExporter(SpanExporter):
    """The team's own exporter, standing in for theirs: one line per span, with its parent."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            parent = f"{span.parent.span_id:016x}" if span.parent else "-"
            own = f"{span.context.span_id:016x}" if span.context else "-"
            sys.stderr.write(f"[app exporter] {span.name:<24} span {own} parent {parent}\n")
        return SpanExportResult.SUCCESS


def set_up_app_tracing() -> None:
    """What an application with its own OpenTelemetry setup does at start-up."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(PrintingExporter()))
    trace.set_tracer_provider(provider)
    set_logger_provider(LoggerProvider())  # where openai-v2 logs message content, if asked to
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    OpenAIInstrumentor().instrument()


def get_weather(city: str) -> str:
    return json.dumps({"city": city, "temperature": 15, "conditions": "cloudy"})


def agent(client: Any, question: str) -> str:
    """One run: an LLM call that asks for a tool, the tool, an LLM call that answers."""
    with tcc.run() as run:
        run.prompt(question, system_prompt="You are a weather agent.")
        messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
        with run.step() as step:  # a manual step around an instrumented call: one step at TCC
            step.prompt(question)
            first = client.chat.completions.create(
                model=MODEL, messages=messages, tools=[WEATHER_TOOL]
            )
            message = first.choices[0].message
            step.response(f"calls {message.tool_calls[0].function.name}")
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            with run.tool_call(call.function.name, tool_call_id=call.id) as tool:
                arguments = json.loads(call.function.arguments)
                result = get_weather(**arguments)
                tool.args(arguments).result(result)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        # left to the instrumentation: its span becomes a step of the run
        answer = client.chat.completions.create(model=MODEL, messages=messages)
        text = answer.choices[0].message.content or ""
        run.response(text)
    return text


def main() -> int:
    import openai

    set_up_app_tracing()
    with ExitStack() as stack:
        base_url = os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            base_url = stack.enter_context(FakeOpenAI()).base_url
        client = openai.OpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "-"))
        print(agent(client, "What is the weather in Paris?"))
    tcc.flush(10.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
