"""Parenting and the active span (README section 2): which span each record nests under, what is
current inside ``with`` blocks, exceptions leaving them, and the same across threads and tasks."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import tcc_otel as tcc
from tcc_otel.testing import CapturedSpans, capture

W3C_TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
W3C_SPAN_ID = 0x00F067AA0BA902B7
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class UserTracing:
    """The application's own tracing: a private TracerProvider with an in-memory exporter."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("user-app")

    @property
    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


@pytest.fixture
def user() -> Iterator[UserTracing]:
    """The user's own TracerProvider, never installed globally."""
    tracing = UserTracing()
    yield tracing
    tracing.provider.shutdown()


def ctx(span: ReadableSpan) -> SpanContext:
    """The span's own context."""
    context = span.get_span_context()
    assert context is not None
    return context


def ids(context: SpanContext | None) -> tuple[int, int] | None:
    """``(trace_id, span_id)`` of a span context, ``None`` for no parent."""
    return None if context is None else (context.trace_id, context.span_id)


def parent_of(span: ReadableSpan) -> tuple[int, int] | None:
    return ids(span.parent)


def self_of(span: ReadableSpan) -> tuple[int, int] | None:
    return ids(ctx(span))


def live_ids(span: trace.Span) -> tuple[int, int]:
    context = span.get_span_context()
    return (context.trace_id, context.span_id)


def traceparent_of(span: trace.Span) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def injected() -> dict[str, str]:
    """The headers ``opentelemetry.propagate.inject`` writes for the current context."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


def run_id_of(span: ReadableSpan) -> object:
    return (span.attributes or {}).get("tcc.runId")


def closed_port() -> int:
    """A loopback port nobody listens on: export attempts there fail at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


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


class TestActiveSpan:
    def test_with_blocks_make_each_record_current(self, captured: CapturedSpans) -> None:
        """Inside each ``with`` block the record's span is the current span, and the previous one
        again after it."""
        seen: list[tuple[int, int]] = []
        expected: list[tuple[int, int]] = []
        with tcc.run() as r:
            r.prompt("hi")
            seen.append(live_ids(trace.get_current_span()))
            expected.append(live_ids(r.span))
            with r.step() as s:
                s.prompt("p").response("r")
                seen.append(live_ids(trace.get_current_span()))
                expected.append(live_ids(s.span))
                with s.tool_call("search") as t:
                    seen.append(live_ids(trace.get_current_span()))
                    expected.append(live_ids(t.span))
                seen.append(live_ids(trace.get_current_span()))
                expected.append(live_ids(s.span))
            with r.tool_call("lookup") as t2:
                seen.append(live_ids(trace.get_current_span()))
                expected.append(live_ids(t2.span))
            seen.append(live_ids(trace.get_current_span()))
            expected.append(live_ids(r.span))
        assert (seen, trace.get_current_span() is trace.INVALID_SPAN) == (expected, True)

    def test_inject_writes_the_records_traceparent(self, captured: CapturedSpans) -> None:
        """``inject`` inside a ``with`` block writes the traceparent of that block's record."""
        headers: list[dict[str, str]] = []
        expected: list[dict[str, str]] = []
        with tcc.run() as r:
            r.prompt("hi")
            headers.append(injected())
            expected.append({"traceparent": traceparent_of(r.span)})
            with r.step() as s:
                s.prompt("p").response("r")
                headers.append(injected())
                expected.append({"traceparent": traceparent_of(s.span)})
            with r.tool_call("search") as t:
                headers.append(injected())
                expected.append({"traceparent": traceparent_of(t.span)})
        assert headers == expected

    def test_user_spans_nest_under_the_record(
        self, captured: CapturedSpans, user: UserTracing
    ) -> None:
        """A span the user starts inside ``with r.step()`` is the step's child."""
        with tcc.run() as r:
            r.prompt("hi")
            with user.tracer.start_as_current_span("in-run"):
                pass
            with r.step() as s:
                s.prompt("p").response("r")
                with user.tracer.start_as_current_span("in-step"):
                    pass
        assert {span.name: parent_of(span) for span in user.spans} == {
            "in-run": self_of(captured.by_name("invoke_agent")),
            "in-step": self_of(captured.by_name("chat")),
        }

    def test_records_without_with_are_not_current(
        self, captured: CapturedSpans, user: UserTracing
    ) -> None:
        """Records created without ``with`` nest under the active span but do not replace it."""
        with user.tracer.start_as_current_span("request") as request:
            r = tcc.run().prompt("hi")
            s = r.step().prompt("p").response("r")
            t = r.tool_call("search")
            current = trace.get_current_span()
            t.end()
            s.end()
            r.end()
        assert current is request


class TestExceptions:
    def test_exception_marks_error_and_propagates(self, captured: CapturedSpans) -> None:
        """An exception leaving ``with`` ends every record as ERROR with an ``exception`` event,
        and reaches the caller unchanged."""
        boom = LookupError("no such city")

        def agent() -> None:
            with tcc.run() as r:
                r.prompt("hi")
                with r.step():
                    raise boom

        with pytest.raises(LookupError) as raised:
            agent()
        assert raised.value is boom
        assert [
            (
                span.name,
                span.status.status_code,
                span.status.description,
                [
                    (
                        event.name,
                        dict(event.attributes or {}).get("exception.type"),
                        dict(event.attributes or {}).get("exception.message"),
                    )
                    for event in span.events
                ],
            )
            for span in captured.spans
        ] == [
            (
                "chat",
                StatusCode.ERROR,
                "LookupError: no such city",
                [("exception", "LookupError", "no such city")],
            ),
            (
                "invoke_agent",
                StatusCode.ERROR,
                "LookupError: no such city",
                [("exception", "LookupError", "no such city")],
            ),
        ]

    def test_context_is_restored_after_an_exception(self, captured: CapturedSpans) -> None:
        """After an exception leaves the ``with`` blocks no record's span stays current."""
        with pytest.raises(RuntimeError), tcc.run() as r, r.step():
            raise RuntimeError("boom")
        assert trace.get_current_span() is trace.INVALID_SPAN

    def test_keyboard_interrupt_still_ends_the_span(self, captured: CapturedSpans) -> None:
        """A BaseException such as KeyboardInterrupt still ends the spans (as errors) and
        propagates."""

        def agent() -> None:
            with tcc.run() as r:
                r.prompt("hi")
                with r.tool_call("search"):
                    raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            agent()
        assert [
            (span.name, span.status.status_code, (span.attributes or {}).get("error.type"))
            for span in captured.spans
        ] == [
            ("execute_tool search", StatusCode.ERROR, "KeyboardInterrupt"),
            ("invoke_agent", StatusCode.ERROR, "KeyboardInterrupt"),
        ]

    def test_clean_exit_without_required_field(self, captured: CapturedSpans) -> None:
        """A clean exit from ``with`` without a required field ends the span as error and raises
        ValueError naming the missing call."""
        with pytest.raises(ValueError, match=r"needs run\.prompt") as raised, tcc.run() as r:
            r.metadata(plan="pro")
        message = "Run.end() needs run.prompt(...) first (or call Run.error() to end it as failed)."
        span = captured.by_name("invoke_agent")
        assert (
            str(raised.value),
            r.ended,
            span.status.status_code,
            span.status.description,
            (span.attributes or {}).get("error.type"),
        ) == (message, True, StatusCode.ERROR, message, "ValueError")

    def test_end_inside_with_is_not_repeated(self, captured: CapturedSpans) -> None:
        """A record ended inside its ``with`` block is not ended again on exit."""
        with tcc.run() as r:
            r.prompt("hi")
            with r.step() as s:
                s.error("model overloaded")
            r.end()
        assert [(span.name, span.status.status_code) for span in captured.spans] == [
            ("chat", StatusCode.ERROR),
            ("invoke_agent", StatusCode.UNSET),
        ]


class TestStepsByRunId:
    def test_open_run_gives_the_same_parent(self, captured: CapturedSpans) -> None:
        """``tcc.step``/``tcc.tool_call`` with an open run's id nest exactly like ``r.step()``."""
        r = tcc.run().prompt("hi")
        r.step(step_id="a").prompt("p").response("r").end()
        tcc.step(run_id=r.run_id, step_id="b").prompt("p").response("r").end()
        tcc.tool_call(r.run_id, tool_name="search").end()
        r.end()
        run = captured.by_name("invoke_agent")
        assert [(span.name, parent_of(span), run_id_of(span)) for span in captured.spans] == [
            ("chat", self_of(run), r.run_id),
            ("chat", self_of(run), r.run_id),
            ("execute_tool search", self_of(run), r.run_id),
            ("invoke_agent", None, r.run_id),
        ]

    def test_ended_run_is_still_the_parent(
        self, captured: CapturedSpans, user: UserTracing
    ) -> None:
        """With the id of a run that already ended, the step is still that run's child, even
        under another active span."""
        r = tcc.run().prompt("hi")
        r.end()
        with user.tracer.start_as_current_span("later"):
            tcc.step(run_id=r.run_id).prompt("p").response("r").end()
            tcc.tool_call(r.run_id, tool_name="search").end()
        run = captured.by_name("invoke_agent")
        assert [(span.name, parent_of(span), run_id_of(span)) for span in captured.spans] == [
            ("invoke_agent", None, r.run_id),
            ("chat", self_of(run), r.run_id),
            ("execute_tool search", self_of(run), r.run_id),
        ]

    def test_unknown_run_is_parented_to_the_active_span(
        self, captured: CapturedSpans, user: UserTracing
    ) -> None:
        """With a run id this process does not know, the record is stamped with it and parented
        to the active span."""
        with user.tracer.start_as_current_span("handler") as handler:
            tcc.step(run_id="remote-run").prompt("p").response("r").end()
            tcc.tool_call("remote-run", tool_name="search").end()
        expected_parent = live_ids(handler)
        assert [(span.name, parent_of(span), run_id_of(span)) for span in captured.spans] == [
            ("chat", expected_parent, "remote-run"),
            ("execute_tool search", expected_parent, "remote-run"),
        ]

    def test_unknown_run_without_active_span_is_a_root(self, captured: CapturedSpans) -> None:
        """With an unknown run id and no active span, the step is a root span stamped with the
        id."""
        tcc.step(run_id="remote-run").prompt("p").response("r").end()
        assert [(parent_of(span), run_id_of(span)) for span in captured.spans] == [
            (None, "remote-run")
        ]


def _agent_in_thread(index: int, barrier: threading.Barrier, errors: list[BaseException]) -> None:
    try:
        barrier.wait(timeout=10)
        with tcc.run(run_id=f"thread-run-{index}") as r:
            r.prompt(f"prompt {index}")
            for number in range(3):
                with r.step(step_id=f"thread-{index}-step-{number}") as s:
                    s.prompt("p").response("r").tokens(prompt_uncached=1, completion=1)
                    s.tool_call("search", tool_call_id=f"thread-{index}-call-{number}").end()
            tcc.step(r.run_id, step_id=f"thread-{index}-step-x").prompt("p").response("r").end()
    except BaseException as exc:  # reported by the test, in the main thread
        errors.append(exc)


async def _agent_in_task(index: int, user: UserTracing) -> None:
    async with tcc.run(run_id=f"task-run-{index}") as r:
        r.prompt(f"prompt {index}")
        await asyncio.sleep(0)
        for number in range(3):
            async with r.step(step_id=f"task-{index}-step-{number}") as s:
                await asyncio.sleep(0)
                assert trace.get_current_span() is s.span
                with user.tracer.start_as_current_span(f"task-{index}-user-{number}"):
                    await asyncio.sleep(0)
                s.prompt("p").response("r")
            await asyncio.sleep(0)
            assert trace.get_current_span() is r.span
        async with tcc.tool_call(r.run_id, tool_call_id=f"task-{index}-call") as t:
            t.name("search")
            await asyncio.sleep(0)


class TestConcurrency:
    THREADS = 24
    TASKS = 12

    def test_threads_each_with_their_own_run(self, captured: CapturedSpans) -> None:
        """Runs recorded from many threads at once each keep their own steps and tool calls."""
        barrier = threading.Barrier(self.THREADS)
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=_agent_in_thread, args=(index, barrier, errors))
            for index in range(self.THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        spans = captured.spans
        runs = {run_id_of(span): span for span in spans if span.name == "invoke_agent"}
        steps = {self_of(span): span for span in spans if span.name == "chat"}

        def placement(span: ReadableSpan) -> tuple[str, str, str]:
            run_id = run_id_of(span)
            parent = parent_of(span)
            if parent == self_of(runs[run_id]):
                where = "under its run"
            elif parent in steps and run_id_of(steps[parent]) == run_id:
                where = "under a step of its run"
            else:
                where = f"elsewhere: {parent}"
            return (str(run_id), span.name, where)

        assert sorted(placement(span) for span in spans if span.name != "invoke_agent") == sorted(
            [(f"thread-run-{i}", "chat", "under its run") for i in range(self.THREADS)] * 4
            + [
                (f"thread-run-{i}", "execute_tool search", "under a step of its run")
                for i in range(self.THREADS)
            ]
            * 3
        )
        assert [
            ((span.attributes or {}).get("gen_ai.usage.input_tokens"), parent_of(span))
            for span in runs.values()
        ] == [(3, None)] * self.THREADS

    def test_asyncio_tasks_each_with_their_own_run(
        self, captured: CapturedSpans, user: UserTracing
    ) -> None:
        """Concurrent asyncio tasks using ``async with`` each nest their steps, tool calls and
        user spans under their own run."""

        async def main() -> None:
            await asyncio.gather(*(_agent_in_task(index, user) for index in range(self.TASKS)))

        asyncio.run(main())
        spans = captured.spans
        runs = {run_id_of(span): span for span in spans if span.name == "invoke_agent"}
        steps = {
            (span.attributes or {}).get("tcc.stepId"): span for span in spans if span.name == "chat"
        }
        assert sorted(
            (str(run_id_of(span)), span.name, parent_of(span) == self_of(runs[run_id_of(span)]))
            for span in spans
            if span.name != "invoke_agent"
        ) == sorted(
            [(f"task-run-{i}", "chat", True) for i in range(self.TASKS) for _ in range(3)]
            + [(f"task-run-{i}", "execute_tool search", True) for i in range(self.TASKS)]
        )
        assert sorted(
            (span.name, parent_of(span) == self_of(steps[span.name.replace("user", "step")]))
            for span in user.spans
        ) == sorted((f"task-{i}-user-{n}", True) for i in range(self.TASKS) for n in range(3))
        assert [parent_of(span) for span in runs.values()] == [None] * self.TASKS


class TestPerRunDestination:
    def test_run_with_its_own_key_and_url_is_recorded(self) -> None:
        """A run with its own ``api_key``/``tcc_url`` is still recorded into the configured
        provider, with its steps as its children."""
        with capture(base_url=f"http://127.0.0.1:{closed_port()}") as spans:
            r = tcc.run(api_key="other-key", tcc_url=f"http://127.0.0.1:{closed_port()}")
            r.prompt("hi")
            r.step().prompt("p").response("r").end()
            r.end()
            keyed = tcc.run(api_key="other-key").prompt("hi")
            keyed.end()
            recorded = spans.spans
        run = next((span for span in recorded if span.name == "invoke_agent"), None)
        assert [(span.name, run_id_of(span)) for span in recorded] == [
            ("chat", r.run_id),
            ("invoke_agent", r.run_id),
            ("invoke_agent", keyed.run_id),
        ]
        assert run is not None
        assert parent_of(recorded[0]) == self_of(run)
