"""The encoding helper processes (``_offload.Offload``) and the pipeline that uses them: when
they start and end, runs recorded through ``tcc`` arriving exactly once and as they arrive when
encoded in this process, a helper's death in a burst, spans they cannot take, a fork, and the
setting.

Every export goes to a real loopback receiver that keeps duplicates; helpers are waited for by
recording runs until the export thread sees them ready, never by a timing threshold."""

from __future__ import annotations

import enum
import json
import marshal
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

import pytest
from _fault_server import FaultServer
from helpers.clients import fresh_client, messages
from helpers.delivery import (
    HANG_GUARD,
    SPANS_PER_RUN,
    SpanId,
    counters,
    record_run,
    request_ids,
    span_id,
    wait_until,
)
from helpers.team import TeamTracing
from opentelemetry import trace
from opentelemetry.trace import SpanKind

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel._export import _offload
from tcc_otel._export._encode import Row, SpanLimitValues, encode_row, row
from tcc_otel._export._offload import (
    IDLE_AFTER,
    START_AT,
    USE_FROM,
    Offload,
    default_processes,
    supported,
)
from tcc_otel._export._offload_serve import Answer, write_frame
from tcc_otel._local._model import ReceivedSpan
from tcc_otel._local._server import Receiver
from tcc_otel._records._span import LightSpan

pytestmark = pytest.mark.skipif(not supported(), reason="the helper process needs POSIX CPython")

KEY = "test-key-123"
LIMITS: SpanLimitValues = (128, None)
RUNS = 300
"""Runs of a burst: 1,800 spans, at most 256 to a frame, so always several frames."""
CONTENT = " and some content " + "c" * 200
IDS = frozenset({"tcc.runId", "tcc.stepId", "tcc.toolCallId", "gen_ai.tool.call.id"})
"""Attributes whose values are new ids at every recording."""
FAILED = "tcc_otel's encoding helper process failed: "


# --- spies and helpers -----------------------------------------------------------------------


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """Every process ``Offload`` starts during the test, in order."""
    made: list[subprocess.Popen[bytes]] = []
    real = subprocess.Popen

    def spy(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = real(*args, **kwargs)
        made.append(proc)
        return proc

    monkeypatch.setattr(subprocess, "Popen", spy)  # the module _offload starts it with
    return made


@pytest.fixture
def offloads() -> Iterator[list[Offload]]:
    """Offloads a test makes, closed in teardown."""
    made: list[Offload] = []
    yield made
    for offload in made:
        offload.close(HANG_GUARD)


class Sends:
    """A spy on ``Offload.send``: each call's row count and whether the helpers took the rows.
    ``then`` runs after each call, on the export thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []
        self.then: Callable[[], None] = lambda: None
        self._lock = threading.Lock()

    def wrap(self, real: Callable[[Offload, list[Row]], bool]) -> Callable[..., bool]:
        """``real`` with the spy around it."""

        def send(offload: Offload, rows: list[Row]) -> bool:
            taken = real(offload, rows)
            with self._lock:
                self.calls.append((len(rows), taken))
            self.then()
            return taken

        return send

    def rows_taken(self) -> int:
        """Rows the helpers took so far."""
        with self._lock:
            return sum(rows for rows, taken in self.calls if taken)

    def frames_taken(self) -> int:
        """Frames the helpers took so far."""
        with self._lock:
            return sum(1 for _, taken in self.calls if taken)


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> Sends:
    """``Offload.send`` spied on for the test."""
    spy = Sends()
    monkeypatch.setattr(Offload, "send", spy.wrap(Offload.send))
    return spy


def offload_of(client: Client) -> Offload:
    """The helper processes (``Offload``) of ``client``'s default pipeline."""
    sink = client.pipeline().sink
    assert sink is not None
    return sink._offload


def start_helpers(client: Client, ended: list[SpanId]) -> list[int]:
    """Record runs (their ids go to ``ended``) until every helper of the pipeline is up:
    ``on`` starts them at the first export, and the export thread sees them ready at later
    ones. Their pids."""
    offload = offload_of(client)

    def up() -> bool:
        ended.extend(record_run(len(ended), content=" while starting"))
        return len(offload.pids) == default_processes()

    assert wait_until(up), "the helper processes were not ready within the hang guard"
    return offload.pids


def running(pid: int) -> bool:
    """Whether our child ``pid`` is still running (it is not reaped if it is)."""
    return os.waitpid(pid, os.WNOHANG) == (0, 0)


def reaped(pid: int) -> bool:
    """Whether our child ``pid`` has ended and been waited for (no zombie left)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def keys(receiver: Receiver) -> list[SpanId]:
    """``(trace_id, span_id)`` of every span ``receiver`` accepted, sorted; duplicates stay."""
    return sorted(span.key for span in receiver.spans)


def described(span: ReceivedSpan) -> tuple[object, ...]:
    """A received span without what differs from one recording to the next: ids, times."""
    attributes = sorted((k, v) for k, v in span.attributes.items() if k not in IDS)
    return (
        span.name,
        span.kind,
        span.status_code,
        span.status_message,
        span.parent_span_id is None,
        attributes,
        span.events,
    )


# --- Offload on its own ------------------------------------------------------------------------


class TestStartAndEnd:
    """When ``Offload`` starts its processes, and that ``close()`` ends them."""

    def test_on_starts_a_helper_that_close_ends(
        self, spawned: list[subprocess.Popen[bytes]], offloads: list[Offload]
    ) -> None:
        """``on``: the first ``usable()`` starts the helper; once ``usable()`` says yes, its
        ``pids`` are that process, running; ``close()`` ends it (its input closes: status 0)
        and waits for it."""
        offload = Offload(LIMITS, "on", processes=1)
        offloads.append(offload)
        assert offload.usable(0) is False
        assert wait_until(lambda: offload.usable(0))
        (pid,) = offload.pids
        assert ([proc.pid for proc in spawned], running(pid)) == ([pid], True)
        offload.close(HANG_GUARD)
        assert (offload.pids, spawned[0].returncode, reaped(pid)) == ([], 0, True)

    def test_on_starts_every_process_asked_for(
        self, spawned: list[subprocess.Popen[bytes]], offloads: list[Offload]
    ) -> None:
        """``on`` with three processes: all three start, each says it is ready, and
        ``close()`` ends every one of them."""
        offload = Offload(LIMITS, "on", processes=3)
        offloads.append(offload)
        offload.usable(0)
        assert wait_until(lambda: offload.usable(0) and offload.ready == 3)
        pids = sorted(offload.pids)
        assert (sorted(proc.pid for proc in spawned), [running(p) for p in pids]) == (
            pids,
            [True] * 3,
        )
        offload.close(HANG_GUARD)
        assert ([proc.returncode for proc in spawned], [reaped(p) for p in pids]) == (
            [0] * 3,
            [True] * 3,
        )

    def test_off_never_starts_one(
        self, spawned: list[subprocess.Popen[bytes]], offloads: list[Offload]
    ) -> None:
        """``off``: no backlog, however large, starts a process."""
        offload = Offload(LIMITS, "off")
        offloads.append(offload)
        answers = [offload.usable(backlog) for backlog in (0, START_AT, 100 * START_AT)]
        assert (answers, spawned, offload.pids) == ([False] * 3, [], [])

    def test_auto_starts_one_at_start_at(
        self, spawned: list[subprocess.Popen[bytes]], offloads: list[Offload]
    ) -> None:
        """``auto``: a backlog below ``START_AT`` starts nothing; one at ``START_AT`` starts
        the helper (without waiting for it), which is then used from ``USE_FROM`` spans
        waiting: fewer are encoded here."""
        offload = Offload(LIMITS, "auto", processes=1)
        offloads.append(offload)
        below = [offload.usable(backlog) for backlog in (0, START_AT - 1)]
        assert (below, spawned) == ([False, False], [])
        assert (offload.usable(START_AT), len(spawned)) == (False, 1)
        assert wait_until(lambda: offload.usable(USE_FROM))
        (pid,) = offload.pids
        assert (pid, len(spawned), running(pid)) == (spawned[0].pid, 1, True)
        assert [offload.usable(b) for b in (0, USE_FROM - 1, USE_FROM)] == [False, False, True]


def ready_offload(offloads: list[Offload]) -> Offload:
    """An ``on`` Offload of one process, up and ready; closed in teardown."""
    offload = Offload(LIMITS, "on", processes=1)
    offloads.append(offload)
    assert wait_until(lambda: offload.usable(0))
    return offload


def plain_rows(count: int) -> list[Row]:
    """Rows of ``count`` ended spans with no record behind them."""
    spans = [LightSpan(f"s{n}", SpanKind.INTERNAL, None, {"n": n}, "r", None) for n in range(count)]
    for span in spans:
        span.end()
    return [row(span) for span in spans]


class TestFrames:
    def test_rows_past_the_bound_split_in_order(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Rows holding more than ``FRAME_BYTES`` become several frames, in order, each within
        the bound unless one row alone is larger; together they are the rows."""
        monkeypatch.setattr(_offload, "FRAME_BYTES", 1000)
        rows: list[Row] = [(n, "x" * 300) for n in range(8)] + [(8, "y" * 5000)]
        frames = _offload._frames(rows)
        assert [row for frame in frames for row in marshal.loads(frame)] == rows
        assert len(frames) > 1
        assert [len(f) <= 1000 for f in frames[:-1]] == [True] * (len(frames) - 1)

    def test_answers_join_with_their_notes_moved(self) -> None:
        """The answers to consecutive frames join as one: lengths in order, each note at its
        row's place among all the rows, the blobs one after the other."""
        cut = ((1, 0, 2), "step")
        answers = [Answer([1, -1], {1: "TypeError: no"}, b"a"), Answer([2], {0: cut}, b"bc")]
        assert _offload._joined(answers) == Answer([1, -1, 2], {1: "TypeError: no", 2: cut}, b"abc")


class TestFailureAndIdle:
    """What lets the helpers go: a failure (started again later, three at most), a wrong
    answer, and a minute without work."""

    def test_failure_lets_the_helpers_go_until_later(
        self,
        spawned: list[subprocess.Popen[bytes]],
        offloads: list[Offload],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """``fail()`` ends and reaps the helpers with one warning saying why; they are not
        started again before the retry delay, whatever the backlog."""
        offload = ready_offload(offloads)
        (pid,) = offload.pids
        offload.fail("on purpose")
        assert (offload.pids, reaped(pid)) == ([], True)
        assert [offload.usable(b) for b in (0, START_AT)] == [False, False]
        assert len(spawned) == 1
        assert messages(caplog.records) == [
            FAILED + "on purpose; spans are encoded in this process (none lost), the helper is "
            "tried again later"
        ]

    def test_third_failure_is_the_last(
        self,
        spawned: list[subprocess.Popen[bytes]],
        offloads: list[Offload],
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """With no retry delay, a helper is started again after each of the first two
        failures; after the third none is, and its warning says so."""
        monkeypatch.setattr(_offload, "_RETRY_AFTER", 0.0)
        offload = Offload(LIMITS, "on", processes=1)
        offloads.append(offload)
        for attempt in range(3):
            assert wait_until(lambda: offload.usable(0)), f"attempt {attempt} did not start"
            offload.fail(f"failure {attempt}")
        assert [offload.usable(b) for b in (0, START_AT)] == [False, False]
        assert (len(spawned), [reaped(proc.pid) for proc in spawned]) == (3, [True] * 3)
        assert [line.split("; ")[-1] for line in messages(caplog.records)] == [
            "spans are encoded in this process (none lost), the helper is tried again later",
        ] * 2 + ["spans are encoded in this process (none lost), the helper is not tried again"]

    def test_a_helper_that_never_says_hello(
        self,
        offloads: list[Offload],
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Of two helpers, the first ends without its hello: asking whether the helpers are
        usable lets both go with one warning, and returns ``False`` instead of raising."""
        real, started = subprocess.Popen, [0]

        def mute_first(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
            started[0] += 1
            if started[0] == 1:
                args = [args[0], "-c", "pass"]  # ends at once, says nothing
            proc: subprocess.Popen[bytes] = real(args, **kwargs)
            return proc

        monkeypatch.setattr(subprocess, "Popen", mute_first)
        offload = Offload(LIMITS, "on", processes=2)
        offloads.append(offload)
        assert offload.usable(0) is False  # starts them
        assert wait_until(lambda: not offload.usable(0) and caplog.records != [])
        assert (offload.pids, offload.ready) == ([], 0)
        assert messages(caplog.records) == [
            FAILED + "it did not start (exit status 0); spans are encoded in this process "
            "(none lost), the helper is tried again later"
        ]

    def test_answer_for_the_wrong_number_of_rows(
        self, offloads: list[Offload], caplog: pytest.LogCaptureFixture
    ) -> None:
        """``receive()`` returns the answer ``encode_row`` gives here when it holds as many
        spans as the frame had rows; one that holds another number fails the helpers
        (``None``, a warning saying so)."""
        offload = ready_offload(offloads)
        rows = plain_rows(2)
        bodies = [encode_row(plain, LIMITS)[0] for plain in rows]
        assert (offload.send(rows), offload.send(rows)) == (True, True)
        assert offload.receive(2) == Answer([len(body) for body in bodies], {}, b"".join(bodies))
        assert (offload.receive(3), offload.pids) == (None, [])
        assert [line.split("; ")[0] for line in messages(caplog.records)] == [
            FAILED + "it answered 2 spans for 3"
        ]

    def test_idle_helpers_are_let_go_and_start_again(
        self,
        spawned: list[subprocess.Popen[bytes]],
        offloads: list[Offload],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Helpers are let go once ``IDLE_AFTER`` seconds passed without a frame, not while a
        frame's answer is owed; that is no failure: no warning, and the next ``usable()``
        starts them again."""
        offload = ready_offload(offloads)
        (pid,) = offload.pids
        offload.release_idle(time.monotonic())
        assert offload.pids == [pid]
        assert offload.send(plain_rows(1))
        later = time.monotonic() + IDLE_AFTER + 1
        offload.release_idle(later)
        assert offload.pids == [pid], "let go with an answer owed"
        assert offload.receive(1) is not None
        offload.release_idle(later)
        assert (offload.pids, reaped(pid), messages(caplog.records)) == ([], True, [])
        assert wait_until(lambda: offload.usable(0))
        assert (len(spawned), offload.pids) == (2, [spawned[1].pid])


# --- the pipeline with it, through tcc ---------------------------------------------------------


class TestThroughTcc:
    """Runs recorded with the public API, with ``encode_process="on"``."""

    def test_runs_arrive_once_as_when_encoded_here(self, sends: Sends) -> None:
        """A burst of 300 runs with steps and tool calls goes through the helpers (every one
        of its 1,800 spans is taken by them), arrives exactly once, and arrives as the same
        runs arrive with ``encode_process="off"`` (names, kinds, statuses, attributes and
        events; ids and times aside). Stats match; shutdown ends the helpers."""
        with Receiver(port=0) as receiver, fresh_client() as client:
            tcc.configure(base_url=receiver.url, api_key=KEY, encode_process="on")
            ended: list[SpanId] = []
            helpers = start_helpers(client, ended)
            assert tcc.flush(HANG_GUARD)
            before = sends.rows_taken()
            burst = [ids for index in range(RUNS) for ids in record_run(index, content=CONTENT)]
            assert tcc.flush(HANG_GUARD)
            assert (sends.rows_taken() - before, offload_of(client).pids) == (len(burst), helpers)
            assert keys(receiver) == sorted(ended + burst)
            total = len(ended) + len(burst)
            assert tcc.stats() == counters(recorded=total, exported=total)
            helped = [described(s) for s in receiver.spans if s.key in set(burst)]
        assert [reaped(pid) for pid in helpers] == [True] * len(helpers)
        calls = len(sends.calls)
        with Receiver(port=0) as receiver, fresh_client() as client:
            tcc.configure(base_url=receiver.url, api_key=KEY, encode_process="off")
            for index in range(RUNS):
                record_run(index, content=CONTENT)
            assert tcc.flush(HANG_GUARD)
            here = [described(span) for span in receiver.spans]
            assert tcc.stats() == counters(recorded=len(burst), exported=len(burst))
        assert (len(helped), len(sends.calls)) == (RUNS * SPANS_PER_RUN, calls)
        assert sorted(helped, key=repr) == sorted(here, key=repr)

    def test_large_rows_go_as_several_frames(
        self,
        client: Client,
        sends: Sends,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Runs whose rows hold far more than ``FRAME_BYTES`` go to a helper as several
        frames (none much over the bound), answered as one: every span arrives once."""
        monkeypatch.setattr(_offload, "FRAME_BYTES", 64 * 1024)
        frames: list[int] = []
        real_write = write_frame

        def measured(sink: IO[bytes], data: bytes) -> None:
            frames.append(len(data))
            real_write(sink, data)

        monkeypatch.setattr(_offload, "write_frame", measured)
        big = " " + "b" * (40 * 1024)  # ~80 KB of content a step (prompt and response)
        with Receiver(port=0) as receiver:
            tcc.configure(base_url=receiver.url, api_key=KEY, encode_process="on")
            ended: list[SpanId] = []
            start_helpers(client, ended)
            assert tcc.flush(HANG_GUARD)
            frames.clear()
            sent = len(sends.calls)
            for index in range(10):
                ended.extend(record_run(index, content=big))
            assert tcc.flush(HANG_GUARD)
            assert keys(receiver) == sorted(ended)
            assert tcc.stats() == counters(recorded=len(ended), exported=len(ended))
        assert all(taken for _, taken in sends.calls[sent:])
        assert len(frames) > len(sends.calls) - sent  # some sends went as several frames
        assert max(frames) < 3 * 64 * 1024  # a frame holds at most one row past the bound

    def test_helper_killed_in_a_burst(
        self,
        receiver: Receiver,
        client: Client,
        sends: Sends,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A helper SIGKILLed right after the helpers took the burst's second frame: the spans
        they held and every later one are encoded here, each delivered exactly once, nothing
        dropped; one warning says so, and every helper is let go and reaped (none restarted
        yet)."""
        tcc.configure(base_url=receiver.url, api_key=KEY, encode_process="on")
        ended: list[SpanId] = []
        helpers = start_helpers(client, ended)
        assert tcc.flush(HANG_GUARD)
        second = sends.frames_taken() + 2
        killed: list[int] = []

        def kill_at_the_second_frame() -> None:
            if not killed and sends.frames_taken() == second:
                os.kill(helpers[0], signal.SIGKILL)
                killed.append(helpers[0])

        sends.then = kill_at_the_second_frame
        for index in range(RUNS):
            ended.extend(record_run(index))
        assert tcc.flush(HANG_GUARD)
        assert killed == helpers[:1]
        assert keys(receiver) == sorted(ended)
        assert tcc.stats() == counters(recorded=len(ended), exported=len(ended))
        warned = [line for line in messages(caplog.records) if line.startswith(FAILED)]
        assert len(warned) == 1, warned
        assert warned[0].endswith(
            "; spans are encoded in this process (none lost), the helper is tried again later"
        )
        assert offload_of(client).pids == []
        assert [reaped(pid) for pid in helpers] == [True] * len(helpers)

    def test_spans_marshal_refuses_are_encoded_here(
        self,
        receiver: Receiver,
        client: Client,
        sends: Sends,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A run span whose event holds an application's object (a ``str`` enum member, which
        OTLP carries as its text and ``marshal`` refuses) is not taken by the helpers: it is
        encoded here and delivered, the helpers stay up, and nothing is dropped or warned."""

        class Colour(str, enum.Enum):
            RED = "red"

        tcc.configure(base_url=receiver.url, api_key=KEY, encode_process="on")
        ended: list[SpanId] = []
        helpers = start_helpers(client, ended)
        assert tcc.flush(HANG_GUARD)
        first = len(sends.calls)
        with tcc.run() as r:
            r.prompt("pick a colour")
            trace.get_current_span().add_event("picked", {"colour": Colour.RED})
            r.response("red")
        assert tcc.flush(HANG_GUARD)
        ended.append(span_id(r.span))
        assert sends.calls[first:] == [(1, False)]
        assert keys(receiver) == sorted(ended)
        (run,) = [span for span in receiver.spans if span.key == span_id(r.span)]
        assert run.events == [("picked", {"colour": "red"})]
        assert offload_of(client).pids == helpers
        assert [running(pid) for pid in helpers] == [True] * len(helpers)
        assert tcc.stats() == counters(recorded=len(ended), exported=len(ended))
        assert messages(caplog.records) == []

    def test_a_frame_not_taken_waits_for_the_frames_before_it(
        self, client: Client, sends: Sends, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A run whose spans straddle two frames, the second not taken by the helpers (a
        value ``marshal`` refuses): the first frame's answer is placed before the second is
        encoded here, so the run still meets its children and travels in one request."""

        class Colour(str, enum.Enum):
            RED = "red"

        with FaultServer() as server:
            self._straddle(server, client, sends, monkeypatch, Colour.RED)

    def _straddle(
        self,
        server: FaultServer,
        client: Client,
        sends: Sends,
        monkeypatch: pytest.MonkeyPatch,
        odd: object,
    ) -> None:
        tcc.configure(base_url=server.url, api_key=KEY, encode_process="on")
        start_helpers(client, [])
        assert tcc.flush(HANG_GUARD)
        gate, real_usable = threading.Event(), Offload.usable

        def held(offload: Offload, backlog: int) -> bool:
            gate.wait(HANG_GUARD)  # the export thread waits while the runs pile up
            return real_usable(offload, backlog)

        monkeypatch.setattr(Offload, "usable", held)
        record_run()  # wakes the export thread, which now waits at the gate
        before = len(server.requests)
        runs: list[list[SpanId]] = []
        for index in range(60):  # 6 + 41 * 6 = 252: run 41 straddles the 256-row frames
            with tcc.run() as r:
                r.prompt(f"q{index}")
                steps = [r.step().prompt(f"p{n}").response("r") for n in range(5)]
                for step in steps:
                    step.end()
                if index == 41:
                    trace.get_current_span().add_event("picked", {"colour": odd})
                r.response("a")
            runs.append([span_id(step.span) for step in steps] + [span_id(r.span)])
        gate.set()
        assert tcc.flush(HANG_GUARD)
        request_of = {
            key: n
            for n, request in enumerate(server.requests[before:])
            for key in request_ids(request)
        }
        assert [len({request_of[key] for key in run}) for run in runs] == [1] * len(runs)
        assert (False in [taken for _, taken in sends.calls]) is True  # one frame not taken

    def test_forked_child_leaves_the_parents_helpers(
        self, receiver: Receiver, client: Client, sends: Sends
    ) -> None:
        """A child forked while the parent's helpers are up starts without them, starts its
        own and exports its runs through them, then ends; the parent's helpers are untouched
        (still running, still used), and every span of both processes arrives exactly
        once."""
        tcc.configure(base_url=receiver.url, api_key=KEY, encode_process="on")
        ended: list[SpanId] = []
        helpers = start_helpers(client, ended)
        assert tcc.flush(HANG_GUARD)
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports by exit status and the pipe
            code = 1
            try:
                os.close(read_end)
                code = child_life(client, helpers, write_end)
            finally:
                os._exit(code)
        os.close(write_end)
        status = exit_status(child)
        with os.fdopen(read_end, "rb") as pipe:
            child_ended = [(trace_id, span) for trace_id, span in json.loads(pipe.read() or "[]")]
        assert status == 0, CHILD_FAILURES.get(status, f"the child ended with {status}")
        assert offload_of(client).pids == helpers
        assert [running(pid) for pid in helpers] == [True] * len(helpers)
        frames = sends.frames_taken()
        for index in range(20):
            ended.extend(record_run(index, content=" after the fork"))
        assert tcc.flush(HANG_GUARD)
        assert sends.frames_taken() > frames, "the parent no longer used its helpers"
        assert all(taken for _, taken in sends.calls)
        assert keys(receiver) == sorted(ended + child_ended)
        assert tcc.stats() == counters(recorded=len(ended), exported=len(ended))

    def test_a_fork_while_helpers_start_waits_for_their_pipes(
        self, offloads: list[Offload], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A fork in another thread while the export thread starts a helper (its pipes made,
        not yet recorded) waits until they are recorded, so the child closes its copy of the
        helper's input: the helper still ends when its parent lets it go."""
        made, forking = threading.Event(), threading.Event()
        real = subprocess.Popen

        def slow(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
            proc: subprocess.Popen[bytes] = real(*args, **kwargs)
            made.set()
            forking.wait(0.5)  # the fork below comes now, unless something holds it back
            return proc

        monkeypatch.setattr(subprocess, "Popen", slow)
        offload = Offload(LIMITS, "on", processes=1)
        offloads.append(offload)
        starting = threading.Thread(target=offload.usable, args=(0,))
        starting.start()
        assert made.wait(HANG_GUARD)
        read_end, write_end = os.pipe()
        forking.set()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports its open pipes, then ends
            os.close(read_end)
            offload.after_fork()  # what its pipeline's fork hook does
            os.write(write_end, json.dumps(writable_pipes()).encode())
            os._exit(0)
        os.close(write_end)
        starting.join(HANG_GUARD)
        with os.fdopen(read_end, "rb") as pipe:
            childs = json.loads(pipe.read() or "[]")
        assert exit_status(child) == 0
        (helper,) = offload._helpers
        stdin = helper.popen.stdin
        assert stdin is not None
        assert os.readlink(f"/proc/self/fd/{stdin.fileno()}") not in childs

    def test_sharing_keeps_encoding_here(
        self,
        team: TeamTracing,
        receiver: Receiver,
        client: Client,
        spawned: list[subprocess.Popen[bytes]],
    ) -> None:
        """While the application's global provider gets the records' spans too (sharing
        needs their attributes built here), no helper starts: the spans are encoded here,
        sent to TCC and shared, each once."""
        tcc.configure(base_url=receiver.url, api_key=KEY, encode_process="on")
        ended = [ids for index in range(5) for ids in record_run(index)]
        assert tcc.flush(HANG_GUARD)
        shared: list[SpanId] = []
        for span in team.spans:
            context = span.get_span_context()
            assert context is not None
            shared.append((f"{context.trace_id:032x}", f"{context.span_id:016x}"))
        shared.sort()
        assert (keys(receiver), shared, spawned) == (sorted(ended), sorted(ended), [])


CHILD_FAILURES = {
    1: "the child raised",
    10: "the child's pipeline still held the parent's helpers",
    11: "the child's own helpers were the parent's, or not running",
    12: "the child's flush did not finish",
    13: "the child's stats were off",
    14: "the child's helpers outlived its shutdown",
}


def child_life(client: Client, parents_helpers: list[int], report: int) -> int:
    """A forked child's whole life: its own runs through its own helpers, then shutdown; the
    span ids it ended go to ``report`` as JSON. Its exit status (``CHILD_FAILURES``)."""
    if offload_of(client).pids:
        return 10
    ended: list[SpanId] = []
    own = start_helpers(client, ended)
    if set(own) & set(parents_helpers) or not all(running(pid) for pid in own):
        return 11
    if not tcc.flush(HANG_GUARD):
        return 12
    if tcc.stats() != counters(recorded=len(ended), exported=len(ended)):
        return 13
    client.shutdown(timeout=HANG_GUARD)
    if not all(reaped(pid) for pid in own):
        return 14
    os.write(report, json.dumps(ended).encode())
    return 0


def writable_pipes() -> list[str]:
    """The pipes this process holds open for writing (``pipe:[inode]``), from ``/proc``."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            with open(f"/proc/self/fdinfo/{fd}") as info:
                flags = int(info.read().split("flags:")[1].split()[0], 8)
        except (OSError, IndexError, ValueError):
            continue  # the directory's own descriptor, gone meanwhile
        if target.startswith("pipe:") and flags & 3 == os.O_WRONLY:
            found.append(target)
    return found


def exit_status(pid: int) -> int:
    """The exit status of our child ``pid``; it is killed if it has not ended within the
    hang guard."""
    found: list[int] = []

    def ended() -> bool:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            found.append(status)
        return bool(done)

    if not wait_until(ended):
        os.kill(pid, signal.SIGKILL)
        found.append(os.waitpid(pid, 0)[1])
    return os.waitstatus_to_exitcode(found[0])


# --- the setting -------------------------------------------------------------------------------


class TestSetting:
    """``encode_process`` / ``TCC_ENCODE_PROCESS``."""

    def test_configure_refuses_an_unknown_mode(self, client: Client) -> None:
        """An unknown ``encode_process`` in code raises ``ValueError`` naming the values
        allowed."""
        allowed = "encode_process='bogus' is not known (auto, off, on)"
        with pytest.raises(ValueError, match=f"^{re.escape(allowed)}$"):
            tcc.configure(encode_process="bogus")

    def test_unknown_env_mode_warns_and_is_auto(
        self,
        receiver: Receiver,
        client: Client,
        spawned: list[subprocess.Popen[bytes]],
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """An unknown ``TCC_ENCODE_PROCESS`` is warned about once and ``auto`` used: a run
        with no backlog starts no helper process, and it is exported."""
        monkeypatch.setenv("TCC_ENCODE_PROCESS", "bogus")
        tcc.configure(base_url=receiver.url, api_key=KEY)
        ended = record_run()
        assert tcc.flush(HANG_GUARD)
        assert client.config.encode_process == "auto"
        assert messages(caplog.records) == [
            "TCC_ENCODE_PROCESS='bogus' is not known (auto, off, on); auto is used"
        ]
        assert (keys(receiver), spawned) == (sorted(ended), [])
