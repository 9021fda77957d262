"""OTLP/HTTP transport: one ``POST`` of a batch's protobuf body on a keep-alive connection.

Everything the sender thread needs is imported with this module: an import that thread started
lazily (``encodings.idna``, on the first connect) would leave its module lock held in a process
forked meanwhile, and the child's sender would wait on it forever.
"""

from __future__ import annotations

import email.utils
import encodings.idna  # noqa: F401 -- imported by the first connect otherwise: see below
import http.client
import time
from urllib.parse import urlsplit

from tcc_otel._export._batch import Batch
from tcc_otel._export._reply import Reply, Verdict
from tcc_otel._schema._redact import redact_url
from tcc_otel._version import __version__

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
"""HTTP statuses the OTLP specification says to retry."""
_AUTH_HINT = " (check TCC_API_KEY)"


class HttpTransport:
    """Posts ``ExportTraceServiceRequest`` bodies to one URL; never raises.

    Only the sender thread uses it, so the connection needs no lock.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        gzip: bool = True,
    ) -> None:
        parts = urlsplit(url)
        self.target = redact_url(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port
        self._path = parts.path or "/"
        self._gzip = gzip
        self._headers: dict[str, str] = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": f"tcc-otel/{__version__}",
        }
        if gzip:
            self._headers["Content-Encoding"] = "gzip"
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._headers.update(headers or {})  # OTEL_EXPORTER_OTLP_HEADERS in collector mode
        self._conn: http.client.HTTPConnection | None = None

    def send(self, batch: Batch, timeout: float) -> Reply:
        """One request with ``batch``'s body, bounded by ``timeout`` seconds."""
        body = batch.compressed() if self._gzip else batch.body()
        try:
            conn = self._connection(timeout)
            conn.request("POST", self._path, body=body, headers=self._headers)
            response = conn.getresponse()
            response.read()
            if response.will_close:
                self.close()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            error = type(exc).__name__
            return Reply(Verdict.RETRY, "unreachable", error, error=error)
        return _reply(response.status, response.getheader("Retry-After"))

    def close(self) -> None:
        """Close the connection; the next ``send`` opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def forget(self) -> None:
        """In a forked child: drop the parent's connection without a word on it."""
        self._conn = None  # closing our copy of the socket sends nothing; the parent keeps it

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = self._conn = cls(self._host, self._port, timeout=timeout)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn


def _reply(status: int, retry_after: str | None) -> Reply:
    """What an HTTP status means for the batch."""
    why = f"HTTP {status}"
    if 200 <= status < 300:
        return Reply(Verdict.OK, "", why, status=status)
    if status == 413:
        return Reply(Verdict.TOO_LARGE, "http_413", why, status=status)
    if status in RETRYABLE_STATUSES:
        return Reply(
            Verdict.RETRY, f"http_{status}", why, status=status, retry_after=_seconds(retry_after)
        )
    hint = _AUTH_HINT if status in (401, 403) else ""
    return Reply(Verdict.REJECT, f"http_{status}", why, status=status, hint=hint)


def _seconds(value: str | None) -> float | None:
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
