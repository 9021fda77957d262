"""Encoding one ended LightSpan (tcc_otel/_export/_encode.py): name and attributes built from its
record's snapshot, fitted to the ``OTEL_*`` span limits with what they cut counted, and the
OTLP ``Span`` message the export thread sends."""

from __future__ import annotations

from typing import Any

from helpers.records import tool_attrs
from opentelemetry import context as otel_context
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanMessage
from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tcc_otel._export._encode import Prepared, light_span, limit_values, prepare
from tcc_otel._records._road import Road
from tcc_otel._records._run import Run
from tcc_otel._records._span import LightSpan
from tcc_otel._records._tool_call import ToolCall

NO_LIMITS = SpanLimits(max_span_attributes=1000, max_span_attribute_length=100_000)
TOOL_ATTRIBUTES = tool_attrs(
    **{
        "tcc.tool_call.args": "q",
        "tcc.tool_call.result": "r",
        "gen_ai.tool.call.arguments": "q",
        "gen_ai.tool.call.result": "r",
    }
)
"""What ``tool_call()`` below is exported with."""


class Ended:
    """A Sink keeping the LightSpans records hand over when they end, as the pipeline would."""

    def __init__(self) -> None:
        self.spans: list[LightSpan] = []

    def submit(self, span: LightSpan, run_end: bool) -> None:
        self.spans.append(span)


def road(sink: Ended) -> Road:
    """The default mode's road: records use LightSpans that end into ``sink``."""
    return Road(sink=sink, light=True)


def tool_call(sink: Ended, **app_attributes: Any) -> LightSpan:
    """A tool call ``search`` of run ``run-1``, with ``app_attributes`` set on its span by the
    application, ended; its LightSpan."""
    call = ToolCall(road(sink), "run-1", None, "search", "call-1")
    call.span.set_attributes(app_attributes)
    call.args("q").result("r").end()
    (span,) = sink.spans
    assert isinstance(span, LightSpan)
    return span


def counted() -> tuple[list[tuple[str, int]], Any]:
    """A list of what is counted, and the counting function that fills it."""
    counts: list[tuple[str, int]] = []
    return counts, lambda name, n: counts.append((name, n))


def plain(value: Any) -> Any:
    """An OTLP ``AnyValue`` as a Python value."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return tuple(plain(item) for item in value.array_value.values)
    return getattr(value, which)


def decoded(data: bytes) -> dict[str, Any]:
    """An encoded ``Span`` message as plain values."""
    message = SpanMessage.FromString(data)
    return {
        "trace_id": message.trace_id.hex(),
        "span_id": message.span_id.hex(),
        "parent_span_id": message.parent_span_id.hex(),
        "name": message.name,
        "kind": message.kind,
        "attributes": {kv.key: plain(kv.value) for kv in message.attributes},
        "dropped_attributes_count": message.dropped_attributes_count,
        "status": (message.status.code, message.status.message),
        "flags": message.flags,
        "times": (message.start_time_unix_nano, message.end_time_unix_nano),
    }


class TestPrepare:
    def test_name_and_attributes_from_the_snapshot(self) -> None:
        """The record's fields become the span's name and its TCC and GenAI attributes, after
        those the span already had; the snapshot is let go, and nothing is counted."""
        span = tool_call(Ended(), **{"app.request": "GET /search"})
        counts, count = counted()
        prepared = prepare(span, NO_LIMITS, count)
        assert (prepared, span.snapshot, counts) == (
            Prepared("execute_tool search", {"app.request": "GET /search", **TOOL_ATTRIBUTES}, 0),
            None,
            [],
        )

    def test_span_without_snapshot_as_it_is(self) -> None:
        """A LightSpan no record finished keeps the name and attributes it has."""
        sink = Ended()
        span = LightSpan("custom", SpanKind.INTERNAL, None, {"a": 1}, "run-1", sink)
        span.end()
        counts, count = counted()
        assert (prepare(span, NO_LIMITS, count), counts) == (
            Prepared("custom", {"a": 1}, 0),
            [],
        )

    def test_count_limit_keeps_our_own(self) -> None:
        """Over the count limit the application's attributes give way and tcc_otel's own are
        kept; what was left out is returned and counted as ``attributes_cut``."""
        span = tool_call(Ended(), **{"app.one": 1, "app.two": 2})
        limits = SpanLimits(max_span_attributes=len(TOOL_ATTRIBUTES) + 1)
        counts, count = counted()
        prepared = prepare(span, limits, count)
        assert (prepared, counts) == (
            Prepared("execute_tool search", {"app.one": 1, **TOOL_ATTRIBUTES}, 1),
            [("attributes_cut", 1)],
        )

    def test_length_limit_counted(self) -> None:
        """Values over the length limit are shortened and counted as ``truncated``."""
        sink = Ended()
        call = ToolCall(road(sink), "run-1", None, "search", "call-1")
        call.args("x" * 50).end()
        counts, count = counted()
        name, attributes, dropped = prepare(
            sink.spans[0], SpanLimits(max_span_attribute_length=20), count
        )
        assert (
            name,
            dropped,
            len(str(attributes["tcc.tool_call.args"])),
            len(str(attributes["gen_ai.tool.call.arguments"])),
            counts,
        ) == ("execute_tool search", 0, 20, 20, [("truncated", 2)])


class TestLightSpan:
    def test_message_of_a_child(self) -> None:
        """A tool call of a run encodes its ids, its parent (the run's span, local), name,
        OTLP kind (INTERNAL is 1), times and attributes, with an unset status; nothing is
        counted within the limits."""
        sink = Ended()
        run = Run(road(sink), run_id="run-1")
        run.tool_call("search", "call-1").args("q").result("r").end()
        span = sink.spans[0]
        parent = run.span.get_span_context()
        counts, count = counted()
        got = decoded(light_span(span, limit_values(NO_LIMITS), count))
        assert (got, counts) == (
            {
                "trace_id": f"{parent.trace_id:032x}",
                "span_id": f"{span.span_id:016x}",
                "parent_span_id": f"{parent.span_id:016x}",
                "name": "execute_tool search",
                "kind": 1,
                "attributes": TOOL_ATTRIBUTES,
                "dropped_attributes_count": 0,
                "status": (0, ""),
                "flags": 0x100,
                "times": (span.start_ns, span.end_ns),
            },
            [],
        )

    def test_failed_run_under_a_remote_parent(self) -> None:
        """A run started under a context from another service names that span as a remote
        parent; ``error()`` is an ERROR status (2) with its message and ``error.type``."""
        remote = TraceContextTextMapPropagator().extract(
            {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
        )
        token = otel_context.attach(remote)
        try:
            sink = Ended()
            Run(road(sink), run_id="run-1").error("model overloaded")
        finally:
            otel_context.detach(token)
        counts, count = counted()
        got = decoded(light_span(sink.spans[0], limit_values(NO_LIMITS), count))
        assert (
            got["trace_id"],
            got["parent_span_id"],
            got["name"],
            got["status"],
            got["flags"],
            got["attributes"]["error.type"],
            counts,
        ) == (
            "0af7651916cd43dd8448eb211c80319c",
            "b7ad6b7169203331",
            "invoke_agent",
            (2, "model overloaded"),
            0x300,
            "_OTHER",
            [],
        )

    def test_dropped_attributes_on_the_wire(self) -> None:
        """What the count limit left out is the message's dropped attributes count."""
        span = tool_call(Ended(), **{"app.one": 1, "app.two": 2})
        counts, count = counted()
        got = decoded(
            light_span(
                span, limit_values(SpanLimits(max_span_attributes=len(TOOL_ATTRIBUTES))), count
            )
        )
        assert (got["attributes"], got["dropped_attributes_count"], counts) == (
            TOOL_ATTRIBUTES,
            2,
            [("attributes_cut", 2)],
        )
