"""OTLP/HTTP protobuf span exporter: gzip, keep-alive, retries with backoff, a shutdown deadline."""

from __future__ import annotations

import email.utils
import http.client
import random
import threading
import time
from collections.abc import Sequence
from enum import Enum
from urllib.parse import urlsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tcc_otel._batch import Batch
from tcc_otel._log import RateLimitedLog, logger
from tcc_otel._redact import redact_url
from tcc_otel._stats import Stats
from tcc_otel._version import __version__
from tcc_otel._wire import sdk_origin, sdk_span


class Outcome(Enum):
    """What became of a batch."""

    DELIVERED = "delivered"
    REJECTED = "rejected"  # a 4xx other than 413/429: sending it again would not help
    DROPPED = "dropped"  # retries ran out (counted as dropped)
    KEPT = "kept"  # retries ran out, but the batch is spooled: nothing was dropped


_RETRYABLE = frozenset({429, 502, 503, 504})
_MAX_BACKOFF = 8.0


class OtlpHttpExporter(SpanExporter):
    """Posts spans as ``ExportTraceServiceRequest`` protobuf; never raises into the caller.

    Only the processor's worker thread calls ``export``, so the connection needs no lock.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None,
        headers: dict[str, str] | None = None,
        stats: Stats,
        timeout: float = 10.0,
        retry_budget: float = 30.0,
    ) -> None:
        parts = urlsplit(url)
        self._url = url
        self._safe_url = redact_url(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port
        self._path = parts.path or "/"
        self._headers: dict[str, str] = {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
            "User-Agent": f"tcc-otel/{__version__}",
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._headers.update(headers or {})  # OTEL_EXPORTER_OTLP_HEADERS in collector mode
        self._stats = stats
        self._timeout = timeout
        self._retry_budget = retry_budget
        self._deadline: float | None = None
        self._wake = threading.Event()  # set to cut a backoff sleep short
        self._conn: http.client.HTTPConnection | None = None
        self._log = RateLimitedLog()
        # Outcome counting: the processor may give up on an export at shutdown (abandon) while
        # the worker is still inside it; the lock makes sure each span is counted once.
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
        """Send ``batch``, retrying and splitting on 413.

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
        self._close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return True

    def _send(self, batch: Batch, keep: bool) -> Outcome:
        n = batch.count
        payload = batch.compressed()
        end = time.monotonic() + self._retry_budget
        attempt = 0
        reason, why = "deadline", "out of time"
        while True:
            self._wake.clear()  # a deadline set from here on cuts the next wait short
            remaining = self._limit(end) - time.monotonic()
            if remaining <= 0:
                return self._give_up(n, self._reason(end, reason), why, keep)
            status, retry_after, error = self._post(payload, min(self._timeout, remaining))
            if status is not None and 200 <= status < 300:
                self._count("exported", n)
                return Outcome.DELIVERED
            if status == 413 and batch.splittable:
                first, second = batch.split()
                outcomes = {self._send(first, keep), self._send(second, keep)}
                # a spooled batch stays whole on disk: if half of it is kept, all of it is
                for worst in (Outcome.KEPT, Outcome.DROPPED, Outcome.REJECTED):
                    if worst in outcomes:
                        return worst
                return Outcome.DELIVERED
            if status is not None and status not in _RETRYABLE:
                return self._reject(n, status)
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            reason = "unreachable" if status is None else f"http_{status}"
            why = error or f"HTTP {status}"
            if time.monotonic() + delay >= self._limit(end):
                return self._give_up(n, reason, why, keep)
            self._count("retried", n)
            self._log.warning(
                "retry", "export to %s failed (%s); retrying %d spans", self._safe_url, why, n
            )
            attempt += 1
            self._wake.wait(delay)

    def _limit(self, end: float) -> float:
        deadline = self._deadline
        return end if deadline is None else min(end, deadline)

    def _reason(self, end: float, failure: str) -> str:
        """Why a batch is given up before its next attempt: the shutdown deadline cut the wait
        short, or the retry budget ran out after its last failure."""
        deadline = self._deadline
        return "deadline" if deadline is not None and deadline <= end else failure

    def _post(self, payload: bytes, timeout: float) -> tuple[int | None, float | None, str | None]:
        """One request: (status, Retry-After seconds, connection error) — never raises."""
        try:
            conn = self._connection(timeout)
            conn.request("POST", self._path, body=payload, headers=self._headers)
            response = conn.getresponse()
            response.read()
            if response.will_close:
                self._close()
            return response.status, _retry_after(response.getheader("Retry-After")), None
        except (OSError, http.client.HTTPException) as exc:
            self._close()
            return None, None, type(exc).__name__

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = self._conn = cls(self._host, self._port, timeout=timeout)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: 0.5 s, 1 s, 2 s ... capped."""
        return random.uniform(0.5, 1.0) * min(_MAX_BACKOFF, 0.5 * 2.0**attempt)

    def _reject(self, n: int, status: int) -> Outcome:
        total = self._drop(f"http_{status}", n)
        hint = " (check TCC_API_KEY)" if status in (401, 403) else ""
        self._log.warning(
            f"http_{status}",
            "%s refused %d spans with HTTP %d%s; %d spans dropped so far",
            self._safe_url,
            n,
            status,
            hint,
            total,
        )
        return Outcome.REJECTED

    def _give_up(self, n: int, reason: str, why: str, keep: bool) -> Outcome:
        if keep:
            self._count("kept", n)
            self._log.warning(
                "kept",
                "export to %s failed (%s); %d spans stay in the spool for a later attempt",
                self._safe_url,
                why,
                n,
            )
            return Outcome.KEPT
        total = self._drop(reason, n)
        self._log.warning(
            "give_up",
            "export to %s failed (%s); %d spans dropped, %d so far",
            self._safe_url,
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


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), capped."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(float(seconds), 60.0))
