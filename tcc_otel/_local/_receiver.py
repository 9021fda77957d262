"""A loopback OTLP/HTTP trace receiver that decodes what it gets into plain Python records."""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import logging
import socket
import sys
import threading
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Callable, NamedTuple, Optional
from urllib.parse import urlsplit

from google.protobuf import json_format  # type: ignore[import-untyped,unused-ignore]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

logger = logging.getLogger("tcc_otel")

TRACES_PATH = "/v1/traces"
"""The OTLP/HTTP path for traces; every other path answers 404."""
MAX_BODY_BYTES = 32 * 1024 * 1024
"""Largest request body accepted, as sent (compressed)."""
MAX_DECODED_BYTES = 128 * 1024 * 1024
"""Largest body accepted after decompression."""

_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as received, decoded to plain Python values so whole spans compare with ``==``."""

    trace_id: str
    """32 lower-case hex digits."""
    span_id: str
    """16 lower-case hex digits."""
    parent_span_id: str | None
    """16 lower-case hex digits, or ``None`` for a root span."""
    name: str
    kind: str
    """``INTERNAL``, ``SERVER``, ``CLIENT``, ``PRODUCER``, ``CONSUMER`` or ``UNSPECIFIED``."""
    start_ns: int
    end_ns: int
    status_code: str
    """``UNSET``, ``OK`` or ``ERROR``."""
    status_message: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    """``(name, attributes)`` per event, in the order sent."""
    resource: dict[str, Any]
    """Attributes of the resource that sent the span."""
    scope_name: str
    """Name of the instrumentation scope (the tracer's name)."""

    @property
    def duration_ms(self) -> float:
        """End minus start, in milliseconds."""
        return (self.end_ns - self.start_ns) / 1e6


@dataclass(frozen=True)
class ReceivedRequest:
    """One HTTP request the receiver answered."""

    path: str
    headers: dict[str, str]
    """Request headers with lower-case names."""
    body_size: int
    """Body bytes as sent: before decompression, without chunk framing."""
    span_count: int
    """Spans decoded from the body; 0 when it was not decoded."""
    status: int
    """HTTP status the receiver answered with."""


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


class _HTTPError(Exception):
    """A request the receiver answers with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
            host: A loopback address: ``127.0.0.1`` (or any 127/8 address), ``::1`` or
                ``localhost``.
            port: TCP port; 0 picks a free one (read it from ``port`` after ``start()``).
            on_spans: Called with the spans of each accepted request, on the request's thread.
            keep: Keep spans and requests in ``spans``/``requests``; a long session that only
                needs ``on_spans`` passes ``False`` so memory stays flat.
            on_get: Answers GET requests to paths other than ``/v1/traces`` (the JSON API and
                web page of ``tcc-otel dev``), on the request's thread.

        Raises:
            ValueError: ``host`` is not a loopback address or ``port`` is out of range.
        """
        self._host, self._family = _loopback(host)
        if not 0 <= port <= 65535:
            raise ValueError(f"Receiver() port must be 0-65535, got {port}; 0 picks a free port.")
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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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


def _loopback(host: str) -> tuple[str, int]:
    """Return the address to bind and its family, or raise if ``host`` is not loopback."""
    if host == "localhost":
        return "127.0.0.1", socket.AF_INET
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(
            f"Receiver() only listens on loopback; got host {host!r}, "
            "use 127.0.0.1, ::1 or localhost."
        )
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return str(address), family


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
        try:
            body = self._read_body()
            if path != TRACES_PATH:
                raise _HTTPError(404, f"no such path {path}; send traces to {TRACES_PATH}")
            spans = _decode(_decompress(body, headers.get("content-encoding", "")), content_type)
        except _HTTPError as error:
            if error.status != 404:
                logger.warning("receiver refused a request to %s: %s", path, error.message)
            self._refuse(path, headers, len(body), error)
            return
        except Exception:  # a decoding bug still gets an answer, and the server keeps going
            logger.exception("receiver failed to decode a request to %s", path)
            self._refuse(path, headers, len(body), _HTTPError(500, "could not decode the request"))
            return
        status = receiver.response_status
        accepted = 200 <= status < 300
        request = ReceivedRequest(path, headers, len(body), len(spans), status)
        receiver._record(request, spans if accepted else [])
        if not accepted:
            self._reply(status, f"refused with {status} (Receiver.response_status)".encode(), _TEXT)
        elif content_type == _JSON:  # OTLP answers in the request's encoding
            self._reply(status, b"{}", _JSON)
        else:
            self._reply(status, ExportTraceServiceResponse().SerializeToString(), _PROTOBUF)

    def _refuse(self, path: str, headers: dict[str, str], size: int, error: _HTTPError) -> None:
        self.server.receiver._record(ReceivedRequest(path, headers, size, 0, error.status), [])
        self._reply(error.status, error.message.encode(), _TEXT)

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

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").strip().lower() == "chunked":
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise _HTTPError(400, f"bad Content-Length {length_header!r}")
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise _HTTPError(413, f"body of {length} bytes is over {MAX_BODY_BYTES}")
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            raise _HTTPError(400, f"body ended after {len(body)} of {length} bytes")
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        keep_open = not self.close_connection
        self.close_connection = True  # only kept open once the whole body was read
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _HTTPError(400, f"bad chunk size line {line[:40]!r}") from None
            if size < 0:
                raise _HTTPError(400, f"bad chunk size line {line[:40]!r}")
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                raise _HTTPError(413, f"chunked body is over {MAX_BODY_BYTES} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3) != b"\r\n":
                raise _HTTPError(400, "chunked body ended early or a chunk was not CRLF-terminated")
            chunks.append(chunk)
        while True:  # trailer fields, up to the empty line
            line = self.rfile.readline(8192)
            if not line:
                raise _HTTPError(400, "chunked body ended before its final empty line")
            if line in (b"\r\n", b"\n"):
                break
        self.close_connection = not keep_open
        return b"".join(chunks)

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


def _decompress(body: bytes, encoding: str) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate or identity), refusing oversized results."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise _HTTPError(415, f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    parts: list[bytes] = []
    size = 0
    data = body
    try:
        while data:  # a gzip body may hold several members back to back
            inflater = zlib.decompressobj(wbits)
            part = inflater.decompress(data, MAX_DECODED_BYTES + 1 - size)
            size += len(part)
            if size > MAX_DECODED_BYTES:
                raise _HTTPError(413, f"decompressed body is over {MAX_DECODED_BYTES} bytes")
            if not inflater.eof:
                raise _HTTPError(400, f"{encoding} body is truncated")
            parts.append(part)
            data = inflater.unused_data if encoding == "gzip" else b""
    except zlib.error as error:
        raise _HTTPError(400, f"{encoding} body is corrupt: {error}") from None
    return b"".join(parts)


def _decode(body: bytes, content_type: str) -> list[ReceivedSpan]:
    """Decode an OTLP ExportTraceServiceRequest body (protobuf or OTLP JSON) into spans."""
    if content_type in (_PROTOBUF, "application/protobuf"):
        try:
            request = ExportTraceServiceRequest.FromString(body)
        except Exception as error:  # google.protobuf.message.DecodeError and kin
            raise _HTTPError(400, f"body is not an OTLP protobuf trace request: {error}") from None
    elif content_type == _JSON:
        request = ExportTraceServiceRequest()
        try:
            document = json.loads(body)
            json_format.ParseDict(_hex_ids_to_base64(document), request, ignore_unknown_fields=True)
        except Exception as error:  # ValueError, json_format.ParseError, TypeError
            raise _HTTPError(400, f"body is not an OTLP JSON trace request: {error}") from None
    else:
        raise _HTTPError(
            415, f"unsupported Content-Type {content_type!r}; use {_PROTOBUF} or {_JSON}"
        )
    return _spans_of(request)


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP JSON writes trace and span ids as hex; protobuf's JSON mapping wants base64."""
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if (
            key in _ID_KEYS
            and isinstance(value, str)
            and len(value) in (16, 32)
            and _HEX_DIGITS.issuperset(value)
        ):
            converted[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
        else:
            converted[key] = _hex_ids_to_base64(value)
    return converted


def _spans_of(request: Any) -> list[ReceivedSpan]:
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope_name = str(scope_spans.scope.name)
            for span in scope_spans.spans:
                parent = bytes(span.parent_span_id)
                spans.append(
                    ReceivedSpan(
                        trace_id=bytes(span.trace_id).hex(),
                        span_id=bytes(span.span_id).hex(),
                        parent_span_id=parent.hex() if parent else None,
                        name=str(span.name),
                        kind=_KINDS.get(int(span.kind), str(span.kind)),
                        start_ns=int(span.start_time_unix_nano),
                        end_ns=int(span.end_time_unix_nano),
                        status_code=_STATUS_CODES.get(int(span.status.code), str(span.status.code)),
                        status_message=str(span.status.message),
                        attributes=_attributes(span.attributes),
                        events=[(str(e.name), _attributes(e.attributes)) for e in span.events],
                        resource=resource,
                        scope_name=scope_name,
                    )
                )
    return spans


def _attributes(key_values: Any) -> dict[str, Any]:
    return {str(kv.key): _any_value(kv.value) for kv in key_values}


def _any_value(value: Any) -> Any:
    """Turn an OTLP AnyValue into str, bool, int, float, bytes, list, dict or None."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return str(value.string_value)
    if which == "bool_value":
        return bool(value.bool_value)
    if which == "int_value":
        return int(value.int_value)
    if which == "double_value":
        return float(value.double_value)
    if which == "bytes_value":
        return bytes(value.bytes_value)
    if which == "array_value":
        return [_any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return None
