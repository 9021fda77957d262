"""A WSGI app for gunicorn that records and exports one run when it is imported.

Served by tests/deploy/test_deploy_gunicorn.py (``gunicorn --preload``, so the master imports it
once and forks its workers after that export). At import it records the run ``import`` (run + step +
tool call) and calls ``tcc.flush()``. ``GET /run/<n>`` records the run ``request-<n>`` (run +
step + tool call) and answers ``{"run_id", "pid"}`` as JSON. Each ended run goes to the ledger
(tests/scripts/deploy_ledger.py, ``$DEPLOY_LEDGER``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any, Callable

from deploy_ledger import append, record_run

import tcc_otel as tcc

append("import", 0, record_run("import", tool_call=True))
tcc.flush()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Record one run per ``/run/<n>`` request and answer its run id and the worker's pid."""
    parts = str(environ.get("PATH_INFO", "")).strip("/").split("/")
    if len(parts) != 2 or parts[0] != "run" or not parts[1].isdigit():
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    index = int(parts[1])
    run_id = f"request-{index}"
    append(run_id, index, record_run(run_id, tool_call=True))
    body = json.dumps({"run_id": run_id, "pid": os.getpid()}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
