"""The SIGTERM hook: installed only where nobody else handles SIGTERM, and a watchdog on the
signal module's wakeup fd (when free) so that a SIGTERM the main thread could not act on still
ends the process. The deployment suites (tests/deploy) show it in real servers and pools."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

import pytest

from tcc_otel._export._sigterm import SigtermHook
from tcc_otel._local._server import Receiver

HANG_GUARD = 30.0
"""Seconds after which a child that should have ended is considered hung."""

Make = Callable[[], SigtermHook]


@pytest.fixture
def make_hook() -> Iterator[Make]:
    """Hooks for a test; SIGTERM's disposition and the wakeup fd are put back after it."""
    saved = signal.getsignal(signal.SIGTERM)
    hooks: list[SigtermHook] = []

    def make() -> SigtermHook:
        hook = SigtermHook(lambda: None, lambda: 1.0)
        hooks.append(hook)
        return hook

    try:
        yield make
    finally:
        for hook in hooks:
            hook.uninstall()
        signal.signal(signal.SIGTERM, saved)
        signal.set_wakeup_fd(-1)


def wakeup_fd() -> int:
    """The signal module's wakeup fd now (-1: none), left as it was."""
    current = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(current)
    return current


class TestInstall:
    """Where the handler goes in, and where it stays out."""

    def test_installed_over_the_default(self, make_hook: Make) -> None:
        """With SIGTERM at its default, install() on the main thread puts our handler in and
        takes the free wakeup fd."""
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        hook = make_hook()
        hook.install()
        assert (hook.settled, signal.getsignal(signal.SIGTERM)) == (True, hook._handle)
        assert wakeup_fd() != -1

    def test_application_handler_left_alone(self, make_hook: Make) -> None:
        """A handler the application installed first is neither replaced nor tried again, and
        the wakeup fd is not taken."""

        def mine(signum: int, frame: FrameType | None) -> None:
            """The application's handler."""

        signal.signal(signal.SIGTERM, mine)
        hook = make_hook()
        hook.install()
        assert (hook.settled, signal.getsignal(signal.SIGTERM), wakeup_fd()) == (True, mine, -1)

    def test_ignored_left_alone(self, make_hook: Make) -> None:
        """SIGTERM ignored by the application stays ignored."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        make_hook().install()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN

    def test_other_thread_tries_later(self, make_hook: Make) -> None:
        """Off the main thread nothing is installed, and a later call from the main thread
        still can."""
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        hook = make_hook()
        thread = threading.Thread(target=hook.install)
        thread.start()
        thread.join()
        assert (hook.settled, signal.getsignal(signal.SIGTERM)) == (False, signal.SIG_DFL)
        hook.install()
        assert signal.getsignal(signal.SIGTERM) == hook._handle

    def test_uninstall_only_ours(self, make_hook: Make) -> None:
        """uninstall() restores the default only while our handler is the one set, and gives
        the wakeup fd back."""

        def later(signum: int, frame: FrameType | None) -> None:
            """A handler the application set after ours."""

        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        hook = make_hook()
        hook.install()
        signal.signal(signal.SIGTERM, later)
        hook.uninstall()
        assert (signal.getsignal(signal.SIGTERM), wakeup_fd()) == (later, -1)
        signal.signal(signal.SIGTERM, hook._handle)
        hook.uninstall()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL

    def test_application_wakeup_fd_kept(self, make_hook: Make) -> None:
        """A wakeup fd the application set (asyncio does) stays its own."""
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.set_wakeup_fd(write_end)
        try:
            make_hook().install()
            assert wakeup_fd() == write_end
        finally:
            os.close(read_end)
            os.close(write_end)


# A process that records a run (so export starts and the hook is in), then makes its main
# thread unable to take SIGTERM as the race does: the signal module's wakeup byte says SIGTERM
# came, but the Python handler did not run, and the main thread blocks for good.
STUCK = """
import os, signal, sys, threading, time
import tcc_otel as tcc
with tcc.run(run_id="stuck") as r:
    r.prompt("q")
fd = signal.set_wakeup_fd(-1)
signal.set_wakeup_fd(fd)
print("ready", fd, flush=True)
if sys.argv[1] == "blocked":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # nothing can interrupt it now
os.write(fd, bytes([signal.SIGTERM]))
lock = threading.Lock()
lock.acquire()
lock.acquire()  # blocks for good
"""


def run_stuck(mode: str, receiver: Receiver) -> tuple[int, float, str]:
    """Run ``STUCK``; its exit code, the seconds it took after getting stuck, its stderr."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TCC_", "OTEL_"))}
    env = {**clean, "TCC_BASE_URL": receiver.url, "TCC_SHUTDOWN_TIMEOUT": "2"}
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(STUCK), mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("ready"), process.communicate(timeout=HANG_GUARD)
        started = time.monotonic()
        code = process.wait(HANG_GUARD)
        took = time.monotonic() - started
        assert process.stderr is not None
        return code, took, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


class TestWatchdog:
    """A SIGTERM that the main thread could not act on still ends the process, after the
    pending spans were delivered."""

    def test_main_thread_signalled_again(self) -> None:
        """The watchdog signals the blocked main thread, whose wait is interrupted: the handler
        delivers the run, and the process ends by SIGTERM."""
        with Receiver("127.0.0.1", 0) as receiver:
            code, _, stderr = run_stuck("waiting", receiver)
            spans = receiver.spans
        assert (code, stderr) == (-signal.SIGTERM, "")
        assert [span.attributes["tcc.runId"] for span in spans] == ["stuck"]

    def test_main_thread_that_cannot_take_it(self) -> None:
        """With SIGTERM blocked on the main thread, the watchdog delivers the run itself and
        ends the process with the status a shell gives SIGTERM (143), within the shutdown
        timeout (2 s) and a second."""
        with Receiver("127.0.0.1", 0) as receiver:
            code, took, stderr = run_stuck("blocked", receiver)
            spans = receiver.spans
        assert code == 128 + signal.SIGTERM
        assert "the main thread cannot run the handler" in stderr
        assert [span.attributes["tcc.runId"] for span in spans] == ["stuck"]
        assert took < 2 + 1 + 0.5, f"took {took:.2f} s"
