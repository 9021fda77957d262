"""The helper process's side of the offload protocol (``_offload_serve.serve``), spoken to
directly: ``serve`` runs in a real subprocess started the way ``_offload`` starts it, and gets
frames of rows made from real record spans. Every answer (``Answer``: lengths, notes, one
blob) is checked row by row against ``encode_row`` of the same row in this process, byte for
byte."""

from __future__ import annotations

import marshal
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Optional, cast

import pytest
from helpers.delivery import HANG_GUARD, record_run

import tcc_otel
import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel._export import _offload
from tcc_otel._export._encode import Row, SpanLimitValues, encode_row, row
from tcc_otel._export._offload_serve import HELLO, Answer, read_frame, write_frame
from tcc_otel._export._pipeline import Item
from tcc_otel._records._span import LightSpan

pytestmark = pytest.mark.skipif(
    not _offload.supported(), reason="the helper process needs CPython on POSIX"
)

CUTTING: SpanLimitValues = (12, 40)
"""Span limits that cut: the run's metadata past 12 attributes, every value past 40 characters."""
UNLIMITED: SpanLimitValues = (None, None)
BIG = "x" * (2 * 1024 * 1024)
"""Content far larger than a pipe's buffer (64 KiB) in every prompt."""


class Kept:
    """A sink that keeps each record's span as it ended, snapshot included: nothing encoded."""

    def __init__(self) -> None:
        self.spans: list[LightSpan] = []

    def submit(self, item: Item, run_end: bool) -> None:
        """Keep a record's span."""
        assert isinstance(item, LightSpan)
        self.spans.append(item)

    def flush(self, timeout: float) -> bool:
        """Nothing waits."""
        return True

    def shutdown(self, timeout: float) -> None:
        """Nothing to stop."""


@contextmanager
def recording() -> Iterator[list[LightSpan]]:
    """``tcc``'s records end into the list yielded (the default road), not into an export."""
    kept = Kept()
    client = Client()
    client.configure(exporter="none")
    client.record_into(kept)
    previous, tcc_otel._client = tcc_otel._client, client
    try:
        yield kept.spans
    finally:
        tcc_otel._client = previous
        client.shutdown(timeout=1.0)


def record_rich_run(index: int) -> None:
    """A run with metadata and a step with a model, tokens and content."""
    with tcc.run() as r:
        r.prompt(f"rich question {index} " + "y" * 100)
        r.metadata({f"key{n}": n for n in range(8)}, note="z" * 60)
        r.step().model("gpt-4o", "gpt-4o-2024-08-06").tokens(120, 30, 45).prompt(
            f"think {index}"
        ).response("w" * 80).finish_reason("stop").end()
        r.response(f"rich answer {index}")


def rows_of(spans: list[LightSpan]) -> list[Row]:
    """Each span as the pipeline hands it to the helper."""
    return [row(span) for span in spans]


Result = tuple[Optional[bytes], object]
"""One row's result: its encoded span (``None`` if it failed) and its note (``(cuts,
tcc.type)`` when the limits cut something, the error text when it failed, else ``None``)."""


def results(answer: Answer) -> list[Result]:
    """The helper's answer to one frame, row by row."""
    found: list[Result] = []
    at = 0
    for index, size in enumerate(answer.lengths):
        note = answer.notes.get(index)
        if size < 0:
            found.append((None, note))
            continue
        found.append((answer.blob[at : at + size], note))
        at += size
    assert at == len(answer.blob), "the blob holds more than the lengths account for"
    return found


def encoded_here(rows: list[Row], limits: SpanLimitValues) -> list[Result]:
    """What ``encode_row`` gives for each row in this process, as ``results`` spells it."""
    found: list[Result] = []
    for plain in rows:
        try:
            body, cuts, kind = encode_row(plain, limits)
        except Exception as exc:
            found.append((None, f"{type(exc).__name__}: {exc}"))
            continue
        found.append((body, (cuts, kind) if any(cuts) else None))
    return found


class Helper:
    """``serve`` in a subprocess started as ``_offload`` starts it (the same program and boot
    frame). Killed if it is still up ``HANG_GUARD`` seconds after it started, so a hung test
    fails (its reads end) and leaves nothing behind."""

    def __init__(self, limits: SpanLimitValues) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _offload._BOOT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.stdin = self.proc.stdin
        self.stdout = self.proc.stdout
        self.guard = threading.Timer(HANG_GUARD, self.proc.kill)
        self.guard.daemon = True
        self.guard.start()
        package = os.path.dirname(os.path.dirname(os.path.abspath(_offload.__file__)))
        # genai-prices hidden, as the tests' own process hides it (conftest's _cost_extra)
        path = [os.fspath(entry) for entry in sys.path if isinstance(entry, (str, os.PathLike))]
        write_frame(self.stdin, marshal.dumps((path, package, False, limits)))
        self.hello = self.read()

    def send(self, rows: list[Row]) -> None:
        """Write one frame of rows."""
        write_frame(self.stdin, marshal.dumps(rows))

    def read(self) -> Any:
        """The next frame's value; ``None`` at the end of the helper's output."""
        data = read_frame(self.stdout)
        return None if data is None else marshal.loads(data)

    def answer(self) -> list[Result]:
        """The answer to the oldest frame not yet read, row by row."""
        value = self.read()
        assert value is not None, f"the helper ended (exit status {self.proc.poll()})"
        return results(Answer(*value))

    def close(self) -> None:
        """Kill it if it is still up; reap it."""
        self.guard.cancel()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.stdin, self.stdout):
            stream.close()


@pytest.fixture
def helpers() -> Iterator[list[Helper]]:
    """Helpers a test starts, killed and reaped in teardown."""
    started: list[Helper] = []
    yield started
    for helper in started:
        helper.close()


def start(helpers: list[Helper], limits: SpanLimitValues) -> Helper:
    """A helper with ``limits``, registered for teardown."""
    helper = Helper(limits)
    helpers.append(helper)
    return helper


def test_says_hello_first(helpers: list[Helper]) -> None:
    """Once ready, the helper's first frame is ``(HELLO, sys.hexversion)``: the same protocol
    and interpreter version as this process."""
    assert start(helpers, UNLIMITED).hello == (HELLO, sys.hexversion)


def test_results_are_encode_row_byte_for_byte(helpers: list[Helper]) -> None:
    """Rows of runs with steps, tool calls, content, metadata and token counts come back as
    exactly what ``encode_row`` gives in this process, one result per row and in order: the
    same bytes, and the same cuts with the ``tcc.type`` they were cut from wherever the limits
    cut (here: every kind ``Fitted`` counts: metadata over the count, JSON values whose
    skeleton is too long, values cut to the length)."""
    with recording() as spans:
        for index in range(3):
            record_run(index, content=" with content")
            record_rich_run(index)
    rows = rows_of(spans)
    helper = start(helpers, CUTTING)
    helper.send(rows)
    answer = helper.answer()
    expected = encoded_here(rows, CUTTING)
    assert len(rows) == 3 * (6 + 2)
    assert answer == expected
    cuts = [note[0] for _, note in expected if isinstance(note, tuple)]
    assert [sum(c[n] for c in cuts) > 0 for n in range(3)] == [True] * 3, cuts


def test_error_in_one_row_does_not_stop_the_others(helpers: list[Helper]) -> None:
    """A row ``encode_row`` raises on (an event attribute holding a set, which marshal carries
    and OTLP cannot) comes back failed in its place (length -1, note ``"<type>: <message>"``);
    the rows around it, and the next frame, are encoded as usual."""
    with recording() as spans:
        record_run(1)
        with tcc.run() as r:
            r.prompt("q").response("a")
            r.span.add_event("tags", cast(Any, {"tags": {"a", "b"}}))
        record_run(2)
    rows = rows_of(spans)
    bad = next(i for i, plain in enumerate(rows) if plain[9])
    with pytest.raises(TypeError, match=r"^attribute values cannot be set$"):
        encode_row(rows[bad], UNLIMITED)
    helper = start(helpers, UNLIMITED)
    helper.send(rows)
    helper.send(rows[:1])
    first, second = helper.answer(), helper.answer()
    expected = encoded_here(rows, UNLIMITED)
    assert (bad, len(rows)) == (6, 13)
    assert expected[bad] == (None, "TypeError: attribute values cannot be set")
    assert all(body is not None for i, (body, _) in enumerate(expected) if i != bad)
    assert (first, second) == (expected, expected[:1])


def test_frames_written_before_any_read_come_back_in_order(helpers: list[Helper]) -> None:
    """Several frames, each many times a pipe's buffer both ways (2 MB prompts, no limits),
    all written before reading anything: no deadlock (the helper reads ahead while its answer
    waits in a full pipe), and the answers come back one per frame, in the order sent."""
    frames: list[list[Row]] = []
    for index in range(3):
        with recording() as spans:
            record_run(index, content=BIG)
        frames.append(rows_of(spans))
    helper = start(helpers, UNLIMITED)
    try:
        for rows in frames:
            helper.send(rows)
    except BrokenPipeError:
        pytest.fail(f"writing the frames hung until the {HANG_GUARD} s guard killed the helper")
    answers = [helper.answer() for _ in frames]
    sizes = [len(marshal.dumps(rows)) for rows in frames]
    assert all(size > 2 * 1024 * 1024 for size in sizes), sizes
    assert answers == [encoded_here(rows, UNLIMITED) for rows in frames]


def test_exits_when_its_input_closes(helpers: list[Helper]) -> None:
    """Once its standard input closes, the helper answers what it got, ends its output and
    exits with status 0, by itself."""
    with recording() as spans:
        record_run()
    rows = rows_of(spans)
    helper = start(helpers, UNLIMITED)
    helper.send(rows)
    helper.stdin.close()
    assert helper.answer() == encoded_here(rows, UNLIMITED)
    assert (helper.read(), helper.proc.wait(HANG_GUARD)) == (None, 0)


def test_ignores_sigterm(helpers: list[Helper]) -> None:
    """SIGTERM (a signal to the application's process group reaches the helper too) does not
    end it: it goes on answering, and ends only when its input closes."""
    with recording() as spans:
        record_run()
    rows = rows_of(spans)
    helper = start(helpers, UNLIMITED)
    os.kill(helper.proc.pid, signal.SIGTERM)
    helper.send(rows)
    assert helper.answer() == encoded_here(rows, UNLIMITED)
    helper.stdin.close()
    assert (helper.read(), helper.proc.wait(HANG_GUARD)) == (None, 0)
