"""A loopback HTTP sink for the benchmark: answers 200 and counts what arrives, per path.

- ``POST /v1/traces``: OTLP/HTTP protobuf (gzip or not, Content-Length or chunked), decoded with
  ``opentelemetry-proto`` so the spans are counted exactly. The body is kept as it came and
  decoded when the counts are asked for (after each timed phase): decompressing and parsing
  cost this sink ~60 us of CPU per run of the workload, which a real receiver spends on its own
  machine, not on the two cores the measured process has here.
- ``POST /v1/custom``: ``contextcompany``'s JSON, one record per request.
- ``GET /counts``: the counts so far, as JSON (``paths`` -> ``requests``/``items``/``bytes``/
  ``gzip``, plus ``in_flight`` POSTs and ``errors``).

Run it as its own process so its CPU is not charged to the process being measured::

    python benchmarks/sink.py --port 0      # prints the port it listens on, then serves

or in-process: ``sink = Sink(); port = sink.start(); ...; sink.stop()``.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

TRACES_PATH = "/v1/traces"
CUSTOM_PATH = "/v1/custom"
COUNTS_PATH = "/counts"
_EMPTY_OTLP_RESPONSE = b""  # an empty ExportTraceServiceResponse serialises to no bytes
_JSON_OK = b'{"ok":true}'


class Counts:
    """Thread-safe counters per path; ``items`` is spans for OTLP, records for JSON."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: dict[str, dict[str, int]] = {}
        self._in_flight = 0
        self._errors = 0
        self._held: list[tuple[str, bytes, bool]] = []  # OTLP bodies not decoded yet

    def begin(self) -> None:
        with self._lock:
            self._in_flight += 1

    def done(self, path: str, items: int, size: int, gzipped: bool, ok: bool) -> None:
        with self._lock:
            self._in_flight -= 1
            if not ok:
                self._errors += 1
                return
            entry = self._paths.setdefault(path, {"requests": 0, "items": 0, "bytes": 0, "gzip": 0})
            entry["requests"] += 1
            entry["items"] += items
            entry["bytes"] += size
            entry["gzip"] += int(gzipped)

    def hold(self, path: str, raw: bytes, gzipped: bool) -> None:
        """Keep an OTLP body, to decode and count when the counts are asked (``snapshot``);
        its POST is no longer in flight."""
        with self._lock:
            self._held.append((path, raw, gzipped))
            self._in_flight -= 1

    def _count_held(self) -> None:
        with self._lock:
            held, self._held = self._held, []
        for path, raw, gzipped in held:
            try:
                items, ok = count_spans(gzip.decompress(raw) if gzipped else raw), True
            except Exception:
                items, ok = 0, False
            self.begin()
            self.done(path, items, len(raw), gzipped, ok)

    def snapshot(self) -> dict[str, Any]:
        self._count_held()
        with self._lock:
            return {
                "paths": {path: dict(entry) for path, entry in self._paths.items()},
                "in_flight": self._in_flight,
                "errors": self._errors,
            }


def count_spans(body: bytes) -> int:
    """Number of spans in one OTLP ExportTraceServiceRequest (protobuf)."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return sum(
        len(scope_spans.spans)
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log line."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        counts = self.server.counts
        counts.begin()
        path = self.path.split("?", 1)[0]
        items, size, gzipped, ok = 0, 0, False, False
        try:
            raw = self._read_body()
            size = len(raw)
            gzipped = self.headers.get("Content-Encoding", "").lower() == "gzip"
            if path == TRACES_PATH:
                counts.hold(path, raw, gzipped)  # decoded and counted when counts are asked
                self._reply(200, _EMPTY_OTLP_RESPONSE, "application/x-protobuf")
                return
            if path == CUSTOM_PATH:
                items = 1
                ok = True
                self._reply(200, _JSON_OK, "application/json")
            else:
                self._reply(404, b"", "text/plain")
        except Exception:
            ok = False
            self._reply(400, b"", "text/plain")
        counts.done(path, items, size, gzipped, ok)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != COUNTS_PATH:
            self._reply(404, b"", "text/plain")
            return
        body = json.dumps(self.server.counts.snapshot()).encode()
        self._reply(200, body, "application/json")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port: int, counts: Counts) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.counts = counts


class Sink:
    """The sink, served by a daemon thread of this process."""

    def __init__(self, port: int = 0) -> None:
        self.counts = Counts()
        self._server = _Server(port, self.counts)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> int:
        """Serve in a background thread; returns the port."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="bench-sink", daemon=True
        )
        self._thread.start()
        return self.port

    def serve_forever(self) -> None:
        """Serve on the calling thread until ``stop()`` (or SIGTERM in the CLI)."""
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    args = parser.parse_args(argv)
    sink = Sink(args.port)

    def _stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=sink.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    print(sink.port, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sink.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
