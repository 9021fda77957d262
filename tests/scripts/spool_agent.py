"""An agent for the spool tests: records runs, reports their span ids, then exits or waits.

Run by tests/export/test_spool.py in a subprocess, configured by the environment only
(TCC_BASE_URL, TCC_API_KEY, TCC_SPOOL_DIR, TCC_SHUTDOWN_TIMEOUT, ...). It logs like an application
(``logging.basicConfig``, ``name LEVEL message``) and prints one JSON line on stdout once its
runs ended: ``{"pid": ..., "spans": [[trace_id, span_id], ...], "stats": ...}``, ids in
lower-case hex, ``stats`` only with ``--flush``.

Options:
    --runs N        runs to record (default 1); each has ``--steps`` steps and one tool call.
    --steps K       steps per run (default 1).
    --pause S       seconds to wait after each run (default 0), so each run is its own batch.
    --open-for S    seconds each run stays open after its steps and tool call ended (default 0).
    --leave-open    then start one more run, end its steps, and leave it open: its spans are
                    reported (under ``open``) and the run span never ends.
    --configure     call ``tcc.configure()`` first (every option still from the environment).
    --flush         call ``tcc.flush()`` after the runs and report ``tcc.stats()``.
    --wait          after printing, wait until stdin closes (the test kills it or closes stdin).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from typing import Any

from opentelemetry.trace import Span

FLUSH_TIMEOUT = 15.0
"""Seconds ``--flush`` may take; the test's hang guard is longer."""


def ids(span: Span) -> list[str]:
    """``[trace_id, span_id]`` of ``span`` in lower-case hex, as a receiver reports them."""
    context = span.get_span_context()
    return [f"{context.trace_id:032x}", f"{context.span_id:016x}"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--open-for", type=float, default=0.0)
    parser.add_argument("--leave-open", action="store_true")
    parser.add_argument("--configure", action="store_true")
    parser.add_argument("--flush", action="store_true")
    parser.add_argument("--wait", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")

    import tcc_otel as tcc  # imported as late as an application would

    if args.configure:
        tcc.configure()
    spans: list[list[str]] = []
    for index in range(args.runs):
        with tcc.run() as r:
            r.prompt(f"question {index}")
            for number in range(args.steps):
                with r.step() as s:
                    s.prompt(f"step {number}").response("answer")
                spans.append(ids(s.span))
            t = r.tool_call("lookup").args({"index": index}).result("found")
            t.end()
            spans.append(ids(t.span))
            r.response(f"answer {index}")
            time.sleep(args.open_for)
        spans.append(ids(r.span))
        time.sleep(args.pause)
    report: dict[str, Any] = {"pid": os.getpid(), "spans": spans}
    if args.leave_open:
        still = tcc.run().prompt("never answered")
        opened = []
        for number in range(args.steps):
            with still.step() as s:
                s.prompt(f"step {number}").response("answer")
            opened.append(ids(s.span))
        report["open"] = opened
    if args.flush:
        report["flushed"] = tcc.flush(FLUSH_TIMEOUT)
        report["stats"] = tcc.stats()
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    if args.wait:
        sys.stdin.read()  # returns when the test closes our stdin; SIGKILL ends it sooner
    return 0


if __name__ == "__main__":
    sys.exit(main())
