"""OTLP/gRPC transport: one unary ``TraceService/Export`` call with a batch's protobuf body.

Only this module imports ``grpc`` (the ``tcc-otel[grpc]`` extra), and only when a transport is
made (collector mode over gRPC), so importing tcc_otel never loads it.

After ``fork()`` the child never touches the parent's channel, not even to close it: a call on
it writes into the connection the parent still uses. The child opens a channel of its own,
with a subchannel pool of its own so that it cannot pick up the parent's inherited connection.
With ``GRPC_ENABLE_FORK_SUPPORT`` switched off, gRPC cannot serve a child of a process that
opened a channel (calls never complete; the child may even abort), so such a child does not
call gRPC at all: its batches are dropped, counted, with the fix in the log line. Every wait
is bounded besides, so a child never hangs on gRPC.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any
from urllib.parse import urlsplit

from tcc_otel._export._batch import Batch
from tcc_otel._export._reply import Reply, Verdict
from tcc_otel._log import logger
from tcc_otel._schema._redact import redact_url
from tcc_otel._version import __version__

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
"""The OTLP trace service's only method."""
RETRYABLE_CODES = frozenset(
    {"CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "UNAVAILABLE", "DATA_LOSS"}
)
"""gRPC status codes the OTLP specification says to retry (``RESOURCE_EXHAUSTED`` only with
``RetryInfo``)."""
_AUTH_CODES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
_AUTH_HINT = " (check the headers in OTEL_EXPORTER_OTLP_HEADERS)"
_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_MAX_RETRY_DELAY = 60.0  # the same cap as an HTTP Retry-After
_BACKSTOP = 1.0  # seconds past a call's own deadline before we stop waiting for gRPC itself
_METADATA_KEY = re.compile(r"[0-9a-z_.-]+\Z")
_RESERVED_KEYS = frozenset({"content-type", "te", "user-agent"})
_FORK_OFF = frozenset({"0", "false", "no", "off"})
_FORK_WHY = "no gRPC in a forked process with GRPC_ENABLE_FORK_SUPPORT off"
_FORK_HINT = (
    "; unset GRPC_ENABLE_FORK_SUPPORT (or set it to 1), or send with "
    "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
)
_CONNECT_ERRORS = (
    # (text in the status details of a call that got no answer, error name reported)
    ("connection refused", "ConnectionRefusedError"),
    ("errors resolving", "gaierror"),
    ("dns resolution failed", "gaierror"),
    ("handshake failed", "SSLError"),
    ("failed parsing http/2", "HTTP2ProtocolError"),
    ("failed to connect", "ConnectionError"),
    ("connection reset", "ConnectionResetError"),
    ("socket closed", "ConnectionResetError"),
)

_inherited: list[object] = []
"""Channels a forked child inherited: kept referenced, because collecting one closes it."""
_opened_in: int | None = None
"""The process that last opened a channel here: this one, or one it was forked from."""


class GrpcTransport:
    """Sends ``ExportTraceServiceRequest`` bodies over one gRPC channel; never raises.

    Only the sender thread sends; ``close()`` may come from the thread that shuts down, so the
    channel is swapped under a lock that is never held during a call.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        headers: dict[str, str] | None = None,
        insecure: bool = False,
        gzip: bool = True,
    ) -> None:
        self.target = redact_url(endpoint)
        self._address, self._secure = parse_endpoint(endpoint, insecure=insecure)
        self._metadata = metadata(headers or {})
        self._gzip = gzip
        self._lock = threading.Lock()
        self._channel: Any = None
        self._call: Any = None
        self._pid = os.getpid()
        self._warned_fork = False
        # Imported here, on the thread that configures, not lazily on the sender thread: an
        # import in progress there would leave its module lock held in a child forked meanwhile.
        self._grpc: Any = None
        self._import_error = ""
        try:
            import grpc  # type: ignore[import-untyped]

            self._grpc = grpc
        except Exception as exc:  # a broken install: each send says so
            logger.debug("grpc could not be imported", exc_info=True)
            self._import_error = type(exc).__name__

    def send(self, batch: Batch, timeout: float) -> Reply:
        """One ``Export`` call with ``batch``'s body, bounded by ``timeout`` seconds."""
        if self._pid != os.getpid():
            self.forget()  # a fork the exporter was not told about
        if _fork_blocked():
            return Reply(Verdict.REJECT, "grpc_fork_unsupported", _FORK_WHY, hint=_FORK_HINT)
        grpc = self._grpc
        if grpc is None:
            why = f"gRPC client error ({self._import_error})"
            return Reply(Verdict.REJECT, "grpc_client_error", why)
        try:
            future = self._callable(grpc).future(
                batch.body(),
                timeout=timeout,
                metadata=self._metadata,
                compression=grpc.Compression.Gzip if self._gzip else None,
            )
        except Exception as exc:  # a broken install or a bad setting: retrying cannot help
            logger.debug("gRPC export to %s could not start", self.target, exc_info=True)
            name = type(exc).__name__
            return Reply(Verdict.REJECT, "grpc_client_error", f"gRPC client error ({name})")
        return self._wait(grpc, future, timeout)

    def close(self) -> None:
        """Close the channel (cancelling a call in flight); the next ``send`` opens a new one."""
        if self._pid != os.getpid():
            self.forget()  # never close the parent's channel from a child
            return
        with self._lock:
            channel, self._channel, self._call = self._channel, None, None
        if channel is not None:
            channel.close()

    def forget(self) -> None:
        """In a forked child: set the parent's channel aside unused; the next ``send`` opens
        the child's own."""
        self._lock = threading.Lock()  # the parent's may have been held by a thread now gone
        channel, self._channel, self._call = self._channel, None, None
        if channel is not None:
            _inherited.append(channel)
        self._pid = os.getpid()

    def _callable(self, grpc: Any) -> Any:
        global _opened_in
        with self._lock:
            if self._call is None:
                options = [
                    ("grpc.primary_user_agent", f"tcc-otel/{__version__}"),
                    # a channel of its own connections: never one inherited across fork()
                    ("grpc.use_local_subchannel_pool", 1),
                ]
                if self._secure:
                    credentials = grpc.ssl_channel_credentials()
                    channel = grpc.secure_channel(self._address, credentials, options=options)
                else:
                    channel = grpc.insecure_channel(self._address, options=options)
                _opened_in = os.getpid()
                self._channel = channel
                self._call = channel.unary_unary(
                    EXPORT_METHOD, request_serializer=None, response_deserializer=_keep
                )
            return self._call

    def _wait(self, grpc: Any, future: Any, timeout: float) -> Reply:
        """The call's outcome. gRPC ends it at its deadline; if gRPC cannot make progress at
        all (a fork child with fork support off), we stop waiting shortly after."""
        try:
            future.result(timeout=timeout + _BACKSTOP)
        except grpc.RpcError as exc:
            reply = status_reply(exc.code().name, exc.details() or "", exc.trailing_metadata())
            if reply.error is not None and reply.verdict is Verdict.RETRY:
                self.close()  # no answer: the next attempt connects afresh
            return reply
        except grpc.FutureTimeoutError:
            future.cancel()
            self._warn_fork()
            return Reply(
                Verdict.RETRY,
                "grpc_deadline_exceeded",
                "gRPC DEADLINE_EXCEEDED (TimeoutError)",
                status=_CODE_VALUES["DEADLINE_EXCEEDED"],
                error="TimeoutError",
            )
        except grpc.FutureCancelledError:  # close() from a shutdown
            return Reply(
                Verdict.RETRY,
                "grpc_cancelled",
                "gRPC CANCELLED",
                status=_CODE_VALUES["CANCELLED"],
            )
        except Exception as exc:  # never into the exporter: an error of ours, or of grpcio's
            logger.debug("gRPC export to %s failed", self.target, exc_info=True)
            name = type(exc).__name__
            return Reply(Verdict.REJECT, "grpc_client_error", f"gRPC client error ({name})")
        return Reply(Verdict.OK, "", "gRPC OK", status=0)

    def _warn_fork(self) -> None:
        """gRPC did not end a call even after its deadline: say the likely cause, once."""
        if self._warned_fork or not _fork_support_off():
            return
        self._warned_fork = True
        logger.warning(
            "gRPC did not complete a call to %s even after its deadline: with "
            "GRPC_ENABLE_FORK_SUPPORT off, gRPC cannot serve a process forked after a gRPC "
            "channel was opened%s",
            self.target,
            _FORK_HINT,
        )


def _fork_blocked() -> bool:
    """Whether this process was forked after a channel was opened, with fork support off."""
    return _opened_in is not None and _opened_in != os.getpid() and _fork_support_off()


def _fork_support_off() -> bool:
    """Whether ``GRPC_ENABLE_FORK_SUPPORT`` switches gRPC's fork support off."""
    return os.environ.get("GRPC_ENABLE_FORK_SUPPORT", "").strip().lower() in _FORK_OFF


def parse_endpoint(endpoint: str, *, insecure: bool) -> tuple[str, bool]:
    """``(host:port, secure)`` for an OTLP/gRPC endpoint, as the OpenTelemetry specification
    reads it: ``http://`` is plaintext, ``https://`` is TLS, and without a scheme ``insecure``
    decides. A path is ignored."""
    endpoint = endpoint.strip()
    if "://" not in endpoint:
        return endpoint.rstrip("/"), not insecure
    parts = urlsplit(endpoint)
    secure = parts.scheme.lower() == "https"
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    port = parts.port if parts.port is not None else (443 if secure else 80)
    return f"{host}:{port}", secure


def metadata(headers: dict[str, str]) -> tuple[tuple[str, str | bytes], ...]:
    """gRPC metadata from ``OTEL_EXPORTER_OTLP_HEADERS``: keys lower-cased; entries gRPC would
    refuse (bad key, non-ASCII value, a key gRPC sets itself) are left out and named in a log
    line (never their values)."""
    out: list[tuple[str, str | bytes]] = []
    skipped: list[str] = []
    for raw_key, value in headers.items():
        key = raw_key.strip().lower()
        if not _METADATA_KEY.match(key) or key.startswith("grpc-") or key in _RESERVED_KEYS:
            skipped.append(raw_key)
        elif key.endswith("-bin"):
            out.append((key, value.encode("utf-8")))
        elif value.isascii() and value.isprintable():
            out.append((key, value))
        else:
            skipped.append(raw_key)
    if skipped:
        logger.warning(
            "OTEL_EXPORTER_OTLP_HEADERS: %s cannot be sent as gRPC metadata and %s left out",
            ", ".join(repr(name) for name in skipped),
            "is" if len(skipped) == 1 else "are",
        )
    return tuple(out)


def status_reply(code: str, details: str, trailing: Any) -> Reply:
    """What a gRPC status (by name, e.g. ``UNAVAILABLE``) means for the batch."""
    status = _CODE_VALUES.get(code)
    reason, why = f"grpc_{code.lower()}", f"gRPC {code}"
    if code == "OK":
        return Reply(Verdict.OK, "", why, status=status)
    error = no_answer(code, details)
    if error is not None:
        why += f" ({error})"
    delay = retry_delay(trailing)
    if code in RETRYABLE_CODES or (code == "RESOURCE_EXHAUSTED" and delay is not None):
        return Reply(Verdict.RETRY, reason, why, status=status, retry_after=delay, error=error)
    if code == "RESOURCE_EXHAUSTED" and "larger than max" in details.lower():
        return Reply(Verdict.TOO_LARGE, reason, why, status=status)  # over the receiver's size
    hint = _AUTH_HINT if code in _AUTH_CODES else ""
    return Reply(Verdict.REJECT, reason, why, status=status, hint=hint, error=error)


def no_answer(code: str, details: str) -> str | None:
    """The name of the error when the status was made by gRPC on our side because no answer
    came (nothing listening, DNS, TLS, not a gRPC server, deadline); ``None`` for a status the
    server sent."""
    text = details.lower()
    if code == "DEADLINE_EXCEEDED" and text == "deadline exceeded":
        return "TimeoutError"
    if code != "UNAVAILABLE":
        return None
    for needle, name in _CONNECT_ERRORS:
        if needle in text:
            return name
    return None


def retry_delay(trailing: Any) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` in the trailing metadata, capped; ``None``
    without one (or without googleapis-common-protos to read it)."""
    for key, value in trailing or ():
        if key != _STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            from google.rpc import (  # type: ignore[import-untyped]
                error_details_pb2,
                status_pb2,
            )
        except ImportError:
            return None
        try:
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.RetryInfo()
                if detail.Unpack(info):
                    seconds = float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
                    return max(0.0, min(seconds, _MAX_RETRY_DELAY))
        except Exception:  # a malformed Status is no RetryInfo
            return None
    return None


def _keep(response: bytes) -> bytes:
    """Response deserializer: the body is not needed (an empty or partial-success reply)."""
    return response


_CODE_VALUES = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}
"""Numeric gRPC status codes by name, without importing grpc."""
