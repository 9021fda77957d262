"""A collector in front of TCC, started from Python: rotel receives, filters and forwards.

rotel (``pip install 'rotel==0.0.1a15'``, CPython 3.10-3.13 on Linux or macOS) is an
OpenTelemetry collector shipped in a wheel. This script starts it with the same pipeline as
``otelcol.yaml``:

- receive OTLP on this machine only: HTTP on ``127.0.0.1:4318``, gRPC on ``127.0.0.1:4317``;
- keep only spans with ``tcc.runId`` (``keep_runs.py``, a rotel Python processor);
- forward them over OTLP/HTTP to ``TCC_BASE_URL`` (default ``https://api.thecontext.company``)
  with ``Authorization: Bearer $TCC_API_KEY``; rotel batches and retries on its own.

Run it, then point the application at it::

    TCC_API_KEY=tcc_... python examples/collector/rotel_forward.py
    TCC_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 python my_agent.py

Ctrl-C (or SIGTERM) stops rotel. rotel runs as a daemon with its own pid and log files,
``ROTEL_PID_FILE`` and ``ROTEL_LOG_FILE`` (default ``/tmp/rotel-agent.pid`` and ``.log``);
``ROTEL_OTLP_HTTP_ENDPOINT`` and ``ROTEL_OTLP_GRPC_ENDPOINT`` move the receivers.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from rotel import Config, Rotel

PROCESSOR = Path(__file__).resolve().with_name("keep_runs.py")
"""The rotel trace processor that drops spans without ``tcc.runId``."""
TCC_ENDPOINT = "https://api.thecontext.company"
"""Where spans go when ``TCC_BASE_URL`` is not set; rotel appends ``/v1/traces``."""
HTTP_ENDPOINT = "127.0.0.1:4318"
"""OTLP/HTTP receiver address unless ``ROTEL_OTLP_HTTP_ENDPOINT`` is set."""
GRPC_ENDPOINT = "127.0.0.1:4317"
"""OTLP/gRPC receiver address unless ``ROTEL_OTLP_GRPC_ENDPOINT`` is set (rotel always runs
one; keep it on loopback too)."""
START_GUARD = 10.0
"""Seconds to wait for rotel to accept connections before giving up."""


def rotel_options(api_key: str, upstream: str = TCC_ENDPOINT) -> dict[str, Any]:
    """rotel's typed options (the keywords of ``rotel.Rotel``) for the forwarding pipeline.

    Args:
        api_key: The TCC API key, sent as ``Authorization: Bearer <key>`` to ``upstream``.
        upstream: Base URL to forward to; rotel posts to ``upstream + /v1/traces``.

    Raises:
        ValueError: ``api_key`` is empty or holds a comma or newline, which rotel's header
            list (``name=value,...``) cannot carry.
    """
    if not api_key or any(char in api_key for char in ",\r\n"):
        raise ValueError(
            "rotel_options() needs the TCC API key, without commas or newlines: set TCC_API_KEY."
        )
    return {
        "enabled": True,
        "otlp_http_endpoint": os.environ.get("ROTEL_OTLP_HTTP_ENDPOINT") or HTTP_ENDPOINT,
        "otlp_grpc_endpoint": os.environ.get("ROTEL_OTLP_GRPC_ENDPOINT") or GRPC_ENDPOINT,
        "exporters": {
            "tcc": Config.otlp_exporter(
                endpoint=upstream.rstrip("/"),
                protocol="http",  # rotel's default is gRPC
                headers={"Authorization": f"Bearer {api_key}"},
            ),
        },
        "exporters_traces": ["tcc"],
        "processors_traces": [str(PROCESSOR)],
    }


def wait_listening(address: str, guard: float = START_GUARD) -> bool:
    """Whether ``host:port`` accepts TCP connections within ``guard`` seconds."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + guard
    while True:
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=0.5).close()
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def main() -> int:
    """Start rotel, forward until SIGINT or SIGTERM, then stop it; the exit status."""
    api_key = os.environ.get("TCC_API_KEY", "").strip()
    upstream = os.environ.get("TCC_BASE_URL", "").strip() or TCC_ENDPOINT
    try:
        options = rotel_options(api_key, upstream)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    address = str(options["otlp_http_endpoint"])
    if wait_listening(address, guard=0):  # else we would take that listener for rotel
        print(f"{address} is already in use; set ROTEL_OTLP_HTTP_ENDPOINT", file=sys.stderr)
        return 1
    collector = Rotel(**options)
    collector.start()  # spawns the rotel daemon; on failure it prints why
    try:
        if not wait_listening(address):
            log = os.environ.get("ROTEL_LOG_FILE") or "/tmp/rotel-agent.log"
            print(f"rotel is not listening on {address}; see {log}", file=sys.stderr)
            return 1
        print(
            f"forwarding spans with tcc.runId from http://{address} to {upstream}",
            flush=True,
        )
        while not stop.wait(1.0):
            pass
    finally:
        collector.stop()  # SIGTERM to the daemon; rotel flushes what it holds, then exits
    return 0


if __name__ == "__main__":
    sys.exit(main())
