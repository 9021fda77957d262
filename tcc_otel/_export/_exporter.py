"""Exporter: delivers batches through a transport (OTLP/HTTP or gRPC) with retries, backoff, 413
splits and a shutdown deadline, and counts every span's outcome."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from enum import Enum

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tcc_otel._export._batch import Batch
from tcc_otel._export._http import HttpTransport
from tcc_otel._export._reply import Reply, Transport, Verdict
from tcc_otel._export._stats import Stats
from tcc_otel._export._wire import sdk_origin, sdk_span
from tcc_otel._log import RateLimitedLog, logger


class Outcome(Enum):
    """What became of a batch."""

    DELIVERED = "delivered"
    REJECTED = "rejected"  # refused for good: sending it again would not help
    DROPPED = "dropped"  # retries ran out (counted as dropped)
    KEPT = "kept"  # retries ran out, but the batch is spooled: nothing was dropped


_MAX_BACKOFF = 8.0


class Exporter(SpanExporter):
    """Delivers batches through a ``Transport``; never raises into the caller.

    Only the sender thread calls ``deliver``/``export``, so the transport needs no lock.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        stats: Stats,
        timeout: float = 10.0,
        retry_budget: float = 30.0,
    ) -> None:
        self.transport = transport
        self._stats = stats
        self._timeout = timeout
        self._retry_budget = retry_budget
        self._deadline: float | None = None
        self._log = RateLimitedLog()
        self._init_locks()

    def _init_locks(self) -> None:
        self._wake = threading.Event()  # set to cut a backoff sleep short
        # Outcome counting: the pipeline may give up on an export at shutdown (abandon) while
        # the sender is still inside it; the lock makes sure each span is counted once.
        self._count_lock = threading.Lock()
        self._uncounted = 0
        self._abandoned = False

    def set_deadline(self, deadline: float | None) -> None:
        """Bound every later request and retry by ``deadline`` (a ``time.monotonic()`` value)."""
        self._deadline = deadline
        self._wake.set()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode and send SDK spans; count them as exported or dropped with a reason."""
        if not spans:
            return SpanExportResult.SUCCESS
        batch = Batch()
        try:
            for item in spans:
                batch.add(sdk_origin(item), sdk_span(item))
        except Exception:  # a bad attribute must cost its batch, not the worker thread
            self._stats.drop("encode_error", len(spans))
            logger.exception("encoding %d spans failed; they were dropped", len(spans))
            return SpanExportResult.FAILURE
        delivered = self.deliver(batch) is Outcome.DELIVERED
        return SpanExportResult.SUCCESS if delivered else SpanExportResult.FAILURE

    def deliver(self, batch: Batch, *, keep: bool = False) -> Outcome:
        """Send ``batch``, retrying and splitting when it is too large.

        Its spans are counted as exported or dropped with a reason, unless ``abandon()`` is
        called meanwhile. With ``keep`` (the batch is spooled), running out of retries drops
        nothing: the outcome is ``KEPT`` and the caller keeps the batch.
        """
        with self._count_lock:
            self._uncounted = batch.count
            self._abandoned = False
        return self._send(batch, keep)

    def shutdown(self) -> None:
        """Close the connection and stop waiting in any backoff."""
        self._deadline = time.monotonic()
        self._wake.set()
        self.transport.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return True

    def after_fork(self) -> None:
        """In a forked child: fresh locks, no deadline, and never the parent's connection."""
        self._init_locks()
        self._deadline = None
        self.transport.forget()

    def _send(self, batch: Batch, keep: bool) -> Outcome:
        n = batch.count
        end = time.monotonic() + self._retry_budget
        attempt = 0
        reason, why = "deadline", "out of time"
        while True:
            self._wake.clear()  # a deadline set from here on cuts the next wait short
            remaining = self._limit(end) - time.monotonic()
            if remaining <= 0:
                return self._give_up(n, self._reason(end, reason), why, keep)
            reply = self._attempt(batch, min(self._timeout, remaining))
            verdict = reply.verdict
            if verdict is Verdict.OK:
                self._count("exported", n)
                return Outcome.DELIVERED
            if verdict is Verdict.TOO_LARGE and batch.splittable:
                first, second = batch.split()
                outcomes = {self._send(first, keep), self._send(second, keep)}
                # a spooled batch stays whole on disk: if half of it is kept, all of it is
                for worst in (Outcome.KEPT, Outcome.DROPPED, Outcome.REJECTED):
                    if worst in outcomes:
                        return worst
                return Outcome.DELIVERED
            if verdict is not Verdict.RETRY:
                return self._reject(n, reply)
            delay = reply.retry_after if reply.retry_after is not None else self._backoff(attempt)
            reason, why = reply.reason, reply.why
            if time.monotonic() + delay >= self._limit(end):
                return self._give_up(n, reason, why, keep)
            self._count("retried", n)
            self._log.warning(
                "retry",
                "export to %s failed (%s); retrying %d spans",
                self.transport.target,
                why,
                n,
            )
            attempt += 1
            self._wake.wait(delay)

    def _attempt(self, batch: Batch, timeout: float) -> Reply:
        """One attempt through the transport (the doctor's probe overrides this to watch)."""
        return self.transport.send(batch, timeout)

    def _limit(self, end: float) -> float:
        deadline = self._deadline
        return end if deadline is None else min(end, deadline)

    def _reason(self, end: float, failure: str) -> str:
        """Why a batch is given up before its next attempt: the shutdown deadline cut the wait
        short, or the retry budget ran out after its last failure."""
        deadline = self._deadline
        return "deadline" if deadline is not None and deadline <= end else failure

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: 0.5 s, 1 s, 2 s ... capped."""
        return random.uniform(0.5, 1.0) * min(_MAX_BACKOFF, 0.5 * 2.0**attempt)

    def _reject(self, n: int, reply: Reply) -> Outcome:
        total = self._drop(reply.reason, n)
        self._log.warning(
            reply.reason,
            "%s refused %d spans with %s%s; %d spans dropped so far",
            self.transport.target,
            n,
            reply.why,
            reply.hint,
            total,
        )
        return Outcome.REJECTED

    def _give_up(self, n: int, reason: str, why: str, keep: bool) -> Outcome:
        if keep:
            self._count("kept", n)
            self._log.warning(
                "kept",
                "export to %s failed (%s); %d spans stay in the spool for a later attempt",
                self.transport.target,
                why,
                n,
            )
            return Outcome.KEPT
        total = self._drop(reason, n)
        self._log.warning(
            "give_up",
            "export to %s failed (%s); %d spans dropped, %d so far",
            self.transport.target,
            why,
            n,
            total,
        )
        return Outcome.DROPPED

    def abandon(self) -> int:
        """Stop counting the export in progress; return how many of its spans were not yet
        counted, for the caller to count as lost. Later outcomes of that export are ignored."""
        with self._count_lock:
            self._abandoned = True
            left, self._uncounted = self._uncounted, 0
            return left

    def _count(self, name: str, n: int) -> None:
        with self._count_lock:
            if self._abandoned:
                return
            if name in ("exported", "kept"):
                self._uncounted -= n
            self._stats.add(name, n)

    def _drop(self, reason: str, n: int) -> int:
        with self._count_lock:
            if self._abandoned:
                return 0
            self._uncounted -= n
            return self._stats.drop(reason, n)


class OtlpHttpExporter(Exporter):
    """An ``Exporter`` posting OTLP/HTTP protobuf to ``url`` (gzip, keep-alive)."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None,
        headers: dict[str, str] | None = None,
        stats: Stats,
        timeout: float = 10.0,
        retry_budget: float = 30.0,
        gzip: bool = True,
    ) -> None:
        super().__init__(
            HttpTransport(url, api_key=api_key, headers=headers, gzip=gzip),
            stats=stats,
            timeout=timeout,
            retry_budget=retry_budget,
        )
