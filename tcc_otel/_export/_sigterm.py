"""SIGTERM: when nothing handles it (default disposition) as export starts on the main thread,
deliver what is pending, then end the process by SIGTERM as before. A handler the application
or its server installed, before or after us, is never replaced or called.

Python runs signal handlers on the main thread only, between bytecodes, and a blocking call is
interrupted only by a signal that arrives during it. A SIGTERM that lands just before the main
thread blocks (in a lock or a semaphore wait, say) would therefore leave the process unkillable
by SIGTERM, where the default disposition would have ended it. So when the signal module's
wakeup fd is free, a watchdog thread reads it: if SIGTERM came and our handler has not started,
it signals the main thread again (which interrupts the wait), and if even that cannot run the
handler it delivers itself and ends the process with the status a shell gives SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from tcc_otel._export._process import background_thread, on_fork_child
from tcc_otel._log import logger

_NUDGE_AFTER = 0.2
"""Seconds the handler may take to start before the main thread is signalled again."""
_NUDGE_EVERY = 0.5


class SigtermHook:
    """Our SIGTERM handler, installed only where SIGTERM has its default disposition."""

    def __init__(self, on_sigterm: Callable[[], None], timeout: Callable[[], float]) -> None:
        self._on_sigterm = on_sigterm
        self._timeout = timeout  # seconds the delivery may take (TCC_SHUTDOWN_TIMEOUT)
        self.settled = False  # installed, or found someone else's: nothing more to try
        self._handling = False  # the handler started on the main thread
        self._wakeup: tuple[int, int] | None = None  # the pipe whose write end we gave signal
        on_fork_child(self._after_fork)

    def install(self) -> None:
        """Install the handler if SIGTERM is unhandled; only the main thread can, so on another
        thread this is tried again later."""
        if self.settled or threading.current_thread() is not threading.main_thread():
            return
        self.settled = True
        try:
            current = signal.getsignal(signal.SIGTERM)
            if current is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, self._handle)
            elif current != self._handle:  # the application's, or inherited from a fork: ours
                return
            self._watch()
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
            self._unwatch()
        except (ValueError, OSError):
            logger.debug("could not restore SIGTERM", exc_info=True)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """Deliver what is pending (bounded by the shutdown timeout), then die by SIGTERM."""
        self._handling = True
        try:
            self._on_sigterm()
        except BaseException:  # whatever happens, the process still ends as asked
            logger.exception("delivering spans on SIGTERM failed")
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)
            os._exit(128 + signal.SIGTERM)  # only reached if the signal is blocked

    # --- the watchdog -----------------------------------------------------------------------

    def _watch(self) -> None:
        """Take the wakeup fd if nobody has it, and read it on a watchdog thread (main thread)."""
        if self._wakeup is not None or not hasattr(signal, "pthread_kill"):
            return
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        if previous != -1:  # the application's (asyncio's, say): give it back, do without
            signal.set_wakeup_fd(previous)
            os.close(read_end)
            os.close(write_end)
            return
        self._wakeup = (read_end, write_end)
        background_thread(lambda: self._watchdog(read_end), "tcc_otel-sigterm").start()

    def _unwatch(self) -> None:
        """Give the wakeup fd back (main thread); the watchdog ends."""
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is None:
            return
        write_end = wakeup[1]
        previous = signal.set_wakeup_fd(-1)
        if previous not in (write_end, -1):
            signal.set_wakeup_fd(previous)  # someone replaced ours meanwhile: keep theirs
        os.close(write_end)  # the watchdog reads EOF, closes the read end and ends

    def _watchdog(self, read_end: int) -> None:
        """Wait for SIGTERM to arrive; make sure the process ends by it."""
        term = bytes([signal.SIGTERM])
        try:
            while True:
                data = os.read(read_end, 64)
                if not data:  # uninstalled: the write end is closed
                    os.close(read_end)
                    return
                if term in data:
                    break  # the read end stays open: signals still write to the other end
        except OSError:
            return
        deadline = time.monotonic() + self._timeout() + 1.0
        nudge_at = time.monotonic() + _NUDGE_AFTER
        while not self._handling and time.monotonic() < deadline:
            time.sleep(0.02)
            if not self._handling and time.monotonic() >= nudge_at:
                main = threading.main_thread().ident
                if main is not None:
                    signal.pthread_kill(main, signal.SIGTERM)  # interrupts a blocking wait
                nudge_at = time.monotonic() + _NUDGE_EVERY
        if self._handling:
            return  # the handler delivers and ends the process
        logger.warning("SIGTERM: the main thread cannot run the handler; delivering from here")
        try:
            self._on_sigterm()
        finally:
            os._exit(128 + signal.SIGTERM)

    def _after_fork(self) -> None:
        """In a forked child: the inherited wakeup pipe is the parent's (its watchdog reads
        it): give it back, and watch again on the child's first export."""
        self._handling = False
        self.settled = False
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is None:
            return
        with contextlib.suppress(ValueError):  # forked from a thread that is not the main one
            signal.set_wakeup_fd(-1)
        for fd in wakeup:
            os.close(fd)
