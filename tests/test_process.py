"""Process hooks: fork callbacks held weakly, and the SIGTERM handler installed only where
nobody else handles SIGTERM (the deployment suites show them in real processes)."""

from __future__ import annotations

import gc
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from tcc_otel._export._process import SigtermHook, background_thread, on_fork_child


@pytest.fixture
def sigterm() -> Iterator[None]:
    """SIGTERM's disposition is put back as it was after the test."""
    saved = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, saved)


class Resettable:
    """An object with a method to run in a forked child."""

    def __init__(self, write_end: int) -> None:
        self.write_end = write_end

    def reset(self) -> None:
        os.write(self.write_end, b"reset")


class TestForkChild:
    """``on_fork_child``: methods run in each forked child, objects are not kept alive."""

    def test_runs_in_the_child(self) -> None:
        """A registered method runs in the child of a fork, not in the parent."""
        read_end, write_end = os.pipe()
        target = Resettable(write_end)
        on_fork_child(target.reset)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe and leaves
            os._exit(0)
        os.waitpid(pid, 0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            assert pipe.read() == b"reset"

    def test_held_weakly(self) -> None:
        """Registering a method does not keep its object alive."""
        read_end, write_end = os.pipe()
        target = Resettable(write_end)
        on_fork_child(target.reset)
        del target
        gc.collect()
        pid = os.fork()
        if pid == 0:  # pragma: no cover
            os._exit(0)
        os.waitpid(pid, 0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            assert pipe.read() == b""


@pytest.mark.usefixtures("sigterm")
class TestSigtermHook:
    """Where the handler goes in, and where it stays out."""

    def test_installed_over_the_default(self) -> None:
        """With SIGTERM at its default, install() on the main thread puts our handler in."""
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        hook = SigtermHook(lambda: None)
        hook.install()
        assert (hook.settled, signal.getsignal(signal.SIGTERM)) == (True, hook._handle)

    def test_application_handler_left_alone(self) -> None:
        """A handler the application installed first is neither replaced nor tried again."""

        def mine(signum: int, frame: FrameType | None) -> None:
            """The application's handler."""

        signal.signal(signal.SIGTERM, mine)
        hook = SigtermHook(lambda: None)
        hook.install()
        assert (hook.settled, signal.getsignal(signal.SIGTERM)) == (True, mine)

    def test_ignored_left_alone(self) -> None:
        """SIGTERM ignored by the application stays ignored."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        SigtermHook(lambda: None).install()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN

    def test_other_thread_tries_later(self) -> None:
        """Off the main thread nothing is installed, and a later call from the main thread
        still can."""
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        hook = SigtermHook(lambda: None)
        thread = threading.Thread(target=hook.install)
        thread.start()
        thread.join()
        assert (hook.settled, signal.getsignal(signal.SIGTERM)) == (False, signal.SIG_DFL)
        hook.install()
        assert signal.getsignal(signal.SIGTERM) == hook._handle

    def test_uninstall_only_ours(self) -> None:
        """uninstall() restores the default only while our handler is the one set."""

        def later(signum: int, frame: FrameType | None) -> None:
            """A handler the application set after ours."""

        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        hook = SigtermHook(lambda: None)
        hook.install()
        signal.signal(signal.SIGTERM, later)
        hook.uninstall()
        assert signal.getsignal(signal.SIGTERM) == later
        signal.signal(signal.SIGTERM, hook._handle)
        hook.uninstall()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


class TestBackgroundThread:
    """tcc_otel's threads never take SIGTERM, so it reaches the main thread's handler."""

    def test_sigterm_blocked_in_the_thread(self) -> None:
        """Inside a thread made by ``background_thread`` SIGTERM is blocked; the thread that
        made it keeps its own mask."""
        seen: list[set[int]] = []
        thread = background_thread(lambda: seen.append(current_mask()), "tcc_otel-test")
        thread.start()
        thread.join()
        assert (thread.daemon, signal.SIGTERM in seen[0]) == (True, True)
        assert signal.SIGTERM not in current_mask()


def current_mask() -> set[int]:
    """The calling thread's blocked signals, as numbers."""
    return {int(number) for number in signal.pthread_sigmask(signal.SIG_BLOCK, [])}
