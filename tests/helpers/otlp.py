"""OTLP trace requests for the tests of the tcc-otel dev receiver and its decoder: a run recorded
with the raw OpenTelemetry SDK (trace id 42, span ids 1, 2, 3) and an OTLP JSON document, each
with the spans decoded from it."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

from tcc_otel._local._model import ReceivedSpan
from tcc_otel._schema import _keys as attrs

T0 = 1_700_000_000_000_000_000
"""Start of the recorded run, in ns since the epoch."""
TRACE_ID = "0000000000000000000000000000002a"
RESOURCE = {"service.name": "weather-agent"}


class _SequentialIds(IdGenerator):
    """Trace id 42 and span ids 1, 2, 3, ... so expected spans can be written out."""

    def __init__(self) -> None:
        self._next_span_id = 0

    def generate_span_id(self) -> int:
        self._next_span_id += 1
        return self._next_span_id

    def generate_trace_id(self) -> int:
        return 42


def record_run() -> list[ReadableSpan]:
    """Record one run (a step and a failing tool call under it) with a private provider."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource(RESOURCE), id_generator=_SequentialIds())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.weather", "1.0")
    run = tracer.start_span(
        "invoke_agent weather",
        start_time=T0,
        attributes={
            attrs.TCC_RUN_ID: "run-1",
            attrs.TCC_TYPE: "run",
            attrs.TCC_CONVERSATIONAL: True,
            attrs.GEN_AI_USAGE_INPUT_TOKENS: 520,
        },
    )
    in_run = trace.set_span_in_context(run)
    step = tracer.start_span(
        "chat gpt-4o",
        context=in_run,
        kind=SpanKind.CLIENT,
        start_time=T0 + 1_000_000,
        attributes={
            attrs.TCC_RUN_ID: "run-1",
            attrs.TCC_TYPE: "step",
            attrs.STEP_REAL_TOTAL_COST: 0.0041,
            attrs.GEN_AI_RESPONSE_FINISH_REASONS: ["stop", "length"],
            "test.ints": [1, 2],
        },
    )
    step.end(end_time=T0 + 801_000_000)
    tool = tracer.start_span(
        "execute_tool get_weather",
        context=in_run,
        start_time=T0 + 900_000_000,
        attributes={attrs.TCC_RUN_ID: "run-1", attrs.TCC_TYPE: "tool_call"},
    )
    tool.add_event("retry", {"attempt": 2}, timestamp=T0 + 950_000_000)
    tool.set_status(Status(StatusCode.ERROR, "timeout"))
    tool.end(end_time=T0 + 1_000_000_000)
    run.end(end_time=T0 + 1_230_000_000)
    provider.shutdown()
    return list(memory.get_finished_spans())


EXPECTED_SPANS = [
    ReceivedSpan(
        trace_id=TRACE_ID,
        span_id="0000000000000002",
        parent_span_id="0000000000000001",
        name="chat gpt-4o",
        kind="CLIENT",
        start_ns=T0 + 1_000_000,
        end_ns=T0 + 801_000_000,
        status_code="UNSET",
        status_message="",
        attributes={
            attrs.TCC_RUN_ID: "run-1",
            attrs.TCC_TYPE: "step",
            attrs.STEP_REAL_TOTAL_COST: 0.0041,
            attrs.GEN_AI_RESPONSE_FINISH_REASONS: ["stop", "length"],
            "test.ints": [1, 2],
        },
        events=[],
        resource=RESOURCE,
        scope_name="tests.weather",
    ),
    ReceivedSpan(
        trace_id=TRACE_ID,
        span_id="0000000000000003",
        parent_span_id="0000000000000001",
        name="execute_tool get_weather",
        kind="INTERNAL",
        start_ns=T0 + 900_000_000,
        end_ns=T0 + 1_000_000_000,
        status_code="ERROR",
        status_message="timeout",
        attributes={attrs.TCC_RUN_ID: "run-1", attrs.TCC_TYPE: "tool_call"},
        events=[("retry", {"attempt": 2})],
        resource=RESOURCE,
        scope_name="tests.weather",
    ),
    ReceivedSpan(
        trace_id=TRACE_ID,
        span_id="0000000000000001",
        parent_span_id=None,
        name="invoke_agent weather",
        kind="INTERNAL",
        start_ns=T0,
        end_ns=T0 + 1_230_000_000,
        status_code="UNSET",
        status_message="",
        attributes={
            attrs.TCC_RUN_ID: "run-1",
            attrs.TCC_TYPE: "run",
            attrs.TCC_CONVERSATIONAL: True,
            attrs.GEN_AI_USAGE_INPUT_TOKENS: 520,
        },
        events=[],
        resource=RESOURCE,
        scope_name="tests.weather",
    ),
]


def protobuf(spans: list[ReadableSpan]) -> bytes:
    """``spans`` as the body of an OTLP/HTTP protobuf request."""
    return bytes(encode_spans(spans).SerializeToString())


JSON_DOCUMENT: dict[str, Any] = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "node"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "js"},
                    "spans": [
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "parentSpanId": "eee19b7ec3c1b173",
                            "name": "GET /weather",
                            "kind": 2,
                            "startTimeUnixNano": "1000",
                            "endTimeUnixNano": "3000000",
                            "status": {"code": 1},
                            "attributes": [
                                {"key": "s", "value": {"stringValue": "x"}},
                                {"key": "b", "value": {"boolValue": False}},
                                {"key": "i", "value": {"intValue": "7"}},
                                {"key": "d", "value": {"doubleValue": 1.5}},
                                {"key": "y", "value": {"bytesValue": "AAE="}},
                                {
                                    "key": "a",
                                    "value": {
                                        "arrayValue": {
                                            "values": [
                                                {"intValue": 1},
                                                {"stringValue": "2"},
                                            ]
                                        }
                                    },
                                },
                                {
                                    "key": "k",
                                    "value": {
                                        "kvlistValue": {
                                            "values": [{"key": "n", "value": {"doubleValue": 2.0}}]
                                        }
                                    },
                                },
                                {"key": "empty", "value": {}},
                            ],
                            "events": [{"name": "ping", "timeUnixNano": "2000"}],
                            "futureField": "ignored",
                        }
                    ],
                }
            ],
        }
    ]
}
"""An OTLP JSON request: hex ids, every AnyValue type, a field OTLP does not know."""

JSON_SPANS = [
    ReceivedSpan(
        trace_id="5b8efff798038103d269b633813fc60c",
        span_id="eee19b7ec3c1b174",
        parent_span_id="eee19b7ec3c1b173",
        name="GET /weather",
        kind="SERVER",
        start_ns=1000,
        end_ns=3000000,
        status_code="OK",
        status_message="",
        attributes={
            "s": "x",
            "b": False,
            "i": 7,
            "d": 1.5,
            "y": b"\x00\x01",
            "a": [1, "2"],
            "k": {"n": 2.0},
            "empty": None,
        },
        events=[("ping", {})],
        resource={"service.name": "node"},
        scope_name="js",
    )
]
"""What ``JSON_DOCUMENT`` decodes to."""
