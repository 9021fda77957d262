"""Process hooks: what tcc_otel does after a fork, at every way a process ends, and on SIGTERM.

- Fork: objects register a method to run in the child (fresh locks, no threads, no
  connection); held weakly, so the registry never keeps them alive.
- Exit: ``atexit`` for a normal exit; multiprocessing workers leave through ``os._exit`` after
  multiprocessing's own finalizers, and Celery's prefork children after its
  ``worker_process_shutdown`` signal, so those get the same shutdown too.
- Threads: ours never take SIGTERM (see ``_sigterm`` for the handler).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

from tcc_otel._guard import Guard

_MP_EXIT_PRIORITY = -100
"""Run after the application's own multiprocessing finalizers, which may still end spans."""

_AFTER_FORK = Guard("resetting tcc_otel after fork", reraise=False)
_fork_children: list[weakref.WeakMethod[Callable[[], None]]] = []


def on_fork_child(method: Callable[[], None]) -> None:
    """Call the bound ``method`` in every child forked from now on (held weakly)."""
    _fork_children.append(weakref.WeakMethod(method))


def _run_fork_children() -> None:
    alive = []
    for ref in _fork_children:
        method = ref()
        if method is None:
            continue
        alive.append(ref)
        with _AFTER_FORK:  # a failing hook must not break the application's child
            method()
    _fork_children[:] = alive


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_run_fork_children)


def background_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread of tcc_otel's (not started) that never takes SIGTERM.

    Linux delivers a process's signal to any thread that does not block it. Python runs
    handlers on the main thread only, and only a signal delivered to the main thread
    interrupts a blocking call there; so with SIGTERM blocked in our threads, a handler
    (ours or the application's) runs even when the main thread waits in a lock or a read.
    """

    def run() -> None:
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        target()

    return threading.Thread(target=run, name=name, daemon=True)


def register_worker_exit(shutdown: Callable[[], None]) -> None:
    """Run ``shutdown`` when a worker process ends through ``os._exit`` (``atexit`` covers a
    normal exit): call once per process, again in a forked child, where multiprocessing has
    cleared the finalizers it inherited."""
    mp = sys.modules.get("multiprocessing")
    if mp is not None and mp.parent_process() is not None:  # a multiprocessing worker
        from multiprocessing import util

        util.Finalize(None, shutdown, exitpriority=_MP_EXIT_PRIORITY)
    celery_signals = sys.modules.get("celery.signals")
    if celery_signals is not None:  # prefork children leave by os._exit after this signal

        def on_worker_exit(**_: Any) -> None:
            shutdown()

        celery_signals.worker_process_shutdown.connect(
            on_worker_exit, weak=False, dispatch_uid="tcc_otel"
        )
