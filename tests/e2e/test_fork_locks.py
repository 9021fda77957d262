"""Every lock of tcc_otel is fresh in a forked child: a child forked while another thread of
the parent holds any of them records and delivers a run, and never hangs."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers.clients import fresh_client
from helpers.delivery import HANG_GUARD, wait_until

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel._local._server import Receiver

LOCKS: dict[str, Callable[[Client], Any]] = {
    "client": lambda client: client._lock,
    "stats": lambda client: client.stats._lock,
    "pipeline": lambda client: client.pipeline().sink._lock,  # type: ignore[union-attr]
    "exporter": lambda client: client.pipeline().sink._exporter._count_lock,  # type: ignore[union-attr]
    "registry": lambda client: client.runs._lock,
}
"""Where each lock lives, from the client in use."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback OTLP/HTTP receiver, stopped in teardown."""
    with Receiver("127.0.0.1", 0) as running:
        yield running


def held_by_another_thread(lock: Any) -> Callable[[], None]:
    """Have a new thread take ``lock`` and keep it; return the function that lets it go."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            taken.set()
            release.wait(HANG_GUARD)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(HANG_GUARD)

    def let_go() -> None:
        release.set()
        thread.join(HANG_GUARD)

    return let_go


def wait_for_child(pid: int) -> int | None:
    """The child's exit code, or ``None`` if it hung past the guard (it is killed then)."""
    end = time.monotonic() + HANG_GUARD
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_child_forked_while_a_lock_is_held(name: str, receiver: Receiver) -> None:
    """While another thread of the parent holds the lock, a forked child records a run and
    flushes it; it exits 0 and its spans arrive exactly once, as do the parent's."""
    with fresh_client() as client:
        tcc.configure(base_url=receiver.url)
        with tcc.run(run_id="parent") as r:  # the parent exports first: threads, connection
            r.prompt("before the fork")
        assert tcc.flush(HANG_GUARD)
        let_go = held_by_another_thread(LOCKS[name](client))
        try:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child reports through its exit code
                code = 1
                try:
                    with tcc.run(run_id="child") as child:
                        child.prompt("after the fork")
                        with child.step() as s:
                            s.prompt("p").response("r")
                    code = 0 if tcc.flush(HANG_GUARD / 2) else 2
                finally:
                    os._exit(code)
        finally:
            let_go()
        assert wait_for_child(pid) == 0
        assert wait_until(lambda: len(receiver.spans) >= 3)
    runs = sorted((span.attributes["tcc.runId"], span.name) for span in receiver.spans)
    assert runs == [("child", "chat"), ("child", "invoke_agent"), ("parent", "invoke_agent")]
