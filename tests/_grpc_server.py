"""A scripted OTLP/gRPC collector on 127.0.0.1 for tests: a real grpcio server with the trace
service stubs opentelemetry-proto ships.

Each ``Export`` call takes the next ``Answer`` of the script (then ``default``), is recorded
with its metadata and decoded spans, and is answered with that status (with a ``RetryInfo``
when the answer has a delay). A hanging answer holds the call until the client's deadline
cancels it, ``stop()`` or ``hang_limit``. ``stop()`` ends everything; nothing outlives it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent import futures
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.protobuf import any_pb2  # type: ignore[import-untyped]
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

SpanId = tuple[str, str]
"""``(trace_id, span_id)`` in lower-case hex."""


@dataclass(frozen=True)
class Answer:
    """What the server does with one call."""

    code: str = "OK"
    """gRPC status code name: ``OK``, ``UNAVAILABLE``, ``RESOURCE_EXHAUSTED``..."""
    retry_delay: float | None = None
    """Send a ``google.rpc.RetryInfo`` with this delay (seconds) in the status details."""
    details: str = ""
    """The status message."""
    hang: bool = False
    """Never answer: hold the call until it is cancelled or the server stops."""


@dataclass(frozen=True)
class Call:
    """One ``Export`` call as the server saw it."""

    metadata: dict[str, str]
    """Invocation metadata (gRPC lower-cases keys)."""
    request: Any
    """The decoded ``ExportTraceServiceRequest``."""
    code: str
    """Status answered; ``HANG`` for a call held until cancelled."""
    received: float
    """``time.monotonic()`` when the call arrived."""

    @property
    def span_ids(self) -> list[SpanId]:
        """``(trace_id, span_id)`` of each span, in order."""
        return [
            (bytes(span.trace_id).hex(), bytes(span.span_id).hex())
            for resource_spans in self.request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]


class GrpcCollector(trace_service_pb2_grpc.TraceServiceServicer):
    """A gRPC ``TraceService`` on 127.0.0.1 answering from a script."""

    def __init__(
        self,
        answers: Iterable[Answer] = (),
        *,
        default: Answer | None = None,
        hang_limit: float = 30.0,
        gzip_enabled: bool = True,
        max_receive_bytes: int | None = None,
    ) -> None:
        """``gzip_enabled=False`` makes the server's gRPC core refuse any call whose
        ``grpc-encoding`` request header says gzip (``UNIMPLEMENTED``); ``max_receive_bytes``
        bounds one request message (``RESOURCE_EXHAUSTED`` beyond it)."""
        self._script: deque[Answer] = deque(answers)
        self._default = default if default is not None else Answer()
        self._hang_limit = hang_limit
        self._released = threading.Event()
        self._cond = threading.Condition()
        self._calls: list[Call] = []
        options: list[tuple[str, int]] = []
        if not gzip_enabled:
            options.append(("grpc.compression_enabled_algorithms_bitset", 1))  # identity only
        if max_receive_bytes is not None:
            options.append(("grpc.max_receive_message_length", max_receive_bytes))
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=options)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            self, self._server
        )
        self.port = int(self._server.add_insecure_port("127.0.0.1:0"))

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> GrpcCollector:
        """Serve on the server's own threads; returns ``self``."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Release hanging calls and stop serving; waits until the server is down."""
        self._released.set()
        self._server.stop(grace=None).wait(timeout=10.0)

    def __enter__(self) -> GrpcCollector:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- where and what ---------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def calls(self) -> list[Call]:
        """A copy of the calls received so far, in arrival order."""
        with self._cond:
            return list(self._calls)

    def accepted_ids(self) -> list[SpanId]:
        """Ids of every span of calls answered OK, sorted; duplicates stay."""
        return sorted(ids for call in self.calls if call.code == "OK" for ids in call.span_ids)

    def wait_for_calls(self, count: int, timeout: float) -> bool:
        """Whether ``count`` calls arrived within ``timeout`` seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._calls) >= count, timeout)

    # --- the service ------------------------------------------------------------------------

    def Export(self, request: Any, context: Any) -> Any:  # the proto's method name
        """Record the call, then answer it as the script says."""
        with self._cond:
            answer = self._script.popleft() if self._script else self._default
            code = "HANG" if answer.hang else answer.code
            metadata = {key: value for key, value in context.invocation_metadata()}
            self._calls.append(Call(metadata, request, code, time.monotonic()))
            self._cond.notify_all()
        if answer.hang:
            done = threading.Event()
            context.add_callback(done.set)  # the call ended: the client's deadline or a cancel
            give_up = time.monotonic() + self._hang_limit
            while not (done.is_set() or self._released.is_set()) and time.monotonic() < give_up:
                done.wait(0.05)
            context.abort(grpc.StatusCode.UNAVAILABLE, "hang released")
        if answer.code != "OK":
            if answer.retry_delay is not None:
                context.set_trailing_metadata((("grpc-status-details-bin", _status(answer)),))
            context.abort(getattr(grpc.StatusCode, answer.code), answer.details or answer.code)
        return trace_service_pb2.ExportTraceServiceResponse()


def _status(answer: Answer) -> bytes:
    """A serialized ``google.rpc.Status`` carrying a ``RetryInfo`` with the answer's delay."""
    assert answer.retry_delay is not None
    info = error_details_pb2.RetryInfo()
    whole = int(answer.retry_delay)
    info.retry_delay.seconds = whole
    info.retry_delay.nanos = round((answer.retry_delay - whole) * 1e9)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(
        code=getattr(grpc.StatusCode, answer.code).value[0],
        message=answer.details or answer.code,
        details=[detail],
    )
    return bytes(status.SerializeToString())
