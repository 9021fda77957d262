"""A parent whose second thread records runs in a loop while the main thread forks children.

Run by tests/deploy/test_deploy_fork.py with ``$DEPLOY_LEDGER`` and tcc_otel's settings in the
environment. The thread records ``parent-<n>`` runs (run + step) until every child is forked.
Child ``i`` records the run ``child-<i>`` (run + step) and leaves with ``sys.exit(0)``, so atexit
delivers it. Each ended run goes to the ledger (tests/scripts/deploy_ledger.py).

The parent waits for each child at most ``--guard`` seconds from its fork; a child still alive
then is hung: its threads' stacks go to stderr (faulthandler) and it is killed. The parent
writes ``report.json`` to the ledger directory, ``{"exit_codes": {"<i>": code or null},
"hung": [i, ...], "parent_runs": n}``, and exits 0 (its own runs are delivered at exit).

Options:
    --children N   children to fork (default 100).
    --guard S      seconds a child may run before it counts as hung (default 60).
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys
import threading
import time

from deploy_ledger import append, hang_report, record_run, write_json


def child(index: int) -> None:
    """The forked child's whole life: one run, then a normal exit."""
    run_id = f"child-{index}"
    append(run_id, index, record_run(run_id))
    sys.exit(0)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=100)
    parser.add_argument("--guard", type=float, default=60.0)
    args = parser.parse_args()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # where a hung child is stuck

    stop = threading.Event()
    first = threading.Event()
    recorded = [0]

    def record_loop() -> None:
        while not stop.is_set():
            run_id = f"parent-{recorded[0]}"
            append(run_id, recorded[0], record_run(run_id))
            recorded[0] += 1
            first.set()

    thread = threading.Thread(target=record_loop, name="recorder")
    thread.start()
    first.wait()  # the export pipeline is up and busy before the first fork

    deadlines: dict[int, tuple[int, float]] = {}  # pid -> (child index, hang deadline)
    for index in range(args.children):
        pid = os.fork()
        if pid == 0:
            child(index)
        deadlines[pid] = (index, time.monotonic() + args.guard)
        time.sleep(0.005)  # the recorder moves on between forks
    stop.set()
    thread.join()

    exit_codes: dict[str, int | None] = {}
    hung: list[int] = []
    while deadlines:
        for pid, (index, deadline) in list(deadlines.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                exit_codes[str(index)] = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > deadline:
                hang_report(pid)
                exit_codes[str(index)] = None
                hung.append(index)
            else:
                continue
            del deadlines[pid]
        time.sleep(0.02)
    write_json(
        "report.json", {"exit_codes": exit_codes, "hung": sorted(hung), "parent_runs": recorded[0]}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
