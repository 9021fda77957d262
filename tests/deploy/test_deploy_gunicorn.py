"""Real gunicorn with ``--preload -w 2``, an app that exports a run at import, stopped by SIGTERM:
every run of the master and of both workers reaches the receiver exactly once.

The spans a loopback receiver kept (duplicates included) are compared with the ledger of runs
the master and the workers wrote down as they ended (tests/scripts/deploy_wsgi_app.py).
"""

from __future__ import annotations

import json
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from helpers.deploy import (
    HANG_GUARD,
    LEDGER_ENV,
    Processes,
    assert_exactly_once,
    child_env,
    finish,
    free_port,
    port_open,
    read_ledger,
    spans_of,
    wait_for,
    wait_group_gone,
)

from tcc_otel._local._server import Receiver

REQUESTS = 200
CONCURRENCY = 4
"""Requests in flight at once, so both workers serve."""


def get_json(url: str) -> dict[str, object]:
    """GET ``url`` and decode its JSON body (the hang guard bounds the wait)."""
    with urllib.request.urlopen(url, timeout=HANG_GUARD) as response:
        value = json.loads(response.read())
    assert isinstance(value, dict)
    return value


def test_preload_workers_and_sigterm(
    receiver: Receiver,
    procs: Processes,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """The run exported at import and the 200 runs the two workers record, 603 spans, each
    arrive once by the time the master exits after SIGTERM."""
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    port = free_port()
    master = procs.start(
        "gunicorn",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--preload",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--control-socket",
            str(tmp_path / "gunicorn.ctl"),  # not the shared default under $HOME
            "deploy_wsgi_app:app",
        ],
        child_env(TCC_BASE_URL=receiver.url, **{LEDGER_ENV: str(ledger)}),
        cwd=tmp_path,
    )
    wait_for(lambda: port_open(port), f"gunicorn listening on port {port}", master)

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(
            pool.map(get_json, [f"http://127.0.0.1:{port}/run/{n}" for n in range(REQUESTS)])
        )
    assert [answer["run_id"] for answer in answers] == [f"request-{n}" for n in range(REQUESTS)]
    record_property("workers_serving", len({answer["pid"] for answer in answers}))

    signalled = time.monotonic()
    master.proc.send_signal(signal.SIGTERM)
    returncode = finish(master)
    record_property("shutdown_seconds", round(time.monotonic() - signalled, 2))
    wait_group_gone(master)
    assert returncode == 0, master.describe()

    runs = read_ledger(ledger)
    assert sorted(run.run_id for run in runs) == sorted(
        ["import"] + [f"request-{n}" for n in range(REQUESTS)]
    )
    expected = spans_of(runs)
    assert len(expected) == 3 + REQUESTS * 3
    assert_exactly_once(receiver.spans, expected)
