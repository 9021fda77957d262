"""A scripted HTTP endpoint on 127.0.0.1 for fault tests: canned statuses, Retry-After, hangs.

Each request takes the next ``Reply`` of the script (then ``default``), is recorded with its
decoded span count and the number of the TCP connection it came on, and is answered. A hanging
reply never answers: it holds the connection until ``stop()`` or ``hang_limit`` seconds, then
closes it. Everything stops by itself in ``stop()``; handler threads are daemons.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tcc_otel._config import TRACES_PATH  # requests to it have their body decoded as OTLP


@dataclass(frozen=True)
class Reply:
    """What the server does with one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers, e.g. ``{"Retry-After": "1"}``."""
    hang: bool = False
    """Never answer: hold the connection until the server stops (or ``hang_limit``)."""
    hold: threading.Event | None = None
    """Answer only once this is set (or the server stops, or ``hang_limit`` passes)."""


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    """Request headers with lower-case names."""
    body: bytes
    """The body after undoing ``Content-Encoding: gzip``."""
    span_names: tuple[str, ...]
    """Names of the spans in an OTLP traces body, in order; empty for other paths."""
    connection: int
    """1-based number of the TCP connection the request came on."""
    status: int | None
    """Status answered; ``None`` when the reply hung."""

    @property
    def span_count(self) -> int:
        """How many spans the request carried."""
        return len(self.span_names)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FaultServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 that answers from a script of replies."""

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        default: Reply | None = None,
        hang_limit: float = 30.0,
    ) -> None:
        self._script: deque[Reply] = deque(replies)
        self._default = default if default is not None else Reply()
        self.hang_limit = hang_limit
        self.released = threading.Event()
        """Set by ``stop()``: every hanging reply gives up."""
        self._cond = threading.Condition()
        self._requests: list[Recorded] = []
        self._connections = 0
        self._open: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fault = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fault-server",
            daemon=True,
        )

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> FaultServer:
        """Serve on a daemon thread; returns ``self``."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging replies, close open connections and the port."""
        self.released.set()
        self._server.shutdown()
        with self._cond:
            open_ = list(self._open)
        for sock in open_:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> FaultServer:
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
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        """``url`` + ``/v1/traces``."""
        return self.url + TRACES_PATH

    @property
    def requests(self) -> list[Recorded]:
        """A copy of the requests received so far, in arrival order."""
        with self._cond:
            return list(self._requests)

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        with self._cond:
            return self._connections

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` requests arrived; ``False`` if ``timeout`` seconds passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._requests) >= count, timeout=timeout)

    # --- called by the handler --------------------------------------------------------------

    def _next_reply(self) -> Reply:
        with self._cond:
            return self._script.popleft() if self._script else self._default

    def _record(self, request: Recorded) -> None:
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()

    def _opened(self, sock: socket.socket) -> int:
        with self._cond:
            self._connections += 1
            self._open.add(sock)
            return self._connections

    def _closed(self, sock: socket.socket) -> None:
        with self._cond:
            self._open.discard(sock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fault: FaultServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connections the client drops are part of these tests; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse can be counted
    timeout = 10.0  # an idle keep-alive connection is closed after this many seconds
    connection_number = 0

    def setup(self) -> None:
        super().setup()
        self.connection_number = self.server.fault._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fault._closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""

    def do_POST(self) -> None:
        fault = self.server.fault
        headers = {name.lower(): value for name, value in self.headers.items()}
        body = self.rfile.read(int(headers.get("content-length", "0")))
        if headers.get("content-encoding", "") == "gzip":
            body = gzip.decompress(body)
        names: tuple[str, ...] = ()
        if self.path == TRACES_PATH:
            request = ExportTraceServiceRequest.FromString(body)
            names = tuple(
                str(span.name)
                for resource_spans in request.resource_spans
                for scope_spans in resource_spans.scope_spans
                for span in scope_spans.spans
            )
        reply = fault._next_reply()
        status = None if reply.hang else reply.status
        fault._record(
            Recorded("POST", self.path, headers, body, names, self.connection_number, status)
        )
        if reply.hang:
            fault.released.wait(fault.hang_limit)
            self.close_connection = True  # the client gets no answer at all
            return
        if reply.hold is not None:
            _wait_any(reply.hold, fault.released, fault.hang_limit)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _wait_any(first: threading.Event, second: threading.Event, limit: float) -> None:
    """Wait until either event is set, at most ``limit`` seconds."""
    end = time.monotonic() + limit
    while not (first.is_set() or second.is_set()) and time.monotonic() < end:
        first.wait(0.05)
