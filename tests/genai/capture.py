"""Records what a third-party GenAI instrumentation emits, as JSON fixtures.

Run inside the family's venv (``bash tests/genai/venv.sh <family>`` prints its path)::

    .venv-genai/openai-v2/bin/python tests/genai/capture.py openai-v2 [--mode M] [--case C]

It drives the real ``openai`` client (and for OpenInference LangChain's fake chat models) against
``FakeOpenAI``, with the family's instrumentor installed as its docs say and a global SDK
``TracerProvider`` and ``LoggerProvider`` exporting to memory, and writes one file per case and
content mode: ``tests/schema/fixtures/genai/<family>-<case>-<mode>.json``. Without ``--mode`` it
runs itself once per mode in a fresh process (instrumentations read their settings once).

Each case runs inside a root span ``capture <case>`` of scope ``tests.genai.capture``, standing in
for a ``tcc.run()``; all other spans are the instrumentation's.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ROOT = Path(__file__).resolve().parents[2]
# tcc_otel, and genai.families as pytest and mypy see it (tests/ on the path), when run as a script
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from genai.families import FAMILIES, Family, Mode  # noqa: E402
from tcc_otel._local._fake_openai import FakeOpenAI  # noqa: E402

OUT = ROOT / "tests" / "schema" / "fixtures" / "genai"
MODEL = "gpt-4o-mini"
SYSTEM = "You are a terse assistant."
QUESTION = "What is OpenTelemetry?"
WEATHER_QUESTION = "What is the weather in Paris?"
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
# Prefixes of the settings a mode may set: cleared before each mode's process starts.
SETTING_PREFIXES = ("OTEL_", "TRACELOOP_", "OPENINFERENCE_")
PACKAGES = (
    "openai",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-openai-v2",
    "opentelemetry-util-genai",
    "opentelemetry-instrumentation-openai",
    "openinference-instrumentation-openai",
    "openinference-instrumentation-langchain",
    "langchain-core",
)


def _module(name: str) -> Any:
    """A third-party module, typed Any: it exists only in the family's venv."""
    return importlib.import_module(name)


def get_weather(city: str) -> str:
    """The tool the model calls: a fixed answer."""
    return json.dumps({"city": city, "temperature": 15, "conditions": "cloudy"})


# --- OpenAI cases ---------------------------------------------------------------------------


def _stream_message(stream: Iterable[Any]) -> dict[str, Any]:
    """Reads a chat completion stream to the end; returns the assistant message it spelled."""
    text = ""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in stream:
        for choice in chunk.choices:
            delta = choice.delta
            text += delta.content or ""
            for part in delta.tool_calls or []:
                call = calls.setdefault(
                    part.index, {"id": "", "type": "function", "function": {"name": ""}}
                )
                call["id"] = part.id or call["id"]
                if part.function is not None:
                    call["function"]["name"] += part.function.name or ""
                    arguments = call["function"].get("arguments", "")
                    call["function"]["arguments"] = arguments + (part.function.arguments or "")
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    return message


def _tools_round_trip(client: Any, stream: bool) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": WEATHER_QUESTION}]
    extra: dict[str, Any] = {}
    if stream:
        extra = {"stream": True, "stream_options": {"include_usage": True}}
    first = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL], **extra
    )
    if stream:
        message = _stream_message(first)
    else:
        message = first.choices[0].message.model_dump(exclude_none=True)
    messages.append(message)
    for call in message["tool_calls"]:
        arguments = json.loads(call["function"]["arguments"])
        result = get_weather(**arguments)
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
    second = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL], **extra
    )
    if stream:
        _stream_message(second)


def _openai_case(case: str, base_url: str) -> None:
    client = _module("openai").OpenAI(base_url=base_url, api_key="anything", max_retries=0)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    if case == "chat":
        client.chat.completions.create(
            model=MODEL, messages=messages, temperature=0.2, max_tokens=50
        )
    elif case == "stream":
        stream = client.chat.completions.create(
            model=MODEL,
            messages=messages,
            temperature=0.2,
            max_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )
        _stream_message(stream)
    else:
        _tools_round_trip(client, stream=case == "tools-stream")


# --- LangChain cases (OpenInference) --------------------------------------------------------


def _ai_message(content: str, prompt: int, completion: int, **extra: Any) -> Any:
    """An AIMessage as a provider integration returns it: model name, finish reason, usage."""
    messages = _module("langchain_core.messages")
    usage = {
        "input_tokens": prompt,
        "output_tokens": completion,
        "total_tokens": prompt + completion,
        "input_token_details": {"cache_read": prompt // 2},
    }
    metadata = {"model_name": MODEL + "-2024-07-18", "finish_reason": "stop"}
    if extra.get("tool_calls"):
        metadata["finish_reason"] = "tool_calls"
    return messages.AIMessage(
        content=content, usage_metadata=usage, response_metadata=metadata, **extra
    )


def _chat_model(*replies: Any) -> Any:
    """LangChain's GenericFakeChatModel replying ``replies`` in turn, posing as an OpenAI model
    (``ls_provider`` "openai", ``ls_model_name`` "gpt-4o-mini") as ChatOpenAI reports itself."""
    base: Any = _module("langchain_core.language_models.fake_chat_models").GenericFakeChatModel

    class FakeChatOpenAI(base):  # type: ignore[misc]
        model_name: str = MODEL

        def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
            params = super()._get_ls_params(stop=stop, **kwargs)
            params.update(ls_provider="openai", ls_model_name=self.model_name)
            return params

    return FakeChatOpenAI(messages=iter(replies))


def _langchain_case(case: str) -> None:
    messages = _module("langchain_core.messages")
    if case == "langchain-chat":
        model = _chat_model(_ai_message("Echo: " + QUESTION, 12, 4))
        model.invoke([messages.SystemMessage(SYSTEM), messages.HumanMessage(QUESTION)])
    elif case == "langchain-tool":
        tool = _module("langchain_core.tools").tool(get_weather)
        call = {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}
        answer = "Tool said: " + get_weather("Paris")
        model = _chat_model(
            _ai_message("", 14, 6, tool_calls=[{**call, "type": "tool_call"}]),
            _ai_message(answer, 30, 8),
        )
        history: list[Any] = [messages.HumanMessage(WEATHER_QUESTION)]
        reply = model.invoke(history)
        history.append(reply)
        for tool_call in reply.tool_calls:
            history.append(tool.invoke(tool_call))  # a ToolCall in, a ToolMessage out
        model.invoke(history)
    elif case == "langchain-chain":
        runnables = _module("langchain_core.runnables")
        model = _chat_model(_ai_message("Echo: " + QUESTION, 9, 4))
        prompt = runnables.RunnableLambda(lambda text: [messages.HumanMessage(text)])
        chain = prompt | model
        chain.invoke(QUESTION)
    else:
        raise ValueError(case)


# --- instrumentation, recording, output -----------------------------------------------------


def _instrument(family: Family, mode: Mode) -> None:
    """Installs the family's instrumentors the way their docs say (global providers)."""
    if family.name == "openai-v2":
        _module("opentelemetry.instrumentation.openai_v2").OpenAIInstrumentor().instrument()
    elif family.name in ("openllmetry", "openllmetry-legacy"):
        instrumentor = _module("opentelemetry.instrumentation.openai").OpenAIInstrumentor
        instrumentor(**mode.options).instrument()
    elif family.name == "openinference":
        _module("openinference.instrumentation.openai").OpenAIInstrumentor().instrument()
        _module("openinference.instrumentation.langchain").LangChainInstrumentor().instrument()
    else:
        raise ValueError(family.name)


def _jsonable(value: Any) -> Any:
    """Attribute and log body values as JSON: tuples as lists, bytes as base64, others as str."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return str(value)


def _hex(number: int | None, width: int) -> str | None:
    return format(number, f"0{width}x") if number else None


def _span(span: ReadableSpan) -> dict[str, Any]:
    context = span.context
    scope = span.instrumentation_scope
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": _hex(context.trace_id if context else None, 32),
        "span_id": _hex(context.span_id if context else None, 16),
        "parent_id": _hex(span.parent.span_id if span.parent else None, 16),
        "scope": scope.name if scope else None,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "status": {"code": span.status.status_code.name, "description": span.status.description},
        "attributes": _jsonable(dict(span.attributes or {})),
        "events": [
            {
                "name": event.name,
                "time_unix_nano": event.timestamp,
                "attributes": _jsonable(dict(event.attributes or {})),
            }
            for event in span.events
        ],
    }


def _log(item: Any) -> dict[str, Any]:
    """A log record, from SDK 1.x's LogData or ReadableLogRecord alike."""
    record = getattr(item, "log_record", item)
    scope = getattr(item, "instrumentation_scope", None)
    attributes = dict(record.attributes or {})
    severity = getattr(record, "severity_number", None)
    return {
        "event_name": getattr(record, "event_name", None) or attributes.get("event.name"),
        "scope": scope.name if scope else None,
        "trace_id": _hex(record.trace_id, 32),
        "span_id": _hex(record.span_id, 16),
        "timestamp": record.timestamp,
        "severity_number": severity.value if severity is not None else None,
        "body": _jsonable(record.body),
        "attributes": _jsonable(attributes),
    }


def _versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def capture_mode(family: Family, mode: Mode, cases: Iterable[str], out: Path) -> list[Path]:
    """Records every case of one mode in this process; returns the files written."""
    logs_sdk = _module("opentelemetry.sdk._logs")
    logs_export = _module("opentelemetry.sdk._logs.export")
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    log_exporter = getattr(logs_export, "InMemoryLogRecordExporter", None)
    logs = (log_exporter or logs_export.InMemoryLogExporter)()
    logger_provider = logs_sdk.LoggerProvider()
    logger_provider.add_log_record_processor(logs_export.SimpleLogRecordProcessor(logs))
    _module("opentelemetry._logs").set_logger_provider(logger_provider)
    _instrument(family, mode)
    tracer = trace.get_tracer("tests.genai.capture")
    written = []
    out.mkdir(parents=True, exist_ok=True)
    with FakeOpenAI() as server:
        for case in cases:
            spans.clear()
            logs.clear()
            with tracer.start_as_current_span(f"capture {case}"):
                if case.startswith("langchain"):
                    _langchain_case(case)
                else:
                    _openai_case(case, server.base_url)
            tracer_provider.force_flush()
            logger_provider.force_flush()
            finished = sorted(spans.get_finished_spans(), key=lambda s: s.start_time or 0)
            fixture = {
                "family": family.name,
                "case": case,
                "mode": mode.name,
                "env": mode.env,
                "options": mode.options,
                "packages": _versions(),
                "spans": [_span(span) for span in finished],
                "logs": [_log(item) for item in logs.get_finished_logs()],
            }
            path = out / f"{family.name}-{case}-{mode.name}.json"
            path.write_text(json.dumps(fixture, indent=1, sort_keys=False) + "\n")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="capture.py", description=__doc__.split("\n")[0])
    parser.add_argument("family", choices=sorted(FAMILIES))
    parser.add_argument("--mode", help="one content mode (default: each in its own process)")
    parser.add_argument("--case", action="append", help="a case to record (default: all)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    family = FAMILIES[args.family]
    cases = args.case or list(family.cases)
    modes = {mode.name: mode for mode in family.modes}
    if args.mode is not None:
        for path in capture_mode(family, modes[args.mode], cases, args.out):
            sys.stdout.write(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}\n")
        return 0
    for mode in family.modes:
        env = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
        command = [sys.executable, __file__, family.name, "--mode", mode.name]
        command += ["--out", str(args.out), *(f"--case={case}" for case in cases)]
        subprocess.run(command, env={**env, **mode.env}, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
