"""Background span processor: a bounded queue drained by one worker thread into the exporter."""

from __future__ import annotations

import collections
import os
import threading
import time
import weakref
from collections.abc import Callable, Hashable

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from tcc_otel import _attributes as attrs
from tcc_otel._exporter import OtlpHttpExporter
from tcc_otel._log import RateLimitedLog, logger
from tcc_otel._stats import Stats


class BackgroundProcessor(SpanProcessor):
    """Queues ended spans that belong to a run and exports them off the caller's thread.

    Several processors may sit on one provider, one per destination: each takes the spans
    whose run ``route_of`` maps to its ``route`` (``None`` for the configured destination).

    The caller only appends to a deque under a short lock; encoding and I/O happen on the
    worker. A full queue drops the span and counts it: the caller never waits.
    """

    def __init__(
        self,
        exporter: OtlpHttpExporter,
        stats: Stats,
        *,
        max_queue: int = 20_000,
        batch_size: int = 512,
        delay: float = 0.5,
        route: Hashable | None = None,
        route_of: Callable[[str], Hashable | None] | None = None,
    ) -> None:
        self._exporter = exporter
        self._route = route
        self._route_of = route_of
        self._stats = stats
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._delay = delay
        self._log = RateLimitedLog()
        self._init_state()
        _live.add(self)

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._flush_requests: list[threading.Event] = []
        self._in_flight = 0
        self._closed = False
        self._retired = False
        self._worker: threading.Thread | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue ``span`` if it belongs to a run; count it dropped if the queue is full."""
        span_attrs = span.attributes
        run_id = span_attrs.get(attrs.TCC_RUN_ID) if span_attrs else None
        if not isinstance(run_id, str):
            return  # the user's own spans outside our records are not ours to send
        if self._route_of is not None and self._route_of(run_id) != self._route:
            return  # the run has its own key or URL: another processor sends it
        with self._lock:
            if self._retired:
                return  # configure() replaced us; the new processor takes this span
            self._stats.add("recorded")
            if self._closed:
                reason = "after_shutdown"
            elif len(self._queue) >= self._max_queue:
                reason = "queue_full"
            else:
                self._queue.append(span)
                if self._worker is None:
                    self._start_worker()
                if len(self._queue) >= self._batch_size:
                    self._wake.notify()
                return
        total = self._stats.drop(reason, 1)
        self._log.warning(reason, "a span was dropped (%s); %d spans dropped so far", reason, total)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything queued now; ``True`` if it finished within the timeout."""
        done = threading.Event()
        with self._lock:
            if not self._queue and not self._in_flight:
                return True
            if self._worker is None:
                self._start_worker()
            self._flush_requests.append(done)
            self._wake.notify()
        return done.wait(timeout_millis / 1000)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop; idempotent."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._closed:
                return
            self._closed = True
            worker = self._worker
            self._wake.notify()
        self._exporter.set_deadline(deadline)
        if worker is not None:
            worker.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            lost = len(self._queue)
            self._queue.clear()
            in_flight = self._in_flight
        if in_flight:  # the worker is still inside an export: count what it has not counted
            lost += self._exporter.abandon()
        if lost:
            total = self._stats.drop("shutdown_timeout", lost)
            logger.warning(
                "%d spans were not delivered within the %.1f s shutdown deadline; "
                "%d spans dropped in all",
                lost,
                timeout,
                total,
            )
        self._exporter.shutdown()

    def retire(self) -> None:
        """Ignore spans from now on: a newer processor on the same provider takes them."""
        with self._lock:
            self._retired = True

    def pending(self) -> int:
        """Spans queued or being exported."""
        with self._lock:
            return len(self._queue) + self._in_flight

    def _start_worker(self) -> None:
        # called with the lock held
        self._worker = threading.Thread(target=self._run, name="tcc_otel-export", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not (
                    self._closed or self._flush_requests or len(self._queue) >= self._batch_size
                ):
                    self._wake.wait(self._delay)
                take = min(self._batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(take)]
                self._in_flight = len(batch)
                flushes: list[threading.Event] = []
                if not self._queue:
                    flushes, self._flush_requests = self._flush_requests, []
                stop = self._closed and not self._queue
            if batch:
                try:
                    self._exporter.export(batch)
                except Exception:  # the exporter already counts and logs; this is a last guard
                    self._stats.drop("export_error", len(batch))
                    logger.exception("exporting %d spans failed; they were dropped", len(batch))
            with self._lock:
                self._in_flight = 0
            for done in flushes:
                done.set()
            if stop:
                return

    def _after_fork(self) -> None:
        # The worker thread does not survive fork; start afresh with an empty queue in the child.
        self._init_state()


_live: weakref.WeakSet[BackgroundProcessor] = weakref.WeakSet()


def _reinit_after_fork() -> None:
    for processor in list(_live):
        processor._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
