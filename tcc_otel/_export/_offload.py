"""Helper processes that build and encode record spans while this process's GIL serves the
agent: under sustained load, encoding in the export thread competes with the agent's threads for
the one interpreter lock; in other processes it runs on other cores.

The export thread writes frames of ``Row``s (``_encode``) to a helper's standard input and reads
the encoded spans back, in order (``_offload_serve``). Everything else stays here: grouping,
batching, spool, sending, counting. Helpers start only when a backlog shows the load needs them
(``TCC_ENCODE_PROCESS=auto``), or at the first export (``on``); never with ``off``, on platforms
without ``select`` on pipes, or in frozen or embedded interpreters. If one cannot start, dies or
answers wrongly, the spans they held are encoded in this process, nothing is lost, and they are
tried again later (three failures at most per process).
"""

from __future__ import annotations

import collections
import contextlib
import marshal
import os
import select
import subprocess
import sys
import threading
import time
from typing import IO

from tcc_otel._export._encode import Row, SpanLimitValues
from tcc_otel._export._offload_serve import HELLO, Answer, read_frame, write_frame
from tcc_otel._log import logger
from tcc_otel._schema import _cost as cost

START_AT = 2_000
"""``auto``: spans waiting to be encoded that start the helpers (the export thread is behind)."""
USE_FROM = 32
"""``auto``: spans waiting that go to running helpers; a run or two at a time (an agent's pace)
are encoded here, which costs less than the round trip and wakes no other process."""
_BOOT_TIMEOUT = 10.0  # seconds the helper may take to say it is ready
_RETRY_AFTER = 30.0  # seconds before starting again after a failure (times the failures)
_MAX_FAILURES = 3
_MOST_PROCESSES = 4
FRAME_BYTES = 4 * 1024 * 1024
"""Marshalled rows per frame, at most (unless one row alone is larger): a few runs with
megabyte prompts do not make one huge frame, and its answer, at once."""
IDLE_AFTER = 60.0
"""Seconds without a frame after which the helpers are let go (started again when needed)."""
_FORSAKEN: list[object] = []  # a forked child's copies of its parent's helper pipes
_PIPE_BYTES = 1024 * 1024  # pipe buffers asked for (Linux): fewer wake-ups per frame
_BOOT = (  # the helper's program: the package's modules without the package's __init__;
    # signals to the process group are the application's: the helper ends when its input does
    "import marshal,os,signal,struct,sys,types\n"
    "signal.signal(signal.SIGINT,signal.SIG_IGN);signal.signal(signal.SIGTERM,signal.SIG_IGN)\n"
    "i=sys.stdin.buffer\n"
    "o=os.fdopen(os.dup(1),'wb')\n"
    "os.dup2(os.open(os.devnull,os.O_WRONLY),1)\n"  # a stray print cannot corrupt the frames
    "n,=struct.unpack('<I',i.read(4))\n"
    "path,package,prices,limits=marshal.loads(i.read(n))\n"
    "sys.path[:]=path\n"
    "m=types.ModuleType('tcc_otel');m.__path__=[package];sys.modules['tcc_otel']=m\n"
    "if not prices:sys.modules['genai_prices']=None\n"
    "import logging;logging.getLogger('tcc_otel').disabled=True\n"
    "from tcc_otel._export._offload_serve import serve\n"
    "serve(i,o,limits)\n"
)


def supported() -> bool:
    """Whether this interpreter can run the helper: a plain CPython on a POSIX system."""
    executable = os.path.basename(sys.executable or "")
    return (
        os.name == "posix" and not getattr(sys, "frozen", False) and executable.startswith("python")
    )


def default_processes() -> int:
    """Helper processes a pipeline starts: one per core this process may run on, at most
    ``_MOST_PROCESSES``. They run only under a backlog; even on two cores, two of them keep
    one busy while the other waits for its next frame."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(_MOST_PROCESSES, cores))


class _Helper:
    """One helper process: its pipes, and whether it said it is ready."""

    __slots__ = ("popen", "ready", "started")

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.ready = False
        self.started = time.monotonic()


class Offload:
    """The helper processes of one pipeline; used by its export thread only.

    Frames go to the ready helpers in turn; answers are read in the order the frames went, so
    spans come back in order. Any failure lets every helper go (their answers in flight would
    otherwise be out of step): the pipeline encodes what they held itself.
    """

    def __init__(self, limits: SpanLimitValues, mode: str = "auto", processes: int = 0) -> None:
        self._limits = limits
        self._mode = mode.lower() if supported() else "off"
        self._count = processes or default_processes()
        self._helpers: list[_Helper] = []
        self._ready: list[_Helper] = []
        # sends not answered yet: the helper, and how many frames it owes for them
        self._owed: collections.deque[tuple[_Helper, int]] = collections.deque()
        self._turn = 0
        self._used = 0.0  # when a frame last went to a helper
        self._spawned = 0.0
        self._failures = 0
        self._retry_at = 0.0

    @property
    def ready(self) -> int:
        """Helpers up and ready."""
        return len(self._ready)

    @property
    def pids(self) -> list[int]:
        """Process ids of the helpers up and ready."""
        return [helper.popen.pid for helper in self._ready]

    def usable(self, backlog: int) -> bool:
        """Whether the next rows should go to a helper: one is ready and, with ``auto``, at
        least ``USE_FROM`` spans wait (``backlog``; fewer cost less here than a round trip).
        Starts the helpers when the backlog asks for it; never waits for one to start."""
        if len(self._ready) < self._count and not self._poll(backlog):
            return False
        return self._mode == "on" or backlog >= USE_FROM

    def _poll(self, backlog: int) -> bool:
        """Whether a helper is ready, after looking at those starting (or starting them)."""
        if self._helpers:
            for helper in list(self._helpers):
                if helper.ready:
                    continue
                if self._answered(helper):
                    self._ready.append(helper)
                elif not self._helpers:  # it failed: every helper was let go
                    return False
            return bool(self._ready)
        if self._mode == "off" or self._failures >= _MAX_FAILURES:
            return False
        if self._mode == "auto" and backlog < START_AT:
            return False
        if time.monotonic() < self._retry_at:
            return False
        self._spawn()
        return False

    def send(self, rows: list[Row]) -> bool:
        """Hand ``rows`` to the next helper; ``False`` if none can take them (their values do
        not marshal, or the helpers are gone): then encode them here. Rows holding more than
        ``FRAME_BYTES`` go as several frames, so that neither process holds much at once."""
        if not self._ready:
            return False
        try:
            frames = _frames(rows)
        except ValueError:  # an application's value that is not plain data
            return False
        helper = self._ready[self._turn % len(self._ready)]
        self._turn += 1
        self._used = time.monotonic()
        stdin = helper.popen.stdin
        assert stdin is not None
        try:
            for data in frames:
                write_frame(stdin, data)
        except OSError as exc:
            self.fail(f"writing to it failed ({exc})")
            return False
        self._owed.append((helper, len(frames)))
        return True

    def receive(self, rows: int) -> Answer | None:
        """The answer to the oldest ``send``, of ``rows`` rows; ``None`` if the helpers are
        gone or answered wrongly (then encode them here)."""
        if not self._owed:
            return None
        helper, frames = self._owed.popleft()
        stdout = helper.popen.stdout
        assert stdout is not None
        answers: list[Answer] = []
        try:
            for _ in range(frames):
                data = read_frame(stdout)
                if data is None:
                    self.fail(f"it ended (exit status {helper.popen.poll()})")
                    return None
                answers.append(Answer(*marshal.loads(data)))
        except (OSError, ValueError, EOFError, TypeError) as exc:
            self.fail(f"reading from it failed ({exc})")
            return None
        answer = answers[0] if frames == 1 else _joined(answers)
        if len(answer.lengths) != rows:
            self.fail(f"it answered {len(answer.lengths)} spans for {rows}")
            return None
        return answer

    def release_idle(self, now: float) -> None:
        """Let the helpers go once they have had nothing to do for ``IDLE_AFTER`` seconds:
        a burst now and then does not keep processes around."""
        if self._helpers and not self._owed and now - max(self._used, self._spawned) > IDLE_AFTER:
            logger.debug("letting the encoding helper processes go: idle for %.0f s", IDLE_AFTER)
            self.close()

    def fail(self, why: str) -> None:
        """Let the helpers go after ``why``; started again later, three failures at most."""
        self._count_failure()
        later = "tried again later" if self._failures < _MAX_FAILURES else "not tried again"
        logger.warning(
            "tcc_otel's encoding helper process failed: %s; spans are encoded in this process "
            "(none lost), the helper is %s",
            why,
            later,
        )
        self.close(timeout=0.1)

    def _count_failure(self) -> None:
        """One more failure: the next start waits ``_RETRY_AFTER`` times the failures."""
        self._failures += 1
        self._retry_at = time.monotonic() + _RETRY_AFTER * self._failures

    def close(self, timeout: float = 1.0) -> None:
        """Let the helpers go: their input closes, they end; killed if they have not within
        ``timeout`` seconds."""
        helpers = self._forget()
        for helper in helpers:
            for stream in (helper.popen.stdin, helper.popen.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        deadline = time.monotonic() + timeout
        for helper in helpers:
            try:
                helper.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                helper.popen.kill()
                helper.popen.wait()

    def after_fork(self) -> None:
        """In a forked child: the helpers are the parent's. Close this copy of their pipes,
        so they still end with the parent, and start afresh."""
        for helper in self._forget():
            helper.popen.returncode = 0  # not this process's child: never wait for it here
            for stream in (helper.popen.stdin, helper.popen.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        os.close(stream.fileno())
                    # Never finalized here: a flush of the parent's half-written frame, or a
                    # second close of a number reused meanwhile, must not happen in the child.
                    _FORSAKEN.append(stream)

    def _forget(self) -> list[_Helper]:
        helpers, self._helpers, self._ready = self._helpers, [], []
        self._owed.clear()
        return helpers

    # --- starting ---------------------------------------------------------------------------

    def _spawn(self) -> None:
        package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        prices = cost.available()  # estimates there exactly when here
        path = [os.fspath(entry) for entry in sys.path if isinstance(entry, (str, os.PathLike))]
        boot = marshal.dumps((path, package, prices, self._limits))
        self._spawned = time.monotonic()
        for _ in range(self._count):
            try:
                with _SPAWNING:  # a fork now would miss these pipes in after_fork()
                    popen = subprocess.Popen(
                        [sys.executable, "-I", "-S", "-c", _BOOT],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                        close_fds=True,
                    )
                    helper = _Helper(popen)
                    self._helpers.append(helper)  # closed with the others if a step fails
                assert popen.stdin is not None
                assert popen.stdout is not None
                for stream in (popen.stdin, popen.stdout):
                    _grow_pipe(stream)
                write_frame(popen.stdin, boot)
            except (OSError, ValueError) as exc:
                self._count_failure()
                logger.warning("could not start tcc_otel's encoding helper process: %s", exc)
                self.close(timeout=0.1)
                return

    def _answered(self, helper: _Helper) -> bool:
        """Whether a starting helper said it is ready; gives up on all after a while."""
        stdout = helper.popen.stdout
        assert stdout is not None
        readable, _, _ = select.select([stdout], [], [], 0)
        if not readable:
            if time.monotonic() - helper.started > _BOOT_TIMEOUT:
                self.fail(f"it did not start within {_BOOT_TIMEOUT:.0f} s")
            return False
        data = read_frame(stdout)
        try:
            hello = None if data is None else marshal.loads(data)
        except (ValueError, EOFError, TypeError):
            hello = None
        if hello != (HELLO, sys.hexversion):
            self.fail(f"it did not start (exit status {helper.popen.poll()})")
            return False
        helper.ready = True
        logger.debug(
            "encoding spans in a helper process (pid %d) while the load lasts", helper.popen.pid
        )
        return True


_SPAWNING = threading.Lock()
"""Held while a helper's pipes exist but are not in ``Offload._helpers`` yet: a fork (in any
thread) waits, so that the child closes every copy it got and no helper outlives its parent
because a child still holds its input. ``Popen`` itself runs no fork handlers."""


def _before_fork() -> None:
    _SPAWNING.acquire()


def _after_fork_in_parent() -> None:
    _SPAWNING.release()


def _after_fork_in_child() -> None:
    global _SPAWNING
    _SPAWNING = threading.Lock()  # the parent's is held: a new one


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


def _frames(rows: list[Row]) -> list[bytes]:
    """``rows`` marshalled as frames of at most ``FRAME_BYTES`` each, in order (a single row
    larger than that is a frame of its own). Raises ``ValueError`` for a value marshal refuses."""
    data = marshal.dumps(rows)
    if len(data) <= FRAME_BYTES or len(rows) == 1:
        return [data]
    half = len(rows) // 2
    return _frames(rows[:half]) + _frames(rows[half:])


def _joined(answers: list[Answer]) -> Answer:
    """The answers to consecutive frames, as one answer to all their rows."""
    lengths: list[int] = []
    notes: dict[int, object] = {}
    for answer in answers:
        notes.update((len(lengths) + row, note) for row, note in answer.notes.items())
        lengths.extend(answer.lengths)
    return Answer(lengths, notes, b"".join(answer.blob for answer in answers))


def _grow_pipe(stream: IO[bytes]) -> None:
    """Ask Linux for a larger pipe buffer; the default (64 KiB) works too."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
    except (ImportError, OSError):
        pass
