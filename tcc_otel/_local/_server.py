"""The loopback OTLP/HTTP receiver: serves ``/v1/traces``, keeps or hands on what it decodes."""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, NamedTuple, Optional
from urllib.parse import urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from tcc_otel._config import TRACES_PATH, is_loopback_host
from tcc_otel._local import _decode
from tcc_otel._local._model import ReceivedRequest, ReceivedSpan

logger = logging.getLogger("tcc_otel")

_TEXT = "text/plain; charset=utf-8"
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Content-Security-Policy of the tcc-otel dev page: prompts it shows can never run code."""


class HttpReply(NamedTuple):
    """An answer to a GET request, from the ``on_get`` hook."""

    status: int
    content_type: str
    body: bytes


GetHandler = Callable[[str, str, dict[str, str]], Optional[HttpReply]]
"""``on_get(path, query, headers)``: the reply to a GET, or ``None`` for the receiver's 404."""


class Receiver:
    """An OTLP/HTTP receiver on a loopback address that keeps every span it is sent.

    Spans are kept in ``spans`` and handed to ``on_spans`` (one call per request) before the
    request is answered, so once an exporter's ``export()`` returns, its spans are visible here.
    Set ``response_status`` to make it refuse requests (e.g. 503): refused spans are not kept.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4318,
        *,
        on_spans: Callable[[list[ReceivedSpan]], object] | None = None,
        keep: bool = True,
        on_get: GetHandler | None = None,
    ) -> None:
        """Prepare a receiver; nothing is bound until ``start()``.

        Args:
            host: A loopback address: ``127.0.0.1``, ``::1`` or ``localhost`` (which binds
                ``127.0.0.1``).
            port: TCP port; 0 picks a free one (read it from ``port`` after ``start()``).
            on_spans: Called with the spans of each accepted request, on the request's thread.
            keep: Keep spans and requests in ``spans``/``requests``; a long session that only
                needs ``on_spans`` passes ``False`` so memory stays flat.
            on_get: Answers GET requests to paths other than ``/v1/traces`` (the JSON API and
                web page of ``tcc-otel dev``), on the request's thread.

        Raises:
            ValueError: ``host`` is not a loopback address or ``port`` is out of range.
        """
        if not is_loopback_host(host):
            raise ValueError(
                f"Receiver() only listens on loopback; got host {host!r}, "
                "use 127.0.0.1, ::1 or localhost."
            )
        if not 0 <= port <= 65535:
            raise ValueError(f"Receiver() port must be 0-65535, got {port}; 0 picks a free port.")
        host = host.lower()
        self._host = "127.0.0.1" if host == "localhost" else host
        self._family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        self._requested_port = port
        self._on_spans = on_spans
        self._keep = keep
        self._on_get = on_get
        self.response_status: int = 200
        """Status to answer with; anything but 2xx refuses the request and keeps no spans."""
        self._cond = threading.Condition()
        self._spans: list[ReceivedSpan] = []
        self._requests: list[ReceivedRequest] = []
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind the port and serve on a daemon thread named ``tcc_otel-receiver``.

        Raises:
            OSError: The port could not be bound (for example it is in use).
            RuntimeError: The receiver was already started or stopped.
        """
        if self._server is not None or self._stopped:
            raise RuntimeError(
                "Receiver.start() was called twice; create a new Receiver to serve again."
            )
        server_class = _Server6 if self._family == socket.AF_INET6 else _Server
        server = server_class((self._host, self._requested_port), _Handler)
        server.receiver = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="tcc_otel-receiver",
            daemon=True,
        )
        self._thread.start()
        logger.debug("receiver listening on %s", self.url)

    def stop(self) -> None:
        """Stop serving, close open connections and release the port. Safe to call twice."""
        with self._cond:
            if self._stopped:
                return
            self._stopped = True
            connections = list(self._connections)
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        for connection in connections:  # wakes handler threads waiting on idle keep-alives
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        thread.join(timeout=5.0)

    def __enter__(self) -> Receiver:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- where it listens -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for).

        Raises:
            RuntimeError: ``start()`` has not been called.
        """
        if self._server is None:
            raise RuntimeError("Receiver.port is known after start(); call start() first.")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL to give an exporter, e.g. ``http://127.0.0.1:4318``."""
        host = f"[{self._host}]" if self._family == socket.AF_INET6 else self._host
        return f"http://{host}:{self.port}"

    @property
    def traces_url(self) -> str:
        """Full OTLP/HTTP traces endpoint, ``url`` + ``/v1/traces``."""
        return self.url + TRACES_PATH

    # --- what it received -----------------------------------------------------------------------

    @property
    def spans(self) -> list[ReceivedSpan]:
        """A copy of the spans accepted so far, in arrival order."""
        with self._cond:
            return list(self._spans)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A copy of the requests answered so far, in arrival order."""
        with self._cond:
            return list(self._requests)

    def wait_for_spans(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` spans are kept in ``spans`` (needs ``keep=True``).

        Returns:
            ``True`` when they arrived, ``False`` when ``timeout`` seconds passed first.
        """
        with self._cond:
            return self._cond.wait_for(lambda: len(self._spans) >= count, timeout=timeout)

    def clear(self) -> None:
        """Forget the spans and requests received so far."""
        with self._cond:
            self._spans.clear()
            self._requests.clear()

    # --- called by the handler ------------------------------------------------------------------

    def _record(self, request: ReceivedRequest, spans: list[ReceivedSpan]) -> None:
        if self._keep:
            with self._cond:
                self._requests.append(request)
                self._spans.extend(spans)
                self._cond.notify_all()
        if spans and self._on_spans is not None:
            try:
                self._on_spans(spans)
            except Exception:  # a failing callback must not take the server down
                logger.exception("receiver on_spans callback failed")

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._cond:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # SO_REUSEADDR lets a restart bind while old sockets sit in TIME_WAIT; on Windows it would
    # let two servers share the port, so it is only used elsewhere.
    allow_reuse_address = sys.platform != "win32"
    allow_reuse_port = False  # never share the port with another listener
    receiver: Receiver

    def process_request(self, request: Any, client_address: Any) -> None:
        # ThreadingMixIn's own version, with our thread name so the threads are recognisable
        threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="tcc_otel-receiver-connection",
            daemon=True,
        ).start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError, socket.timeout)):
            logger.debug("receiver connection from %s ended: %r", client_address, error)
        else:
            logger.exception("receiver failed while handling a request from %s", client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as OTLP exporters reuse connections
    server_version = "tcc-otel-dev"
    timeout = 30.0  # seconds an idle keep-alive connection is held open

    def setup(self) -> None:
        super().setup()
        self.server.receiver._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.receiver._track(self.connection, False)

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("receiver %s: %s", self.address_string(), format % args)

    def do_POST(self) -> None:
        receiver = self.server.receiver
        path = urlsplit(self.path).path
        headers = {name.lower(): value for name, value in self.headers.items()}
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        body = b""
        spans: list[ReceivedSpan] = []
        try:
            body = self._read_body()
            if path == TRACES_PATH:
                encoding = headers.get("content-encoding", "")
                spans = _decode.decode(_decode.decompress(body, encoding), content_type)
        except _decode.BodyError as error:
            logger.warning("receiver refused a request to %s: %s", path, error.message)
            self._refuse(path, headers, len(body), error.status, error.message)
            return
        except Exception:  # a decoding bug still gets an answer, and the server keeps going
            logger.exception("receiver failed to decode a request to %s", path)
            self._refuse(path, headers, len(body), 500, "could not decode the request")
            return
        if path != TRACES_PATH:
            message = f"no such path {path}; send traces to {TRACES_PATH}"
            self._refuse(path, headers, len(body), 404, message)
            return
        status = receiver.response_status
        accepted = 200 <= status < 300
        request = ReceivedRequest(path, headers, len(body), len(spans), status)
        receiver._record(request, spans if accepted else [])
        if not accepted:
            self._reply(status, f"refused with {status} (Receiver.response_status)".encode(), _TEXT)
        elif content_type == _decode.JSON:  # OTLP answers in the request's encoding
            self._reply(status, b"{}", _decode.JSON)
        else:
            reply = ExportTraceServiceResponse().SerializeToString()
            self._reply(status, reply, _decode.PROTOBUF)

    def _read_body(self) -> bytes:
        keep_open = not self.close_connection
        self.close_connection = True  # only kept open once the whole body was read
        chunked = self.headers.get("Transfer-Encoding", "").strip().lower() == "chunked"
        body = _decode.read_body(self.rfile, self.headers.get("Content-Length"), chunked)
        self.close_connection = not keep_open
        return body

    def _refuse(
        self, path: str, headers: dict[str, str], size: int, status: int, message: str
    ) -> None:
        self.server.receiver._record(ReceivedRequest(path, headers, size, 0, status), [])
        self._reply(status, message.encode(), _TEXT)

    def do_GET(self) -> None:
        on_get = self.server.receiver._on_get
        parts = urlsplit(self.path)
        if on_get is None or parts.path == TRACES_PATH:
            self._not_post()
            return
        if "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
            self.close_connection = True  # an unread body must not be parsed as the next request
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            reply = on_get(parts.path, parts.query, headers)
        except Exception:  # a bug in a page still gets an answer, and the server keeps going
            logger.exception("receiver failed to answer GET %s", parts.path)
            reply = HttpReply(500, _TEXT, b"internal error; see the tcc-otel dev log")
        if reply is None:
            self._not_post()
        else:
            self._reply(reply.status, reply.body, reply.content_type)

    def do_PUT(self) -> None:
        self._not_post()

    def do_PATCH(self) -> None:
        self._not_post()

    def do_DELETE(self) -> None:
        self._not_post()

    def _not_post(self) -> None:
        path = urlsplit(self.path).path
        self.close_connection = True  # an unread body must not be parsed as the next request
        if path == TRACES_PATH:
            self._reply(405, b"send traces with POST", _TEXT, allow="POST")
        else:
            self._reply(404, f"no such path {path}".encode(), _TEXT)

    def _reply(self, status: int, body: bytes, content_type: str, allow: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        if content_type.startswith("text/html"):  # the dev page: its own files, nothing else
            self.send_header("Content-Security-Policy", _PAGE_POLICY)
        if allow is not None:
            self.send_header("Allow", allow)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
