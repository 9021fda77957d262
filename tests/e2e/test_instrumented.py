"""Instrumented LLM calls inside runs, in both modes, at a loopback receiver that keeps
duplicates: each request is one step, a manual step around a call takes it, totals count each
step once. The instrumentation here is the application's tracer writing what openai-v2 writes
(``tests/genai`` does the same with the real packages, in their own venvs)."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel._local._model import ReceivedSpan
from tcc_otel._local._server import Receiver
from tcc_otel._schema import _keys as keys


def llm_call(tracer: trace.Tracer, question: str, input_tokens: int, output_tokens: int) -> None:
    """What openai-v2 (latest conventions, SPAN_ONLY) writes for one chat completion."""
    message = [{"role": "user", "parts": [{"type": "text", "content": question}]}]
    answer = [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Sunny."}],
            "finish_reason": "stop",
        }
    ]
    with tracer.start_as_current_span(
        "chat gpt-4o-mini",
        kind=trace.SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.response.finish_reasons": ("stop",),
            "gen_ai.input.messages": json.dumps(message),
            "gen_ai.output.messages": json.dumps(answer),
        },
    ):
        pass


def of_type(spans: list[ReceivedSpan], kind: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.attributes.get(keys.TCC_TYPE) == kind]


@pytest.mark.parametrize("capture", [True, False], ids=["content", "no-content"])
def test_provider_mode(receiver: Receiver, client: Client, capture: bool) -> None:
    """With ``tracer_provider=``: a call on its own is a step, a call inside ``with r.step()``
    fills that step, the run counts both once; the user's exporter gets the call as written."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    tcc.configure(base_url=receiver.url, tracer_provider=provider, capture_content=capture)
    with tcc.run(run_id="run-i") as run:
        run.prompt("Weather?")
        llm_call(tracer, "Weather in Paris?", 100, 10)
        with run.step():
            llm_call(tracer, "Weather in Rome?", 50, 5)
        run.response("Sunny.")
    assert tcc.flush(10.0)
    spans = list(receiver.spans)
    assert len({s.span_id for s in spans}) == len(spans) == 4  # run, 2 steps, the inner call
    steps = of_type(spans, "step")
    assert len(steps) == 2
    manual, auto = sorted(steps, key=lambda s: s.name != "chat gpt-4o-mini-2024-07-18")
    assert keys.TCC_STEP_ID in auto.attributes
    assert (
        auto.attributes[keys.GEN_AI_USAGE_INPUT_TOKENS],
        manual.attributes[keys.GEN_AI_USAGE_INPUT_TOKENS],
    ) == (100, 50)
    (inner,) = [s for s in spans if s.parent_span_id == manual.span_id]
    assert not [k for k in inner.attributes if k.startswith("gen_ai.")]
    (run_span,) = of_type(spans, "run")
    assert run_span.attributes[keys.GEN_AI_USAGE_INPUT_TOKENS] == 150
    assert run_span.attributes[keys.GEN_AI_USAGE_OUTPUT_TOKENS] == 15
    if capture:
        assert manual.attributes[keys.STEP_PROMPT] == "Weather in Rome?"
        assert auto.attributes[keys.STEP_RESPONSE] == "Sunny."
    else:
        assert not [k for s in steps for k in s.attributes if k in keys.CONTENT_KEYS]
    written = {s.name: dict(s.attributes or {}) for s in memory.get_finished_spans()}
    assert written["chat gpt-4o-mini"]["gen_ai.usage.input_tokens"] in (100, 50)
    assert "tcc.type" not in written["chat gpt-4o-mini"]
    provider.shutdown()


def test_bare_step_without_content_needs_its_fields(receiver: Receiver, client: Client) -> None:
    """A step that sets nothing and encloses a call recorded without content still needs its
    prompt and response: leaving the ``with`` block says so (and ends it as failed), as for any
    step; what the call did bring (tokens) is kept."""
    provider = TracerProvider()
    tracer = provider.get_tracer("instrumentation")
    tcc.configure(base_url=receiver.url, tracer_provider=provider)
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 3}
    with tcc.run(run_id="run-b") as run:
        run.prompt("q")
        with (
            pytest.raises(ValueError, match=r"step\.prompt"),
            run.step(),
            tracer.start_as_current_span("chat", attributes=attributes),
        ):
            pass
    assert tcc.flush(10.0)
    (step,) = of_type(list(receiver.spans), "step")
    assert step.status_code == "ERROR"
    assert step.attributes[keys.GEN_AI_USAGE_INPUT_TOKENS] == 3
    provider.shutdown()


@pytest.mark.cost_extra
def test_cost_estimates_count_each_step_once(receiver: Receiver, client: Client) -> None:
    """With ``tcc-otel[cost]``: an instrumented call gets an estimated cost like a manual step,
    and the run's total cost is the sum over its steps, the enclosed call counted once."""
    provider = TracerProvider()
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    tcc.configure(base_url=receiver.url, tracer_provider=provider)
    with tcc.run(run_id="run-cost") as run:
        run.prompt("Weather?")
        llm_call(tracer, "Weather in Paris?", 1000, 100)
        with run.step():
            llm_call(tracer, "Weather in Rome?", 2000, 200)
    assert tcc.flush(10.0)
    spans = list(receiver.spans)
    costs = [s.attributes[keys.STEP_ESTIMATED_COST] for s in of_type(spans, "step")]
    assert len(costs) == 2
    assert all(cost > 0 for cost in costs)
    (run_span,) = of_type(spans, "run")
    assert run_span.attributes[keys.RUN_TOTAL_COST] == pytest.approx(sum(costs))
    assert run_span.attributes[keys.RUN_TOTAL_TOKENS] == 3300
    provider.shutdown()
