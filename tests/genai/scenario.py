"""One agent run traced by tcc_otel while a real GenAI instrumentation is installed.

Run inside a family's venv by ``tests/genai/test_families.py``::

    TCC_BASE_URL=http://127.0.0.1:PORT .venv-genai/openai-v2/bin/python \\
        tests/genai/scenario.py openai-v2 latest-span_only auto chat

The application sets a global SDK ``TracerProvider`` and ``LoggerProvider`` with in-memory
exporters (the team's own pipeline), installs the family's instrumentors (``capture.py``), and
runs one ``tcc.run()`` in the default mode around one case of ``capture.py`` against
``FakeOpenAI``:

- ``auto``: the instrumented calls only, inside the run;
- ``wrapped``: each call inside ``with r.step() as s:`` that sets its own prompt and response;
- ``bare``: each call inside ``with r.step():`` that sets nothing (the call fills the step).

Case ``async`` is this script's own: two calls of ``openai.AsyncOpenAI`` at once
(``asyncio.gather``), each in its own ``async with r.step()`` unless the style is ``auto``: each
step must take its own call, not the other task's.

It prints one JSON object: whether ``tcc.flush`` delivered, ``tcc.stats()``, and the spans the
team's exporter got (name, ids, scope, attributes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import tcc_otel as tcc  # noqa: E402
from genai import capture  # noqa: E402
from genai.families import FAMILIES  # noqa: E402
from tcc_otel._local._fake_openai import FakeOpenAI  # noqa: E402

STYLES = ("auto", "wrapped", "bare")


def team_pipeline() -> InMemorySpanExporter:
    """The application's own tracing, set globally as applications do."""
    logs_sdk = capture._module("opentelemetry.sdk._logs")
    logs_export = capture._module("opentelemetry.sdk._logs.export")
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    logger_provider = logs_sdk.LoggerProvider()
    logger_provider.add_log_record_processor(
        logs_export.SimpleLogRecordProcessor(logs_export.InMemoryLogRecordExporter())
    )
    capture._module("opentelemetry._logs").set_logger_provider(logger_provider)
    return spans


def wrap_each_call(style: str, run: Any) -> Callable[[], Any]:
    """A context manager factory for one LLM call: a manual step per call, or nothing."""

    @contextmanager
    def step() -> Iterator[None]:
        if style == "auto":
            yield
            return
        with run.step() as manual:
            if style == "wrapped":
                manual.prompt("manual prompt")
            yield
            if style == "wrapped":
                manual.response("manual response")

    return step


def patch_calls(style: str, run: Any) -> None:
    """Wrap every ``chat.completions.create`` and chat model ``invoke`` in a step."""
    step = wrap_each_call(style, run)
    if style == "auto":
        return
    completions = capture._module("openai.resources.chat.completions").Completions
    original = completions.create

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        with step():
            result = original(self, *args, **kwargs)
            if kwargs.get("stream"):
                return list(result)  # the stream is read inside the step
            return result

    completions.create = create
    if "langchain_core" in sys.modules or _has("langchain_core"):
        fake = capture._module("langchain_core.language_models.fake_chat_models")
        model = fake.GenericFakeChatModel
        invoke = model.invoke

        def wrapped_invoke(self: Any, *args: Any, **kwargs: Any) -> Any:
            with step():
                return invoke(self, *args, **kwargs)

        model.invoke = wrapped_invoke


ASYNC_QUESTIONS = (capture.QUESTION, "What is a span?")


async def _async_case(base_url: str, style: str, run: Any) -> None:
    client = capture._module("openai").AsyncOpenAI(
        base_url=base_url, api_key="anything", max_retries=0
    )

    async def ask(question: str) -> Any:
        messages = [{"role": "user", "content": question}]
        if style == "auto":
            return await client.chat.completions.create(model=capture.MODEL, messages=messages)
        async with run.step() as step:
            if style == "wrapped":
                step.prompt("manual prompt")
            reply = await client.chat.completions.create(model=capture.MODEL, messages=messages)
            if style == "wrapped":
                step.response("manual response")
            return reply

    await asyncio.gather(*(ask(question) for question in ASYNC_QUESTIONS))


def _has(module: str) -> bool:
    try:
        capture._module(module)
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scenario.py")
    parser.add_argument("family", choices=sorted(FAMILIES))
    parser.add_argument("mode")
    parser.add_argument("style", choices=STYLES)
    parser.add_argument("case")
    parser.add_argument("--run-id", default="run-genai")
    args = parser.parse_args(argv)
    family = FAMILIES[args.family]
    mode = {m.name: m for m in family.modes}[args.mode]
    os.environ.update(mode.env)  # before the instrumentors read their settings
    team = team_pipeline()
    capture._instrument(family, mode)
    tcc.configure()  # TCC_BASE_URL: the test's receiver
    with FakeOpenAI() as server, tcc.run(run_id=args.run_id) as run:
        run.prompt(capture.QUESTION)
        if args.case == "async":
            asyncio.run(_async_case(server.base_url, args.style, run))
        else:
            patch_calls(args.style, run)
            if args.case.startswith("langchain"):
                capture._langchain_case(args.case)
            else:
                capture._openai_case(args.case, server.base_url)
        run.response("done")
    flushed = tcc.flush(30.0)
    stats = tcc.stats()
    tcc.shutdown()
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    spans = [capture._span(span) for span in team.get_finished_spans()]
    json.dump({"flushed": flushed, "stats": stats, "team_spans": spans}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
