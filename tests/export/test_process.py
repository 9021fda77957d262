"""Process hooks: fork callbacks held weakly, and the SIGTERM handler installed only where
nobody else handles SIGTERM (the deployment suites show them in real processes)."""

from __future__ import annotations

import gc
import os
import signal

from tcc_otel._export._process import background_thread, on_fork_child


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
