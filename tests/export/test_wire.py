"""The direct OTLP encoder writes the same bytes as the stock protobuf encoder."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope as InstrumentationScope_pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as Resource_pb
from opentelemetry.proto.trace.v1.trace_pb2 import Span as Span_pb
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceFlags, TraceState

import tcc_otel as tcc
from tcc_otel._export import _wire as _wire
from tcc_otel.testing import CapturedSpans


def _sdk_spans() -> Sequence[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc", "n": 3}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    scoped = provider.get_tracer("scope.a", "1.2", schema_url="https://x/s", attributes={"a": 1})
    plain = provider.get_tracer("scope.b")
    remote = SpanContext(
        0xABC,
        0xDEF,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("k", "v")]),
    )
    parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    values = {
        "s": "é\u2603",
        "empty": "",
        "neg": -5,
        "big": 2**62,
        "zero": 0.0,
        "no": False,
        "strs": ["a", "b"],
        "ints": [1, -2],
        "floats": [1.5],
        "bools": [True, False],
    }
    with scoped.start_as_current_span(
        "root",
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes=values,
        links=[Link(remote, {"l": 1})],
    ) as root:
        root.add_event("event", {"x": 1})
        root.add_event("bare")
        root.set_status(Status(StatusCode.ERROR, "bad"))
        with plain.start_as_current_span("child", kind=trace.SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.OK))
        root.record_exception(ValueError("boom"))
    with scoped.start_as_current_span(""):
        pass
    provider.shutdown()
    return exporter.get_finished_spans()


class TestEncodeSdkSpans:
    def test_same_bytes_as_stock_encoder(self) -> None:
        """Resources, scopes, remote parents, links, events, statuses and every value type
        encode to exactly the stock encoder's bytes."""
        spans = _sdk_spans()
        assert _wire.encode_sdk_spans(spans) == encode_spans(spans).SerializeToString()

    def test_same_bytes_for_tcc_records(self, captured: CapturedSpans) -> None:
        """A run with steps and tool calls encodes to the stock encoder's bytes."""
        with tcc.run(session_id="s") as r:
            r.prompt("hi").metadata({"tcc.agent": "a"}, n=1, ok=True, x=0.5)
            r.step().prompt("p").response("r").tokens(1, 2, 3).finish_reason("stop").end()
            r.tool_call("t").args({"a": [1]}).error("failed")
        spans = captured.spans
        assert len(spans) == 3
        assert _wire.encode_sdk_spans(spans) == encode_spans(spans).SerializeToString()


class TestExportRequest:
    def test_groups_match_protobufs_own_encoding(self) -> None:
        """Spans of several origins (resources shared by scopes, schema URLs or none, span
        sizes on each side of the varint length bounds) make the request protobuf makes."""
        resources = [
            Resource_pb(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=n))])
            for n in ("a", "b" * 300)
        ]
        scopes = [InstrumentationScope_pb(name=n, version="1") for n in ("s1", "s2" * 100)]
        names = ["", "x" * 100, "y" * 130, "z" * 16_370, "w" * 16_400, "v" * 70_000]
        spans = [Span_pb(trace_id=bytes(16), span_id=bytes(8), name=n) for n in names]
        plan = [  # resource, its schema, scope, its schema, spans
            (0, "", 0, "", spans[:2]),
            (0, "", 1, "https://s/scope", spans[2:4]),
            (1, "https://s/resource", 0, "", spans[4:]),
            (1, "https://s/resource", 1, "", []),
        ]
        groups = {
            _wire.Origin(resources[r].SerializeToString(), rs, scopes[c].SerializeToString(), cs): [
                span.SerializeToString() for span in group
            ]
            for r, rs, c, cs, group in plan
        }
        expected = ExportTraceServiceRequest()
        for r in (0, 1):
            resource_spans = expected.resource_spans.add(resource=resources[r])
            for rr, rs, c, cs, group in plan:
                if rr == r:
                    resource_spans.schema_url = rs
                    resource_spans.scope_spans.add(scope=scopes[c], spans=group, schema_url=cs)
        assert _wire.export_request(groups) == expected.SerializeToString()

    def test_no_spans_no_bytes(self) -> None:
        assert _wire.export_request({}) == b""


class TestValues:
    @pytest.mark.parametrize(
        ("n", "encoded"),
        [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02")],
    )
    def test_varint(self, n: int, encoded: bytes) -> None:
        """Unsigned varints follow the protobuf LEB128 rule."""
        assert _wire.varint(n) == encoded

    def test_negative_varint_is_ten_bytes(self) -> None:
        """A negative int64 is its 64-bit two's complement, ten bytes long."""
        assert _wire.varint(-1) == b"\xff" * 9 + b"\x01"

    def test_unsupported_value_raises(self) -> None:
        """A value type OTLP cannot carry is refused rather than encoded wrongly."""
        with pytest.raises(TypeError, match="cannot be object"):
            _wire.any_value(object())
