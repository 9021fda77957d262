"""``tcc_otel.testing`` (tcc_otel/testing.py), the helpers for users' own tests: ``capture()``
records into memory on the default road and sends nothing; each ended span is a ReadableSpan."""

from __future__ import annotations

import pytest
from helpers.team import TeamTracing
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import tcc_otel as tcc
from tcc_otel._local._server import Receiver
from tcc_otel._records._span import LightSpan
from tcc_otel.testing import CapturedSpans, capture


def record_run() -> None:
    """A run with a step and a failed tool call."""
    with tcc.run(run_id="run-1") as run:
        run.prompt("q")
        run.step(step_id="step-1").prompt("p").response("r").model(used="m").end()
        run.tool_call("search", tool_call_id="call-1").error("tool timed out")


class TestCapture:
    def test_spans_in_memory_nothing_sent(self, receiver: Receiver) -> None:
        """Inside ``capture()`` the records are kept in memory, oldest first, and nothing
        reaches the endpoint configured, although flush() says all is done."""
        with capture(base_url=receiver.url, api_key="k") as captured:
            record_run()
            flushed = tcc.flush(5.0)
            names = [span.name for span in captured.spans]
        assert (names, flushed, receiver.requests) == (
            ["chat m", "execute_tool search", "invoke_agent"],
            True,
            [],
        )

    def test_previous_client_back_after(self) -> None:
        """The module functions use the capturing client only inside the block: after it,
        records no longer reach the captured spans."""
        before = tcc._client
        with capture() as captured:
            inside = tcc._client
            tcc.run().prompt("inside").end()
        with capture():
            tcc.run().prompt("later").end()
        assert (inside is before, tcc._client is before, len(captured.spans)) == (
            False,
            True,
            1,
        )

    def test_options_are_configure_keywords(self) -> None:
        """Keywords of ``capture()`` configure the capturing client, as ``configure()``
        would."""
        with capture(capture_content=False) as captured:
            tcc.run(run_id="run-1").prompt("secret prompt").end()
        assert dict(captured.by_name("invoke_agent").attributes or {}) == {
            "tcc.type": "run",
            "tcc.runId": "run-1",
            "gen_ai.operation.name": "invoke_agent",
        }


class TestReadableSpans:
    def test_kind_status_and_parent(self, captured: CapturedSpans) -> None:
        """Each span is a ReadableSpan with the record's OpenTelemetry kind and status, its
        parent the run's span and its events as recorded."""

        def agent() -> None:
            with tcc.run(run_id="run-1") as run:
                run.prompt("q")
                run.step(step_id="step-1").prompt("p").response("r").end()
                run.tool_call("search").error("tool timed out")
                raise LookupError("no such city")

        with pytest.raises(LookupError):
            agent()
        step, tool, run_span = captured.spans
        run_context = run_span.get_span_context()
        assert all(isinstance(span, ReadableSpan) for span in captured.spans)
        assert [
            (
                span.name,
                span.kind,
                span.status.status_code,
                span.status.description,
                span.parent,
                [event.name for event in span.events],
            )
            for span in (step, tool, run_span)
        ] == [
            ("chat", SpanKind.CLIENT, StatusCode.UNSET, None, run_context, []),
            (
                "execute_tool search",
                SpanKind.INTERNAL,
                StatusCode.ERROR,
                "tool timed out",
                run_context,
                [],
            ),
            (
                "invoke_agent",
                SpanKind.INTERNAL,
                StatusCode.ERROR,
                "LookupError: no such city",
                None,
                ["exception"],
            ),
        ]

    def test_times_of_the_records(self, captured: CapturedSpans) -> None:
        """Each span's start and end times are those of the record's span, in ns."""
        with tcc.run() as run:
            run.prompt("q")
            step = run.step().prompt("p").response("r")
            step.end()
        records = [span for span in (step.span, run.span) if isinstance(span, LightSpan)]
        assert [(span.start_time, span.end_time) for span in captured.spans] == [
            (record.start_ns, record.end_ns) for record in records
        ]


class TestCapturedSpans:
    def test_by_name(self, captured: CapturedSpans) -> None:
        """``by_name`` gives the one span of that name, and raises LookupError saying how many
        there are when that is not one."""
        tcc.run().prompt("a").end()
        tcc.step("run-1").prompt("p").response("r").end()
        tcc.step("run-1").prompt("p").response("r").end()
        errors = []
        for name in ("chat", "nothing"):
            with pytest.raises(LookupError) as raised:
                captured.by_name(name)
            errors.append(str(raised.value))
        assert (captured.by_name("invoke_agent").name, errors) == (
            "invoke_agent",
            [
                "expected one span named 'chat', found 2",
                "expected one span named 'nothing', found 0",
            ],
        )

    def test_clear(self, captured: CapturedSpans) -> None:
        """``clear()`` forgets the spans so far; later ones are captured as before."""
        tcc.run().prompt("before").end()
        captured.clear()
        tcc.step("run-1").prompt("p").response("r").end()
        assert [span.name for span in captured.spans] == ["chat"]

    def test_span_limits_as_exported(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The ``OTEL_SPAN_ATTRIBUTE_*`` limits apply as export applies them: tcc_otel's own
        attributes kept, metadata left out, counted on the span."""
        monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "5")
        with capture() as captured:
            tcc.run(run_id="run-1").prompt("q").metadata(plan="pro", seats=2).end()
        span = captured.by_name("invoke_agent")
        assert (sorted(span.attributes or {}), span.dropped_attributes) == (
            [
                "gen_ai.input.messages",
                "gen_ai.operation.name",
                "tcc.run.user_prompt",
                "tcc.runId",
                "tcc.type",
            ],
            2,
        )


class TestInstrumentedCalls:
    """``capture()`` beside the application's global provider and its GenAI instrumentation."""

    CALL = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 3,
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "Weather?",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "Sunny.",
    }

    def test_calls_are_captured_as_tcc_gets_them(self, team: TeamTracing) -> None:
        """A call on its own is a step; a call inside a step fills it and stays a plain child;
        the run counts both once; the team's own exporter got the call as written."""
        with capture() as captured:
            with tcc.run(run_id="run-c") as run:
                run.prompt("q")
                with team.tracer.start_as_current_span("chat", attributes=self.CALL):
                    pass
                with run.step(), team.tracer.start_as_current_span("chat", attributes=self.CALL):
                    pass
            spans = captured.spans
        steps = [s for s in spans if (s.attributes or {}).get("tcc.type") == "step"]
        assert [(s.attributes or {}).get("tcc.step.prompt") for s in steps] == ["Weather?"] * 2
        (run_span,) = [s for s in spans if (s.attributes or {}).get("tcc.type") == "run"]
        assert (run_span.attributes or {})["gen_ai.usage.input_tokens"] == 24
        inner = [s for s in spans if s.name == "chat" and "tcc.type" not in (s.attributes or {})]
        assert len(inner) == 1
        assert not [k for k in inner[0].attributes or {} if k.startswith("gen_ai.")]
        written = [s for s in team.spans if s.name == "chat"]
        assert all((s.attributes or {})["gen_ai.prompt.0.content"] == "Weather?" for s in written)
