"""Record, the base of Run, Step and ToolCall (tcc_otel/_records/_record.py): ids, required
fields, misuse after the end, ``with`` blocks that make a record current and record an
exception leaving them; no lock, yet ended exactly once and handed to export as a copy, whatever
threads or tasks race on it."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from helpers.clients import fresh_client
from helpers.delivery import HANG_GUARD
from helpers.records import attributes, new_run, new_step, new_tool_call, only, step_attrs, typed
from helpers.tracing import (
    UserTracing,
    injected,
    live_ids,
    parent_of,
    run_id_of,
    self_of,
    traceparent_of,
)
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

import tcc_otel as tcc
from tcc_otel._local._server import Receiver
from tcc_otel.testing import CapturedSpans


def race(calls: int, target: object) -> list[BaseException | None]:
    """Run ``target()`` from ``calls`` threads released together; what each one raised."""
    start = threading.Barrier(calls)
    results: list[BaseException | None] = [None] * calls

    def one(index: int) -> None:
        start.wait()
        try:
            target()  # type: ignore[operator]
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


class TestEndsOnce:
    """Concurrent ends: one wins, the others are told the record already ended."""

    @pytest.mark.parametrize("method", ["end", "error"])
    def test_concurrent_ends(self, captured: CapturedSpans, method: str) -> None:
        """Of 8 threads ending one step at once, exactly one succeeds; the rest get the
        'already ended' RuntimeError, and the step is recorded once."""
        for _ in range(20):
            r = tcc.run().prompt("q")
            s = r.step().prompt("p").response("a")
            results = race(8, getattr(s, method))
            assert results.count(None) == 1
            assert all(
                isinstance(e, RuntimeError) and "already ended" in str(e)
                for e in results
                if e is not None
            )
            r.end()
        assert len([x for x in captured.spans if x.name.startswith("chat")]) == 20

    def test_with_block_and_end_race(self, captured: CapturedSpans) -> None:
        """A ``with`` block exiting while another thread ends the record ends it once."""
        for _ in range(20):
            r = tcc.run().prompt("q")
            s = r.step().prompt("p").response("a")
            with s:
                results = race(4, s.end)
            assert results.count(None) == 1
            r.end()
        assert len([x for x in captured.spans if x.name.startswith("chat")]) == 20


class TestHandedOver:
    """What export receives does not change after end()."""

    def test_snapshot_is_a_copy(self) -> None:
        """In the default mode, a setter that slipped past the ended check (simulated) cannot
        change what was handed to export."""
        with Receiver("127.0.0.1", 0) as receiver, fresh_client():
            tcc.configure(base_url=receiver.url)
            r = tcc.run().prompt("the prompt")
            r.end()
            r._fields["tcc.run.user_prompt"] = "changed afterwards"
            assert tcc.flush(HANG_GUARD)
            [span] = receiver.spans
        assert span.attributes["tcc.run.user_prompt"] == "the prompt"


class TestIds:
    def test_run_id_defaults_to_uuid4(self, captured: CapturedSpans) -> None:
        """A run without ``run_id`` gets a UUID4 string, stamped on its span."""
        r = tcc.run()
        r.prompt("hi").end()
        assert (uuid.UUID(r.run_id).version, attributes(only(captured))["tcc.runId"]) == (
            4,
            r.run_id,
        )

    def test_step_and_tool_call_ids_default_to_uuid4(self, captured: CapturedSpans) -> None:
        """Steps and tool calls without ids get UUID4 strings, stamped on their spans."""
        r = tcc.run()
        s = r.step()
        t = r.tool_call("search")
        s.prompt("p").response("r").end()
        t.end()
        step_span, tool_span = captured.spans
        assert (
            uuid.UUID(s.step_id).version,
            uuid.UUID(t.tool_call_id).version,
            attributes(step_span)["tcc.stepId"],
            attributes(tool_span)["tcc.toolCallId"],
        ) == (4, 4, s.step_id, t.tool_call_id)

    def test_given_ids_are_kept(self, captured: CapturedSpans) -> None:
        """Ids passed in are used as they are, and every record knows its run's id."""
        r = tcc.run(run_id="run-7")
        s = r.step(step_id="step-7")
        t = tcc.tool_call(r.run_id, tool_call_id="call-7", tool_name="search")
        assert [r.run_id, s.run_id, s.step_id, t.run_id, t.tool_call_id] == [
            "run-7",
            "run-7",
            "step-7",
            "run-7",
            "call-7",
        ]


class TestRequiredFields:
    @pytest.mark.parametrize(
        ("make", "message"),
        [
            pytest.param(
                lambda: tcc.run(),
                "Run.end() needs run.prompt(...) first (or call Run.error() to end it as failed).",
                id="run",
            ),
            pytest.param(
                lambda: tcc.step("run-1"),
                "Step.end() needs step.prompt(...) and step.response(...) first "
                "(or call Step.error() to end it as failed).",
                id="step",
            ),
            pytest.param(
                lambda: tcc.step("run-1").response("r"),
                "Step.end() needs step.prompt(...) first "
                "(or call Step.error() to end it as failed).",
                id="step-without-prompt",
            ),
            pytest.param(
                lambda: tcc.step("run-1").prompt("p"),
                "Step.end() needs step.response(...) first "
                "(or call Step.error() to end it as failed).",
                id="step-without-response",
            ),
            pytest.param(
                lambda: tcc.tool_call("run-1"),
                "ToolCall.end() needs tool_call.name(...) first "
                "(or call ToolCall.error() to end it as failed).",
                id="tool_call",
            ),
        ],
    )
    def test_end_without_required_field(
        self, captured: CapturedSpans, make: Callable[[], Any], message: str
    ) -> None:
        """``end()`` without a required field raises ValueError naming the missing call, and
        records nothing."""
        record = make()
        with pytest.raises(ValueError, match=r"\.end\(\) needs ") as raised:
            record.end()
        assert (str(raised.value), record.ended, captured.spans) == (message, False, [])

    def test_record_stays_open_after_the_value_error(self, captured: CapturedSpans) -> None:
        """After that ValueError the caller can add the missing field and end normally."""
        s = tcc.step("run-1", step_id="step-1").prompt("p")
        with pytest.raises(ValueError, match=re.escape("step.response(...)")):
            s.end()
        s.response("r").end()
        assert typed(attributes(only(captured))) == typed(step_attrs())

    @pytest.mark.parametrize(
        "make",
        [
            pytest.param(lambda: tcc.run(), id="run"),
            pytest.param(lambda: tcc.step("run-1"), id="step"),
            pytest.param(lambda: tcc.tool_call("run-1"), id="tool_call"),
        ],
    )
    def test_error_needs_no_field(self, captured: CapturedSpans, make: Callable[[], Any]) -> None:
        """``error()`` ends a record that has no required field set."""
        record = make()
        record.error("failed")
        assert (record.ended, [s.status.status_code for s in captured.spans]) == (
            True,
            [StatusCode.ERROR],
        )

    def test_failed_step_does_not_fail_the_run(self, captured: CapturedSpans) -> None:
        """A run whose step failed still ends successfully."""
        r = tcc.run().prompt("hi")
        r.step().error("model overloaded")
        r.tool_call("search").error("tool timed out")
        r.end()
        assert [(s.name, s.status.status_code) for s in captured.spans] == [
            ("chat", StatusCode.ERROR),
            ("execute_tool search", StatusCode.ERROR),
            ("invoke_agent", StatusCode.UNSET),
        ]


class TestUseAfterEnd:
    @pytest.mark.parametrize("ending", ["end", "error"])
    @pytest.mark.parametrize(
        ("make", "call", "message"),
        [
            pytest.param(
                new_run,
                lambda r: r.prompt("again"),
                "Run.prompt() was called after the run already ended; "
                "set every field before Run.end() or Run.error().",
                id="run.prompt",
            ),
            pytest.param(
                new_run,
                lambda r: r.response("late"),
                "Run.response() was called after the run already ended; "
                "set every field before Run.end() or Run.error().",
                id="run.response",
            ),
            pytest.param(
                new_run,
                lambda r: r.metadata(plan="pro"),
                "Run.metadata() was called after the run already ended; "
                "set every field before Run.end() or Run.error().",
                id="run.metadata",
            ),
            pytest.param(
                new_run,
                lambda r: r.status(0),
                "Run.status() was called after the run already ended; "
                "set every field before Run.end() or Run.error().",
                id="run.status",
            ),
            pytest.param(
                new_step,
                lambda s: s.model(used="m"),
                "Step.model() was called after the step already ended; "
                "set every field before Step.end() or Step.error().",
                id="step.model",
            ),
            pytest.param(
                new_step,
                lambda s: s.tokens(completion=1),
                "Step.tokens() was called after the step already ended; "
                "set every field before Step.end() or Step.error().",
                id="step.tokens",
            ),
            pytest.param(
                new_step,
                lambda s: s.cost(0.1),
                "Step.cost() was called after the step already ended; "
                "set every field before Step.end() or Step.error().",
                id="step.cost",
            ),
            pytest.param(
                new_step,
                lambda s: s.finish_reason("stop"),
                "Step.finish_reason() was called after the step already ended; "
                "set every field before Step.end() or Step.error().",
                id="step.finish_reason",
            ),
            pytest.param(
                new_step,
                lambda s: s.tool_definitions([]),
                "Step.tool_definitions() was called after the step already ended; "
                "set every field before Step.end() or Step.error().",
                id="step.tool_definitions",
            ),
            pytest.param(
                new_tool_call,
                lambda t: t.args({"q": 1}),
                "ToolCall.args() was called after the toolcall already ended; "
                "set every field before ToolCall.end() or ToolCall.error().",
                id="tool_call.args",
            ),
            pytest.param(
                new_tool_call,
                lambda t: t.result("r"),
                "ToolCall.result() was called after the toolcall already ended; "
                "set every field before ToolCall.end() or ToolCall.error().",
                id="tool_call.result",
            ),
        ],
    )
    def test_setter_after_end_raises(
        self,
        captured: CapturedSpans,
        ending: str,
        make: Callable[[], Any],
        call: Callable[[Any], object],
        message: str,
    ) -> None:
        """A setter called after ``end()``/``error()`` raises RuntimeError naming the method, and
        the recorded span is unchanged."""
        record = make()
        getattr(record, ending)()
        before = attributes(only(captured))
        with pytest.raises(RuntimeError) as raised:
            call(record)
        assert (str(raised.value), attributes(only(captured))) == (message, before)

    @pytest.mark.parametrize(
        ("make", "name"),
        [
            pytest.param(new_run, "Run", id="run"),
            pytest.param(new_step, "Step", id="step"),
            pytest.param(new_tool_call, "ToolCall", id="tool_call"),
        ],
    )
    @pytest.mark.parametrize("first", ["end", "error"])
    @pytest.mark.parametrize("second", ["end", "error"])
    def test_second_ending_raises(
        self,
        captured: CapturedSpans,
        make: Callable[[], Any],
        name: str,
        first: str,
        second: str,
    ) -> None:
        """A second ``end()``/``error()`` raises RuntimeError saying the record already ended, and
        the span is recorded once."""
        record = make()
        getattr(record, first)()
        with pytest.raises(RuntimeError) as raised:
            getattr(record, second)()
        assert (str(raised.value), len(captured.spans)) == (
            f"{name}.{second}() was called after the {name.lower()} already ended; "
            f"set every field before {name}.end() or {name}.error().",
            1,
        )


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
