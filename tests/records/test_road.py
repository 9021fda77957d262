"""Road and open_span (tcc_otel/_records/_road.py): what records need from their destination,
and the one place a record's span starts: a LightSpan or a span of the road's tracer, under the
given parent or the active span; which span each record nests under."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.tracing import UserTracing, ctx, parent_of, self_of
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import tcc_otel as tcc
from tcc_otel import _guard
from tcc_otel._records._road import Road, open_span
from tcc_otel._records._span import LightSpan
from tcc_otel.testing import CapturedSpans

W3C_TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
W3C_SPAN_ID = 0x00F067AA0BA902B7
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class TestParents:
    def test_steps_and_tool_calls_are_children_of_the_run(self, captured: CapturedSpans) -> None:
        """Steps and tool calls are the run's children in its trace; ``step.tool_call()`` is the
        step's child."""
        r = tcc.run().prompt("hi")
        s = r.step().prompt("p").response("r")
        s.tool_call("from_step").end()
        s.end()
        r.tool_call("from_run").end()
        r.end()
        run = captured.by_name("invoke_agent")
        step = captured.by_name("chat")
        assert {span.name: parent_of(span) for span in captured.spans} == {
            "execute_tool from_step": self_of(step),
            "chat": self_of(run),
            "execute_tool from_run": self_of(run),
            "invoke_agent": None,
        }

    def test_run_is_child_of_the_users_active_span(
        self, captured: CapturedSpans, user: UserTracing
    ) -> None:
        """The run span's parent is the span active in the user's own provider, e.g. a request
        span."""
        with user.tracer.start_as_current_span("GET /chat"):
            tcc.run().prompt("hi").end()
        (request,) = user.spans
        assert (parent_of(captured.by_name("invoke_agent")), request.name) == (
            self_of(request),
            "GET /chat",
        )

    def test_run_parent_from_w3c_traceparent(self, captured: CapturedSpans) -> None:
        """A context extracted from a W3C ``traceparent`` header becomes the run's parent."""
        remote = TraceContextTextMapPropagator().extract({"traceparent": TRACEPARENT})
        token = otel_context.attach(remote)
        try:
            r = tcc.run().prompt("hi")
            r.step().prompt("p").response("r").end()
            r.end()
        finally:
            otel_context.detach(token)
        run = captured.by_name("invoke_agent")
        assert (parent_of(run), parent_of(captured.by_name("chat"))) == (
            (W3C_TRACE_ID, W3C_SPAN_ID),
            (W3C_TRACE_ID, ctx(run).span_id),
        )

    def test_run_without_active_span_is_a_root(self, captured: CapturedSpans) -> None:
        """With no span active the run span is a root span."""
        tcc.run().prompt("hi").end()
        assert [parent_of(span) for span in captured.spans] == [None]


class Ended:
    """A Sink keeping the LightSpans that end into it, as the export pipeline would."""

    def __init__(self) -> None:
        self.spans: list[tuple[LightSpan, bool]] = []

    def submit(self, span: LightSpan, run_end: bool) -> None:
        self.spans.append((span, run_end))


class FailingTracer(trace.NoOpTracer):
    """OpenTelemetry failing to start a span."""

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        raise RuntimeError("no span today")


class TestRoad:
    def test_defaults(self) -> None:
        """A bare road goes nowhere (a no-op tracer, no sink, SDK spans) and keeps content
        within the default caps."""
        road = Road()
        assert (
            isinstance(road.tracer, trace.NoOpTracer),
            road.sink,
            road.light,
            road.capture_content,
            road.max_content_bytes,
            road.max_data_url_bytes,
        ) == (True, None, False, True, 1024 * 1024, 32_000)

    @pytest.mark.parametrize(
        ("caps", "short"),
        [
            pytest.param({}, 32_000, id="defaults"),
            pytest.param({"max_content_bytes": 1000}, 250, id="content-cap"),
            pytest.param({"max_data_url_bytes": 100}, 100, id="data-url-bound"),
        ],
    )
    def test_short_content(self, caps: dict[str, int], short: int) -> None:
        """Content no longer than a quarter of the content cap and the data URL bound needs no
        cap check."""
        assert Road(**caps).short_content == short  # type: ignore[arg-type]


class TestOpenSpan:
    def test_light_span_under_the_active_span(self, user: UserTracing) -> None:
        """On a light road the span is a LightSpan under the active span, with the name, OTLP
        kind, attributes, run and locality given; it ends into the road's sink."""
        sink = Ended()
        road = Road(sink=sink, light=True)
        with user.tracer.start_as_current_span("request") as request:
            span = open_span(
                road, "chat", None, SpanKind.CLIENT, {"tcc.type": "step"}, "run-1", local=False
            )
        assert isinstance(span, LightSpan)
        span.end()
        assert (
            span.parent == request.get_span_context(),
            span.trace_id == request.get_span_context().trace_id,
            span.name,
            span.kind,
            span.attributes,
            span.run_id,
            span.local,
            sink.spans,
        ) == (True, True, "chat", 3, {"tcc.type": "step"}, "run-1", False, [(span, False)])

    def test_given_parent_wins(self, user: UserTracing) -> None:
        """A parent given is the parent, whatever span is active."""
        road = Road(sink=Ended(), light=True)
        run = open_span(road, "invoke_agent", None, SpanKind.INTERNAL, {}, "run-1")
        with user.tracer.start_as_current_span("elsewhere"):
            step = open_span(road, "chat", run, SpanKind.CLIENT, {}, "run-1")
        assert isinstance(step, LightSpan)
        assert (step.parent, step.local) == (run.get_span_context(), True)

    def test_sdk_span_of_the_roads_tracer(self, user: UserTracing) -> None:
        """Off the light road the span is the tracer's own, under the given parent."""
        road = Road(user.tracer)
        with user.tracer.start_as_current_span("request") as request:
            pass
        span = open_span(road, "chat", request, SpanKind.CLIENT, {"tcc.type": "step"}, "run-1")
        span.end()
        (_, chat) = user.spans
        assert isinstance(chat, ReadableSpan)
        assert (chat.name, chat.kind, dict(chat.attributes or {}), parent_of(chat)) == (
            "chat",
            SpanKind.CLIENT,
            {"tcc.type": "step"},
            self_of(user.spans[0]),
        )

    def test_tracer_failure_gives_a_non_recording_span(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Outside our test suite, a tracer that fails to start the span costs an internal
        error, counted, and the record gets a non-recording span so the API keeps working."""
        monkeypatch.setattr(_guard, "RAISE_INTERNAL_ERRORS", False)
        monkeypatch.setattr(_guard, "_caught", [0])
        span = open_span(Road(FailingTracer()), "chat", None, SpanKind.CLIENT, {}, "run-1")
        assert (span, _guard.caught()) == (trace.INVALID_SPAN, 1)

    def test_tracer_failure_raised_under_the_test_suite(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Under our test suite the same failure is raised, so it fails the test that meets
        it."""
        monkeypatch.setattr(_guard, "_caught", [0])  # the process's count stays as it was
        with pytest.raises(RuntimeError, match="no span today"):
            open_span(Road(FailingTracer()), "chat", None, SpanKind.CLIENT, {}, "run-1")
