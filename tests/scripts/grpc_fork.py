"""A process that sends over gRPC, forks, and sends from both sides; run by
tests/export/test_grpc.py.

Configured by the environment only (``TCC_EXPORTER=otlp``, ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``,
``OTEL_EXPORTER_OTLP_ENDPOINT``, ``GRPC_ENABLE_FORK_SUPPORT`` ...). The parent records the run
``parent-1`` and, with ``after``, waits until it was exported; with ``during`` it forks while
that export is still in flight: the test's server holds the first call, and the test creates
the file ``GRPC_FORK_CALL_SEEN`` once that call arrived. The child records
``child-1``, flushes and leaves through ``os._exit``; the parent records ``parent-2``, flushes
and reaps the child, killing it if it outlives the guard (a hang). The last line on stdout is
``{"parent": stats, "child": stats, "child_status": ...}``: ``tcc.stats()`` of each side
(``null`` if the child reported none), and the child's exit status (``"hung"`` if killed).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import tcc_otel as tcc

GUARD = 20.0
"""Seconds after which the child is taken to hang (a guard, never a bound)."""


def record(run_id: str) -> None:
    """One run with one step."""
    with tcc.run(run_id=run_id) as run:
        run.prompt(f"question of {run_id}")
        with run.step() as step:
            step.prompt("plan").response("answer")
        run.response("done")


def child(report: int) -> None:
    """Record and deliver ``child-1``, write the stats to ``report``, leave."""
    ok = False
    try:
        record("child-1")
        ok = tcc.flush(timeout=GUARD)
        os.write(report, json.dumps(tcc.stats()).encode())
    finally:
        os._exit(0 if ok else 1)


def main() -> int:
    mode = sys.argv[1]
    record("parent-1")
    if mode == "after":
        if not tcc.flush(timeout=GUARD):
            return 2
    else:  # "during": fork while the server holds the first call (until its deadline)
        tcc.flush(timeout=0)  # hand it to the sender now
        seen = os.environ["GRPC_FORK_CALL_SEEN"]  # the test creates it once the call arrived
        end = time.monotonic() + GUARD
        while not os.path.exists(seen) and time.monotonic() < end:
            time.sleep(0.01)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        child(write)
    os.close(write)
    record("parent-2")
    flushed = tcc.flush(timeout=GUARD)
    end = time.monotonic() + GUARD
    status: object = None
    while status is None:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(code)
        elif time.monotonic() > end:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = "hung"
        else:
            time.sleep(0.02)
    with os.fdopen(read, "rb") as pipe:
        child_stats = pipe.read()
    report = {
        "parent": tcc.stats(),
        "parent_flushed": flushed,
        "child": json.loads(child_stats) if child_stats else None,
        "child_status": status,
    }
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
