"""Process hooks: what tcc_otel does after a fork, at every way a process ends, and on SIGTERM.

- Fork: objects register a method to run in the child (fresh locks, no threads, no
  connection); held weakly, so the registry never keeps them alive.
- Exit: ``atexit`` for a normal exit; multiprocessing workers leave through ``os._exit`` after
  multiprocessing's own finalizers, and Celery's prefork children after its
  ``worker_process_shutdown`` signal, so those get the same shutdown too.
- SIGTERM: if nobody handles it (default disposition) when export starts on the main thread,
  our handler delivers what is pending, then ends the process by SIGTERM as before. A handler
  the application or its server installed, before or after us, is never replaced or called.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any

from tcc_otel._log import logger

_MP_EXIT_PRIORITY = -100
"""Run after the application's own multiprocessing finalizers, which may still end spans."""

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
        try:
            method()
        except Exception:  # a failing hook must not break the application's child
            logger.exception("resetting tcc_otel after fork failed")
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


class SigtermHook:
    """Our SIGTERM handler, installed only where SIGTERM has its default disposition."""

    def __init__(self, on_sigterm: Callable[[], None]) -> None:
        self._on_sigterm = on_sigterm
        self.settled = False  # installed, or found someone else's: nothing more to try

    def install(self) -> None:
        """Install the handler if SIGTERM is unhandled; only the main thread can, so on another
        thread this is tried again later."""
        if self.settled or threading.current_thread() is not threading.main_thread():
            return
        self.settled = True
        try:
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, self._handle)
        except (ValueError, OSError):  # no signals here (an embedded interpreter): nothing to do
            logger.debug("could not install the SIGTERM handler", exc_info=True)

    def uninstall(self) -> None:
        """Give SIGTERM back its default disposition, if our handler is still the one set."""
        self.settled = False
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            if signal.getsignal(signal.SIGTERM) == self._handle:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
        except (ValueError, OSError):
            logger.debug("could not restore SIGTERM", exc_info=True)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """Deliver what is pending (bounded by the shutdown timeout), then die by SIGTERM."""
        try:
            self._on_sigterm()
        except BaseException:  # whatever happens, the process still ends as asked
            logger.exception("delivering spans on SIGTERM failed")
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)
            os._exit(128 + signal.SIGTERM)  # only reached if the signal is blocked
