"""What one export attempt got back, whatever the transport (HTTP or gRPC)."""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple, Protocol

from tcc_otel._export._batch import Batch


class Verdict(Enum):
    """What to do with a batch after one attempt."""

    OK = "ok"  # accepted
    RETRY = "retry"  # try again after a backoff (or the server's delay)
    TOO_LARGE = "too_large"  # split it and send the halves
    REJECT = "reject"  # sending it again would not help: drop it, counted


class Reply(NamedTuple):
    """One attempt's result, in the transport's own words and in the exporter's."""

    verdict: Verdict
    reason: str
    """Key for counters and rate-limited logs: ``http_503``, ``grpc_unavailable``,
    ``unreachable``; empty when accepted."""
    why: str
    """For log lines: ``HTTP 503``, ``ConnectionRefusedError``, ``gRPC UNAVAILABLE``."""
    status: int | None = None
    """HTTP status or gRPC status code; ``None`` when no answer came."""
    retry_after: float | None = None
    """Seconds the server asked us to wait before the next attempt."""
    error: str | None = None
    """Type name of the connection error, when no answer came."""
    hint: str = ""
    """Advice appended to the log line of a rejection, e.g. to check the API key."""


class Transport(Protocol):
    """Sends a batch once; the exporter retries, splits and counts around it."""

    target: str
    """Where batches go, safe to log (credentials redacted)."""

    def send(self, batch: Batch, timeout: float) -> Reply:
        """One attempt bounded by ``timeout`` seconds; never raises."""
        ...

    def close(self) -> None:
        """Release the connection; a later ``send`` opens a new one."""
        ...

    def forget(self) -> None:
        """In a forked child: drop the parent's connection without using it."""
        ...
