"""What TCC receives: runs, steps and tool calls posted as OTLP/HTTP to a loopback receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel._local._model import ReceivedSpan
from tcc_otel._local._server import Receiver

KEY = "test-key-123"
JSON_KEYS = frozenset(
    {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"}
)
"""Attributes holding JSON documents; compared decoded, so formatting does not matter."""
VARYING_RESOURCE_KEYS = frozenset({"service.instance.id"})
"""Resource attributes whose value differs per process (added by recent SDKs)."""
SDK_RESOURCE = {
    "telemetry.sdk.language": "python",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": sdk_version,
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback OTLP/HTTP receiver on a free port, stopped in teardown."""
    with Receiver("127.0.0.1", 0) as running:
        yield running


def resource_of(span: ReceivedSpan) -> dict[str, Any]:
    """The span's resource attributes, without those that vary per process."""
    return {k: v for k, v in span.resource.items() if k not in VARYING_RESOURCE_KEYS}


def plain(attributes: dict[str, Any]) -> dict[str, Any]:
    """``attributes`` with the JSON-document values decoded."""
    return {
        key: json.loads(value) if key in JSON_KEYS else value for key, value in attributes.items()
    }


def user_message(text: str) -> list[dict[str, Any]]:
    """``gen_ai.input.messages`` for one user prompt."""
    return [{"role": "user", "parts": [{"type": "text", "content": text}]}]


def assistant_message(text: str, finish_reason: str | None = None) -> list[dict[str, Any]]:
    """``gen_ai.output.messages`` for one answer."""
    message: dict[str, Any] = {"role": "assistant", "parts": [{"type": "text", "content": text}]}
    if finish_reason is not None:
        message["finish_reason"] = finish_reason
    return [message]


def by_id(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    """Record spans keyed by their record id (``tcc.stepId``/``tcc.toolCallId``, else
    ``tcc.runId``); the application's own spans (no ``tcc.type``) are left out."""
    keyed: dict[str, ReceivedSpan] = {}
    for span in spans:
        attributes = span.attributes
        if "tcc.type" not in attributes:
            continue
        key = attributes.get("tcc.stepId") or attributes.get("tcc.toolCallId")
        keyed[str(key or attributes["tcc.runId"])] = span
    return keyed


def shape(spans: list[ReceivedSpan]) -> dict[str, tuple[str, str, str | None, str, str]]:
    """Each span as (name, kind, parent record id, status, status message), by record id."""
    keyed = by_id(spans)
    ids = {span.span_id: key for key, span in keyed.items()}
    return {
        key: (
            span.name,
            span.kind,
            None if span.parent_span_id is None else ids.get(span.parent_span_id, "?"),
            span.status_code,
            span.status_message,
        )
        for key, span in keyed.items()
    }


def failing_step(run: tcc.Run) -> None:
    """A step whose ``with`` body raises."""
    with run.step(step_id="step-4") as step:
        step.prompt("Try again")
        raise RuntimeError("model overloaded")


def record_full_run() -> None:
    """One run: steps (one failed with error(), one by an exception) and tool calls, some
    in ``with`` blocks and some ended by hand."""
    with tcc.run(run_id="run-1", session_id="session-1", conversational=True) as r:
        r.prompt("What is the weather in Paris?", system_prompt="You are a weather agent.")
        r.metadata({"tcc.agent": "weather", "tcc.userId": "user-7"}, plan="pro")
        with r.step(step_id="step-1") as s:
            s.prompt("What is the weather in Paris?").response("get_weather(city=Paris)")
            s.model(requested="gpt-4o", used="gpt-4o-2024-08-06")
            s.tokens(prompt_uncached=100, prompt_cached=20, completion=10).cost(0.0025)
            s.finish_reason("tool_call").tool_definitions([{"name": "get_weather"}])
            with s.tool_call("get_weather", tool_call_id="call-1") as t:
                t.args({"city": "Paris"}).result({"temp_c": 18})
        search = r.tool_call(tool_call_id="call-2").name("search").args("paris weather")
        search.error("search backend down: token=abc123secret")
        s2 = r.step(step_id="step-2").prompt("Summarise: 18").response("It is 18 °C in Paris.")
        s2.model(used="gpt-4o-mini").tokens(prompt_uncached=50, completion=5)
        s2.end()
        tcc.step(run_id="run-1", step_id="step-3").prompt("Retry").error("upstream timeout")
        with pytest.raises(RuntimeError, match="model overloaded"):
            failing_step(r)
        r.response("It is 18 °C in Paris.")


class TestFullRun:
    """A whole run, flushed to the receiver, as TCC would see it."""

    def test_request(self, receiver: Receiver, client: Client) -> None:
        """Spans are POSTed to /v1/traces as gzipped protobuf with the API key as Bearer token."""
        tcc.configure(base_url=receiver.url, api_key=KEY)
        record_full_run()
        assert tcc.flush()
        requests = receiver.requests
        assert requests
        assert [
            (
                r.path,
                r.status,
                r.headers.get("authorization"),
                r.headers.get("content-type"),
                r.headers.get("content-encoding"),
                r.headers.get("user-agent"),
            )
            for r in requests
        ] == [
            (
                "/v1/traces",
                200,
                "Bearer test-key-123",
                "application/x-protobuf",
                "gzip",
                f"tcc-otel/{tcc.__version__}",
            )
        ] * len(requests)
        assert sum(r.span_count for r in requests) == 7

    def test_tree(self, receiver: Receiver, client: Client) -> None:
        """Every span shares one trace; steps and tool calls hang off the run (or their step)."""
        tcc.configure(base_url=receiver.url, api_key=KEY)
        record_full_run()
        assert tcc.flush()
        spans = receiver.spans
        assert len({span.trace_id for span in spans}) == 1
        assert shape(spans) == {
            "run-1": ("invoke_agent weather", "INTERNAL", None, "UNSET", ""),
            "step-1": ("chat gpt-4o-2024-08-06", "CLIENT", "run-1", "UNSET", ""),
            "call-1": ("execute_tool get_weather", "INTERNAL", "step-1", "UNSET", ""),
            "call-2": (
                "execute_tool search",
                "INTERNAL",
                "run-1",
                "ERROR",
                "search backend down: token=[REDACTED]",
            ),
            "step-2": ("chat gpt-4o-mini", "CLIENT", "run-1", "UNSET", ""),
            "step-3": ("chat", "CLIENT", "run-1", "ERROR", "upstream timeout"),
            "step-4": ("chat", "CLIENT", "run-1", "ERROR", "RuntimeError: model overloaded"),
        }
        assert {span.scope_name for span in spans} == {"tcc_otel"}

    def test_attributes(self, receiver: Receiver, client: Client) -> None:
        """Each span carries exactly the TCC and GenAI attributes of its record."""
        tcc.configure(base_url=receiver.url, api_key=KEY)
        record_full_run()
        assert tcc.flush()
        received = {key: plain(span.attributes) for key, span in by_id(receiver.spans).items()}
        step = {"tcc.type": "step", "tcc.runId": "run-1", "gen_ai.operation.name": "chat"}
        tool = {
            "tcc.type": "tool_call",
            "tcc.runId": "run-1",
            "gen_ai.operation.name": "execute_tool",
        }
        assert received == {
            "run-1": {
                "tcc.type": "run",
                "tcc.runId": "run-1",
                "gen_ai.operation.name": "invoke_agent",
                "tcc.sessionId": "session-1",
                "gen_ai.conversation.id": "session-1",
                "tcc.conversational": True,
                "tcc.run.user_prompt": "What is the weather in Paris?",
                "tcc.run.system_prompt": "You are a weather agent.",
                "tcc.run.response": "It is 18 °C in Paris.",
                "tcc.agent": "weather",
                "tcc.userId": "user-7",
                "tcc.metadata.plan": "pro",
                "gen_ai.agent.name": "weather",
                "gen_ai.usage.input_tokens": 170,
                "gen_ai.usage.output_tokens": 15,
                "gen_ai.input.messages": user_message("What is the weather in Paris?"),
                "gen_ai.system_instructions": [
                    {"type": "text", "content": "You are a weather agent."}
                ],
                "gen_ai.output.messages": assistant_message("It is 18 °C in Paris."),
            },
            "step-1": {
                **step,
                "tcc.stepId": "step-1",
                "tcc.step.prompt": "What is the weather in Paris?",
                "tcc.step.response": "get_weather(city=Paris)",
                "tcc.step.model_requested": "gpt-4o",
                "tcc.step.model_used": "gpt-4o-2024-08-06",
                "tcc.step.prompt_uncached_tokens": 100,
                "tcc.step.prompt_cached_tokens": 20,
                "tcc.step.completion_tokens": 10,
                "tcc.step.real_total_cost": 0.0025,
                "tcc.step.finish_reason": "tool_call",
                "tcc.step.tool_definitions": '[{"name": "get_weather"}]',
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.cache_read.input_tokens": 20,
                "gen_ai.usage.output_tokens": 10,
                "gen_ai.response.finish_reasons": ["tool_call"],
                "gen_ai.tool.definitions": '[{"name": "get_weather"}]',
                "gen_ai.input.messages": user_message("What is the weather in Paris?"),
                "gen_ai.output.messages": assistant_message("get_weather(city=Paris)", "tool_call"),
            },
            "call-1": {
                **tool,
                "tcc.toolCallId": "call-1",
                "gen_ai.tool.call.id": "call-1",
                "tcc.tool_call.name": "get_weather",
                "gen_ai.tool.name": "get_weather",
                "tcc.tool_call.args": '{"city": "Paris"}',
                "gen_ai.tool.call.arguments": '{"city": "Paris"}',
                "tcc.tool_call.result": '{"temp_c": 18}',
                "gen_ai.tool.call.result": '{"temp_c": 18}',
            },
            "call-2": {
                **tool,
                "tcc.toolCallId": "call-2",
                "gen_ai.tool.call.id": "call-2",
                "tcc.tool_call.name": "search",
                "gen_ai.tool.name": "search",
                "tcc.tool_call.args": "paris weather",
                "gen_ai.tool.call.arguments": "paris weather",
                "error.type": "_OTHER",
            },
            "step-2": {
                **step,
                "tcc.stepId": "step-2",
                "tcc.step.prompt": "Summarise: 18",
                "tcc.step.response": "It is 18 °C in Paris.",
                "tcc.step.model_used": "gpt-4o-mini",
                "tcc.step.prompt_uncached_tokens": 50,
                "tcc.step.completion_tokens": 5,
                "gen_ai.response.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 50,
                "gen_ai.usage.output_tokens": 5,
                "gen_ai.input.messages": user_message("Summarise: 18"),
                "gen_ai.output.messages": assistant_message("It is 18 °C in Paris."),
            },
            "step-3": {
                **step,
                "tcc.stepId": "step-3",
                "tcc.step.prompt": "Retry",
                "gen_ai.input.messages": user_message("Retry"),
                "error.type": "_OTHER",
            },
            "step-4": {
                **step,
                "tcc.stepId": "step-4",
                "tcc.step.prompt": "Try again",
                "gen_ai.input.messages": user_message("Try again"),
                "error.type": "RuntimeError",
            },
        }

    def test_exception_event(self, receiver: Receiver, client: Client) -> None:
        """Only the step whose ``with`` body raised carries an ``exception`` event."""
        tcc.configure(base_url=receiver.url, api_key=KEY)
        record_full_run()
        assert tcc.flush()
        events = {key: span.events for key, span in by_id(receiver.spans).items() if span.events}
        assert list(events) == ["step-4"]
        [(name, attributes)] = events["step-4"]
        stacktrace = attributes.pop("exception.stacktrace")
        assert (name, attributes) == (
            "exception",
            {
                "exception.type": "RuntimeError",
                "exception.message": "model overloaded",
                "exception.escaped": "False",
            },
        )
        assert "RuntimeError: model overloaded" in stacktrace

    def test_without_content(self, receiver: Receiver, client: Client) -> None:
        """With ``capture_content=False`` no prompt, response, args, result or definitions are
        sent, and every other attribute still is."""
        tcc.configure(base_url=receiver.url, api_key=KEY, capture_content=False)
        record_full_run()
        assert tcc.flush()
        received = {key: span.attributes for key, span in by_id(receiver.spans).items()}
        step = {"tcc.type": "step", "tcc.runId": "run-1", "gen_ai.operation.name": "chat"}
        tool = {
            "tcc.type": "tool_call",
            "tcc.runId": "run-1",
            "gen_ai.operation.name": "execute_tool",
        }
        assert received == {
            "run-1": {
                "tcc.type": "run",
                "tcc.runId": "run-1",
                "gen_ai.operation.name": "invoke_agent",
                "tcc.sessionId": "session-1",
                "gen_ai.conversation.id": "session-1",
                "tcc.conversational": True,
                "tcc.agent": "weather",
                "tcc.userId": "user-7",
                "tcc.metadata.plan": "pro",
                "gen_ai.agent.name": "weather",
                "gen_ai.usage.input_tokens": 170,
                "gen_ai.usage.output_tokens": 15,
            },
            "step-1": {
                **step,
                "tcc.stepId": "step-1",
                "tcc.step.model_requested": "gpt-4o",
                "tcc.step.model_used": "gpt-4o-2024-08-06",
                "tcc.step.prompt_uncached_tokens": 100,
                "tcc.step.prompt_cached_tokens": 20,
                "tcc.step.completion_tokens": 10,
                "tcc.step.real_total_cost": 0.0025,
                "tcc.step.finish_reason": "tool_call",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.cache_read.input_tokens": 20,
                "gen_ai.usage.output_tokens": 10,
                "gen_ai.response.finish_reasons": ["tool_call"],
            },
            "call-1": {
                **tool,
                "tcc.toolCallId": "call-1",
                "gen_ai.tool.call.id": "call-1",
                "tcc.tool_call.name": "get_weather",
                "gen_ai.tool.name": "get_weather",
            },
            "call-2": {
                **tool,
                "tcc.toolCallId": "call-2",
                "gen_ai.tool.call.id": "call-2",
                "tcc.tool_call.name": "search",
                "gen_ai.tool.name": "search",
                "error.type": "_OTHER",
            },
            "step-2": {
                **step,
                "tcc.stepId": "step-2",
                "tcc.step.model_used": "gpt-4o-mini",
                "tcc.step.prompt_uncached_tokens": 50,
                "tcc.step.completion_tokens": 5,
                "gen_ai.response.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 50,
                "gen_ai.usage.output_tokens": 5,
            },
            "step-3": {**step, "tcc.stepId": "step-3", "error.type": "_OTHER"},
            "step-4": {**step, "tcc.stepId": "step-4", "error.type": "RuntimeError"},
        }

    def test_without_content_from_env(
        self, receiver: Receiver, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``TCC_CAPTURE_CONTENT=false`` in the environment leaves the content out as well."""
        monkeypatch.setenv("TCC_CAPTURE_CONTENT", "false")
        tcc.configure(base_url=receiver.url, api_key=KEY)
        r = tcc.run(run_id="run-1").prompt("secret plan", system_prompt="be terse")
        r.tool_call("search", tool_call_id="call-1").args({"q": "x"}).result("y").end()
        r.response("done").end()
        assert tcc.flush()
        assert {key: span.attributes for key, span in by_id(receiver.spans).items()} == {
            "run-1": {
                "tcc.type": "run",
                "tcc.runId": "run-1",
                "gen_ai.operation.name": "invoke_agent",
            },
            "call-1": {
                "tcc.type": "tool_call",
                "tcc.runId": "run-1",
                "gen_ai.operation.name": "execute_tool",
                "tcc.toolCallId": "call-1",
                "gen_ai.tool.call.id": "call-1",
                "tcc.tool_call.name": "search",
                "gen_ai.tool.name": "search",
            },
        }


class TestResource:
    """The resource sent with the spans of the provider tcc_otel owns."""

    def test_service_name_from_configure(
        self, receiver: Receiver, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``configure(service_name=)`` names the service over ``OTEL_SERVICE_NAME``, and
        ``OTEL_RESOURCE_ATTRIBUTES`` are added."""
        monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,team=agents")
        tcc.configure(base_url=receiver.url, api_key=KEY, service_name="weather-svc")
        tcc.run().prompt("hi").end()
        assert tcc.flush()
        assert [resource_of(span) for span in receiver.spans] == [
            {
                **SDK_RESOURCE,
                "service.name": "weather-svc",
                "deployment.environment": "test",
                "team": "agents",
            }
        ]

    def test_service_name_from_env(
        self, receiver: Receiver, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without ``service_name=``, ``OTEL_SERVICE_NAME`` names the service."""
        monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
        tcc.configure(base_url=receiver.url, api_key=KEY)
        tcc.run().prompt("hi").end()
        assert tcc.flush()
        assert [resource_of(span) for span in receiver.spans] == [
            {**SDK_RESOURCE, "service.name": "from-env"}
        ]


class TestDestination:
    """Where spans go and with which credentials."""

    def test_no_key_loopback(self, receiver: Receiver, client: Client) -> None:
        """Without an API key, spans still go to a loopback URL, with no Authorization header."""
        tcc.configure(base_url=receiver.url)
        r = tcc.run(run_id="run-1").prompt("hi")
        r.step(step_id="step-1").prompt("p").response("r").end()
        r.end()
        assert tcc.flush()
        assert [("authorization" in req.headers, req.span_count) for req in receiver.requests] == [
            (False, 2)
        ]
        assert shape(receiver.spans) == {
            "step-1": ("chat", "CLIENT", "run-1", "UNSET", ""),
            "run-1": ("invoke_agent", "INTERNAL", None, "UNSET", ""),
        }

    def test_from_environment(
        self, receiver: Receiver, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``TCC_BASE_URL`` and ``TCC_API_KEY`` alone, with no configure(), send the spans."""
        monkeypatch.setenv("TCC_BASE_URL", receiver.url)
        monkeypatch.setenv("TCC_API_KEY", "env-key-456")
        tcc.run(run_id="run-1").prompt("hi").end()
        assert tcc.flush()
        assert [
            (req.headers.get("authorization"), req.span_count) for req in receiver.requests
        ] == [("Bearer env-key-456", 1)]

    def test_run_override(self, receiver: Receiver, client: Client) -> None:
        """A run started with its own ``api_key`` and ``tcc_url`` sends itself and its steps
        there, and other runs still go to the configured endpoint."""
        with Receiver("127.0.0.1", 0) as other:
            tcc.configure(base_url=receiver.url, api_key=KEY)
            r = tcc.run(run_id="run-other", api_key="other-key", tcc_url=other.url + "/v1/custom")
            r.prompt("hi").step(step_id="step-other").prompt("p").response("r").end()
            r.end()
            tcc.run(run_id="run-main").prompt("hi").end()
            assert tcc.flush()
            assert [
                (req.headers.get("authorization"), req.span_count) for req in other.requests
            ] == [("Bearer other-key", 2)]
            assert sorted(by_id(other.spans)) == ["run-other", "step-other"]
        assert [
            (req.headers.get("authorization"), req.span_count) for req in receiver.requests
        ] == [("Bearer test-key-123", 1)]
        assert sorted(by_id(receiver.spans)) == ["run-main"]

    def test_traceparent(self, receiver: Receiver, client: Client) -> None:
        """A run started under a context extracted from a W3C ``traceparent`` joins that trace."""
        tcc.configure(base_url=receiver.url, api_key=KEY)
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        parent_id = "00f067aa0ba902b7"
        extracted = TraceContextTextMapPropagator().extract(
            {"traceparent": f"00-{trace_id}-{parent_id}-01"}
        )
        token = otel_context.attach(extracted)
        try:
            with tcc.run(run_id="run-1") as r:
                r.prompt("hi")
                r.step(step_id="step-1").prompt("p").response("r").end()
        finally:
            otel_context.detach(token)
        assert tcc.flush()
        assert {
            key: (span.trace_id, span.parent_span_id) for key, span in by_id(receiver.spans).items()
        } == {
            "run-1": (trace_id, parent_id),
            "step-1": (trace_id, by_id(receiver.spans)["run-1"].span_id),
        }


class TestUserProvider:
    """``configure(tracer_provider=tp)``: the user's provider records, TCC still receives."""

    @pytest.fixture
    def memory(self) -> InMemorySpanExporter:
        """The user's own exporter."""
        return InMemorySpanExporter()

    @pytest.fixture
    def provider(self, memory: InMemorySpanExporter) -> Iterator[TracerProvider]:
        """The user's provider, with their exporter and their own resource."""
        tp = TracerProvider(resource=Resource.create({"service.name": "chat-service"}))
        tp.add_span_processor(SimpleSpanProcessor(memory))
        yield tp
        tp.shutdown()

    def test_both_see_the_run(
        self,
        receiver: Receiver,
        client: Client,
        provider: TracerProvider,
        memory: InMemorySpanExporter,
    ) -> None:
        """The user's exporter sees every span, and TCC receives the run's spans in the same
        trace, with the user's resource: the user's span inside the step (stamped with the
        run's id) but not the user's spans outside the run."""
        tcc.configure(base_url=receiver.url, api_key=KEY, tracer_provider=provider)
        tracer = provider.get_tracer("app")
        with tracer.start_as_current_span("POST /chat") as request, tcc.run(run_id="run-1") as r:
            r.prompt("Where is my order?")
            with r.step(step_id="step-1") as s, tracer.start_as_current_span("db.lookup_order"):
                s.prompt("p").response("r")
        with tracer.start_as_current_span("GET /health"):
            pass
        assert tcc.flush()
        assert sorted(span.name for span in memory.get_finished_spans()) == [
            "GET /health",
            "POST /chat",
            "chat",
            "db.lookup_order",
            "invoke_agent",
        ]
        request_id = f"{request.get_span_context().span_id:016x}"
        request_trace = f"{request.get_span_context().trace_id:032x}"
        spans = receiver.spans
        assert shape(spans) == {
            "step-1": ("chat", "CLIENT", "run-1", "UNSET", ""),
            "run-1": ("invoke_agent", "INTERNAL", "?", "UNSET", ""),
        }
        assert [(span.trace_id, span.resource["service.name"]) for span in spans] == [
            (request_trace, "chat-service")
        ] * 3
        assert by_id(spans)["run-1"].parent_span_id == request_id
        (lookup,) = [span for span in spans if span.name == "db.lookup_order"]
        assert (lookup.attributes, lookup.parent_span_id) == (
            {"tcc.runId": "run-1"},
            by_id(spans)["step-1"].span_id,
        )

    def test_span_outside_run_not_sent(
        self,
        receiver: Receiver,
        client: Client,
        provider: TracerProvider,
        memory: InMemorySpanExporter,
    ) -> None:
        """A span of the user's provider outside any run reaches their exporter only."""
        tcc.configure(base_url=receiver.url, api_key=KEY, tracer_provider=provider)
        provider.get_tracer("app").start_span("background job").end()
        tcc.run(run_id="run-1").prompt("hi").end()
        assert tcc.flush()
        assert [span.name for span in memory.get_finished_spans()] == [
            "background job",
            "invoke_agent",
        ]
        assert [span.name for span in receiver.spans] == ["invoke_agent"]
        assert tcc.stats() == {
            "recorded": 1,
            "exported": 1,
            "retried": 0,
            "dropped": 0,
            "dropped_by_reason": {},
            "queued": 0,
            "spooled": 0,
        }
