"""Sharing records' spans with the application's span processors (tcc_otel/_export/_share.py):
the ``ReadableSpan`` built from a LightSpan, which processors get it, a failing processor, and,
through a real default pipeline under a global provider, the opt-out and the modes that send
nothing to TCC."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest
from helpers.clients import messages
from helpers.team import TeamTracing, scope_of
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.trace import (
    NonRecordingSpan,
    NoOpTracerProvider,
    SpanContext,
    TraceFlags,
    TraceState,
)

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel._export._encode import encode_prepared, prepare
from tcc_otel._export._pipeline import ExportPipeline
from tcc_otel._export._processor import BackgroundProcessor
from tcc_otel._export._share import Sharing
from tcc_otel._export._stats import Stats
from tcc_otel._export._wire import origin, sdk_span
from tcc_otel._local._server import Receiver
from tcc_otel._records._road import Road
from tcc_otel._records._span import LightSpan
from tcc_otel._records._tool_call import ToolCall
from tcc_otel._version import __version__

NO_LIMITS = SpanLimits(max_span_attributes=1000, max_span_attribute_length=100_000)
PARENT = SpanContext(
    trace_id=0xABC,
    span_id=0xDEF,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("team", "a")]),
)
TCC_SPANS = ["execute_tool search", "chat", "invoke_agent"]
"""What ``record_run()`` records, in the order the spans end."""


class Ended:
    """A Sink keeping the LightSpans records hand over when they end."""

    def __init__(self) -> None:
        self.spans: list[LightSpan] = []

    def submit(self, span: LightSpan, run_end: bool) -> None:
        self.spans.append(span)


class Recorder(SpanProcessor):
    """Keeps the spans it gets in ``on_end``."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do at start."""

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


class Raising(SpanProcessor):
    """An application's processor with a bug."""

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("the team's bug")


def failed_tool_call(**app_attributes: Any) -> LightSpan:
    """An ended tool call under a remote parent, with an event, an error status and
    ``app_attributes`` set on its span by the application."""
    ended = Ended()
    call = ToolCall(Road(sink=ended, light=True), "run-1", NonRecordingSpan(PARENT), "search", "c")
    call.span.set_attributes(app_attributes)
    call.args("q")
    call.span.add_event("retry", {"attempt": 2}, timestamp=1234)
    call.error("timed out")
    (span,) = ended.spans
    return span


def counter() -> tuple[Counter[str], Any]:
    """What is counted, and the counting function (``Stats.add``'s signature) that fills it."""
    counts: Counter[str] = Counter()

    def count(name: str, n: int) -> None:
        counts[name] += n

    return counts, count


def sharing_for(provider: object, count: Any = lambda name, n: None) -> Sharing:
    """A ``Sharing`` that follows ``provider`` and skips tcc_otel's own processors."""
    sharing = Sharing(skip=BackgroundProcessor, count=count)
    assert sharing.follow(provider)
    return sharing


def record_run() -> None:
    """One run with a step and a tool call, through ``tcc_otel``'s module functions."""
    with tcc.run(run_id="run-1") as run:
        run.prompt("q")
        with run.tool_call("search", tool_call_id="call-1") as call:
            call.args("x").result("y")
        with run.step(step_id="step-1") as step:
            step.prompt("p").response("r")
        run.response("a")


def tcc_spans(team: TeamTracing) -> list[str]:
    """Names of the spans of tcc_otel's scope that the team's exporter got, in order."""
    return [span.name for span in team.spans if scope_of(span) == "tcc_otel"]


class TestReadableSpan:
    def test_matches_the_light_span(self) -> None:
        """The ReadableSpan has the LightSpan's ids, parent, kind, times, status and events, the
        name and attributes built for TCC, the provider's resource and tcc_otel's scope."""
        span = failed_tool_call()
        prepared = prepare(span, NO_LIMITS, lambda name, n: None)
        resource = Resource.create({"service.name": "team"})
        multi = TracerProvider(resource=resource)
        recorder = Recorder()
        multi.add_span_processor(recorder)
        sharing = sharing_for(multi)
        sharing(span, prepared)
        (got,) = recorder.spans
        context = got.get_span_context()
        assert context is not None
        scope = got.instrumentation_scope
        assert scope is not None
        assert {
            "name": got.name,
            "ids": (context.trace_id, context.span_id, context.trace_flags, context.is_remote),
            "trace_state": dict(context.trace_state),
            "parent": got.parent,
            "kind": got.kind.value + 1,
            "times": (got.start_time, got.end_time),
            "status": (got.status.status_code.value, got.status.description),
            "attributes": dict(got.attributes or {}),
            "dropped_attributes": got.dropped_attributes,
            "events": [(e.name, e.timestamp, dict(e.attributes or {})) for e in got.events],
            "links": got.links,
            "resource": got.resource,
            "scope": (scope.name, scope.version),
        } == {
            "name": prepared.name,
            "ids": (PARENT.trace_id, span.span_id, TraceFlags.SAMPLED, False),
            "trace_state": {"team": "a"},
            "parent": PARENT,
            "kind": span.kind,
            "times": (span.start_ns, span.end_ns),
            "status": (2, "timed out"),
            "attributes": prepared.attributes,
            "dropped_attributes": 0,
            "events": [("retry", 1234, {"attempt": 2})],
            "links": (),
            "resource": resource,
            "scope": ("tcc_otel", __version__),
        }
        assert sdk_span(got) == encode_prepared(span, prepared)  # what TCC gets, byte for byte

    def test_limits_apply_once(self) -> None:
        """The attributes shared are those fitted to the span limits for TCC, and the count
        of those left out is the one sent."""
        span = failed_tool_call(**{"app.a": 1, "app.b": 2, "app.c": 3})
        prepared = prepare(span, SpanLimits(max_span_attributes=11), lambda name, n: None)
        provider, recorder = TracerProvider(), Recorder()
        provider.add_span_processor(recorder)
        sharing = sharing_for(provider)
        sharing(span, prepared)
        (got,) = recorder.spans
        assert (dict(got.attributes or {}), got.dropped_attributes) == (
            prepared.attributes,
            prepared.dropped,
        )
        assert (len(prepared.attributes), prepared.dropped) == (11, 2)


class TestSharing:
    def test_every_processor_but_ours(self) -> None:
        """Each of the provider's processors gets the span, except tcc_otel's own, which would
        send it to TCC a second time."""
        pipeline = ExportPipeline(None, Stats(), origin(None, "tcc_otel"))
        before, after = Recorder(), Recorder()
        provider = TracerProvider()
        for processor in (before, BackgroundProcessor(pipeline), after):
            provider.add_span_processor(processor)
        sharing = sharing_for(provider)
        span = failed_tool_call()
        sharing(span, prepare(span, NO_LIMITS, lambda name, n: None))
        assert (len(before.spans), len(after.spans), pipeline.pending()) == (1, 1, 0)

    def test_a_processor_added_later_gets_later_spans(self) -> None:
        """The processors are read at every span: one added meanwhile gets the next."""
        provider, first, later = TracerProvider(), Recorder(), Recorder()
        provider.add_span_processor(first)
        sharing = sharing_for(provider)
        for index in range(2):
            span = failed_tool_call()
            sharing(span, prepare(span, NO_LIMITS, lambda name, n: None))
            if index == 0:
                provider.add_span_processor(later)
        assert (len(first.spans), len(later.spans)) == (2, 1)

    def test_a_failing_processor_is_counted_and_logged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A processor that raises is counted under ``share_errors`` and logged; the next
        processor still gets the span, and nothing reaches the caller."""
        provider, recorder = TracerProvider(), Recorder()
        provider.add_span_processor(Raising())
        provider.add_span_processor(recorder)
        counts, count = counter()
        sharing = sharing_for(provider, count)
        span = failed_tool_call()
        sharing(span, prepare(span, NO_LIMITS, lambda name, n: None))
        assert (dict(counts), len(recorder.spans), messages(caplog.records)) == (
            {"share_errors": 1},
            1,
            [
                "the application's span processor Raising raised RuntimeError in on_end() for "
                "a tcc_otel span (counted under share_errors in tcc.stats())"
            ],
        )

    def test_no_sdk_provider_no_sharing(self, caplog: pytest.LogCaptureFixture) -> None:
        """A provider that takes no processors gets nothing and no warning; one that takes
        them but keeps them elsewhere than the SDK does gets nothing, with one warning."""

        class Elsewhere:
            def add_span_processor(self, processor: SpanProcessor) -> None:
                """Takes processors, keeps them its own way."""

        sharing = Sharing(skip=BackgroundProcessor, count=print)
        none = sharing.follow(NoOpTracerProvider())
        quiet = messages(caplog.records)
        other = sharing.follow(Elsewhere())
        assert (none, quiet, other, sharing.active) == (False, [], False, False)
        assert len(messages(caplog.records)) == 1
        assert "not shared with your exporters" in messages(caplog.records)[0]


class TestClient:
    def test_each_span_once(self, team: TeamTracing, client: Client, receiver: Receiver) -> None:
        """The team's exporter gets each run, step and tool-call span once, and so does TCC,
        although tcc_otel's own processor sits on the team's provider."""
        tcc.configure(base_url=receiver.url)
        record_run()
        assert tcc.flush(10.0)
        processors = team.provider._active_span_processor._span_processors
        assert (
            tcc_spans(team),
            [span.name for span in receiver.spans],
            [type(p).__name__ for p in processors],
        ) == (
            TCC_SPANS,
            ["execute_tool search", "chat", "invoke_agent"],
            ["SimpleSpanProcessor", "Threads", "BackgroundProcessor"],
        )

    def test_off_the_callers_thread(self, team: TeamTracing, client: Client) -> None:
        """The team's processors get tcc_otel's spans on tcc_otel's batcher thread only."""
        tcc.configure(exporter="none")
        record_run()
        assert tcc.flush(10.0)
        assert team.threads.ended == [(name, "tcc_otel-batch") for name in TCC_SPANS]

    @pytest.mark.parametrize("how", ["env", "keyword"])
    def test_opt_out(
        self,
        team: TeamTracing,
        client: Client,
        receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch,
        how: str,
    ) -> None:
        """With ``TCC_SHARE_SPANS=false`` (or ``share_spans=False``) the team's exporter gets
        none of tcc_otel's spans; TCC still gets them."""
        if how == "env":
            monkeypatch.setenv("TCC_SHARE_SPANS", "false")
            tcc.configure(base_url=receiver.url)
        else:
            tcc.configure(base_url=receiver.url, share_spans=False)
        record_run()
        assert tcc.flush(10.0)
        assert (tcc_spans(team), len(receiver.spans)) == ([], 3)

    @pytest.mark.parametrize("options", [{"exporter": "none"}, {}], ids=["exporter-none", "no-key"])
    def test_nothing_sent_still_shared(
        self, team: TeamTracing, client: Client, options: dict[str, Any]
    ) -> None:
        """With nothing to send to TCC (``exporter="none"``, or no API key) the team's
        exporter still gets the spans; nothing counts as recorded for TCC."""
        tcc.configure(**options)
        record_run()
        assert tcc.flush(10.0)
        stats = tcc.stats()
        assert (tcc_spans(team), stats["recorded"], stats["queued"]) == (TCC_SPANS, 0, 0)

    def test_configure_again(self, team: TeamTracing, client: Client, receiver: Receiver) -> None:
        """``configure()`` again delivers and shares what the old configuration holds; later
        runs are shared by the new one: each span once, to the team and to TCC."""
        tcc.configure(base_url=receiver.url)
        with tcc.run(run_id="run-a") as run:
            run.prompt("a")
        tcc.configure(base_url=receiver.url)
        with tcc.run(run_id="run-b") as run:
            run.prompt("b")
        assert tcc.flush(10.0)
        shared = [span.attributes["tcc.runId"] for span in team.spans if span.attributes]
        assert (shared, [span.attributes["tcc.runId"] for span in receiver.spans]) == (
            ["run-a", "run-b"],
            ["run-a", "run-b"],
        )

    def test_failing_team_processor(
        self,
        team: TeamTracing,
        client: Client,
        receiver: Receiver,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A team processor that raises costs neither TCC nor the team's other processors a
        span; ``tcc.stats()`` counts the errors."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        team.provider.add_span_processor(Raising())
        tcc.configure(base_url=receiver.url)
        record_run()
        assert tcc.flush(10.0)
        assert (
            tcc_spans(team),
            len(receiver.spans),
            tcc.stats()["share_errors"],
            len(messages(caplog.records)),
        ) == (TCC_SPANS, 3, 3, 1)
