"""LightSpan: the default mode's spans reach the wire exactly as SDK spans of a provider would."""

from __future__ import annotations

import uuid
from typing import Any, Optional

import pytest
from helpers.clients import fresh_client
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

import tcc_otel as tcc
from tcc_otel._local._model import ReceivedSpan
from tcc_otel._local._server import Receiver
from tcc_otel._records._span import LightSpan, new_uuid
from tcc_otel._schema._limits import fit_attributes

Shape = tuple[str, str, str, str, Optional[str], dict[str, Any], list[tuple[str, dict[str, Any]]]]


def workload() -> None:
    """One run with every kind of record, field, failure and nesting."""
    with tcc.run(run_id="r-1", session_id="s-1", conversational=True) as r:
        r.prompt("question", system_prompt="be brief").metadata({"tcc.agent": "a"}, plan="pro")
        with r.step(step_id="st-1") as s:
            s.prompt("p").response("answer").model("m", "m-1").tokens(10, 2, 5).cost(0.25)
            s.finish_reason("tool_call").tool_definitions([{"name": "t"}])
            s.tool_call("lookup", tool_call_id="tc-1").args({"q": 1}).result("ok").end()
        r.tool_call("search", tool_call_id="tc-2").error("timed out: token=abc123")
        with pytest.raises(KeyError):
            failing_step(r)
        r.status(0).response("done")


def failing_step(r: tcc.Run) -> None:
    """A step whose body raises inside its ``with`` block."""
    with r.step(step_id="st-2") as failing:
        failing.prompt("p2")
        raise KeyError("missing")


def shapes(spans: list[ReceivedSpan]) -> list[Shape]:
    """Everything but ids and times, with parents by name; stack traces cut to their head."""
    names = {span.span_id: span.name for span in spans}
    out = []
    for span in spans:
        events = [
            (
                name,
                {
                    k: v.splitlines()[0] if k == "exception.stacktrace" else v
                    for k, v in attributes.items()
                },
            )
            for name, attributes in span.events
        ]
        parent = names.get(span.parent_span_id or "", "-")
        out.append(
            (
                span.name,
                span.kind,
                parent,
                span.status_code,
                span.status_message or None,
                span.attributes,
                events,
            )
        )
    return sorted(out, key=lambda shape: (shape[0], shape[2]))


def record(receiver: Receiver, **options: Any) -> list[Shape]:
    """Run the workload through a fresh client configured with ``options``."""
    with fresh_client():
        tcc.configure(base_url=receiver.url, **options)
        workload()
        assert tcc.flush(10.0)
    found = shapes(receiver.spans)
    receiver.clear()
    return found


class TestParity:
    def test_light_equals_sdk(self, receiver: Receiver) -> None:
        """The default mode sends the same names, kinds, parents, statuses, attributes and
        exception events as records made as SDK spans of a user's provider."""
        light = record(receiver)
        provider = TracerProvider()
        sdk = record(receiver, tracer_provider=provider)
        provider.shutdown()
        assert len(light) == 5
        assert light == sdk


class TestSpanApi:
    def sink_less(self, **attributes: Any) -> LightSpan:
        return LightSpan("op", SpanKind.INTERNAL, None, dict(attributes), "run", None)

    def test_context_is_stable_and_sampled(self) -> None:
        """The span context is made once, is valid, sampled and not remote."""
        span = self.sink_less()
        context = span.get_span_context()
        assert (context is span.get_span_context(), context.is_valid) == (True, True)
        assert (context.trace_flags.sampled, context.is_remote) == (True, False)

    def test_child_of_active_span_shares_trace(self) -> None:
        """A light span started under a parent keeps its trace id and trace state."""
        parent = self.sink_less().get_span_context()
        child = LightSpan("c", SpanKind.CLIENT, parent, {}, "run", None)
        assert child.get_span_context().trace_id == parent.trace_id

    def test_status_rules_follow_the_sdk(self) -> None:
        """UNSET changes nothing, ERROR keeps its description, and OK is final."""
        span = self.sink_less()
        span.set_status(StatusCode.UNSET)
        span.set_status(Status(StatusCode.ERROR, "bad"))
        seen = [span.status]
        span.set_status(StatusCode.OK)
        span.set_status(StatusCode.ERROR, "later")
        seen.append(span.status)
        assert seen == [(2, "bad"), (1, None)]

    def test_nothing_changes_after_end(self) -> None:
        """After end() the span stops recording and ignores setters."""
        span = self.sink_less(a=1)
        span.end()
        span.set_attribute("b", 2)
        span.update_name("other")
        assert (span.is_recording(), span.attributes, span.name) == (False, {"a": 1}, "op")

    def test_users_attributes_on_the_active_span_are_sent(self, receiver: Receiver) -> None:
        """An attribute the user sets on the current span inside ``with`` reaches the wire."""
        with fresh_client():
            tcc.configure(base_url=receiver.url)
            with tcc.run() as r:
                r.prompt("q")
                trace.get_current_span().set_attribute("app.tenant", "t-9")
            assert tcc.flush(10.0)
        assert receiver.spans[0].attributes["app.tenant"] == "t-9"

    def test_span_limits_apply(self) -> None:
        """OTEL span limits cut long values and extra attributes, counting what was dropped."""
        span = self.sink_less(a="x" * 10, b=["yyyy"], c=3)
        span.end()
        limits = SpanLimits(max_span_attribute_length=2, max_span_attributes=2)
        fitted = fit_attributes(
            span.attributes, limits.max_span_attributes, limits.max_span_attribute_length
        )
        assert (fitted.attributes, fitted.dropped) == ({"a": "xx", "b": ["yy"]}, 1)


class TestIds:
    def test_uuid4_format(self) -> None:
        """Generated ids are distinct RFC 4122 version 4 UUID strings."""
        ids = {new_uuid() for _ in range(1000)}
        assert len(ids) == 1000
        assert {uuid.UUID(i).version for i in ids} == {4}
        assert {uuid.UUID(i).variant for i in ids} == {uuid.RFC_4122}
