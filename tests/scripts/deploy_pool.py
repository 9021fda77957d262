"""A program that hands tasks to a ``multiprocessing.Pool`` whose workers record the runs.

Run by tests/deploy/test_deploy_workers.py with ``$DEPLOY_LEDGER`` and tcc_otel's settings in the
environment. It imports tcc_otel (as an application would) but records nothing itself; 4 workers
run ``--tasks`` tasks (tests/scripts/deploy_pool_tasks.py: run + step + tool call each).

``fork``: ``Pool(4)`` of the fork context; ``map()``, then ``close()`` and ``join()``.
``spawn``: ``with Pool(4) as pool:`` of the spawn context; ``map()`` inside, so leaving the
block terminates the idle workers (SIGTERM).

It prints the run ids the tasks returned, in task order, as one JSON list on stdout.

Usage: deploy_pool.py {fork,spawn} [--tasks N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys

from deploy_pool_tasks import record

import tcc_otel  # noqa: F401  imported by the application, used only in the workers

WORKERS = 4


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("context", choices=["fork", "spawn"])
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    context = multiprocessing.get_context(args.context)
    if args.context == "fork":
        pool = context.Pool(WORKERS)
        run_ids = pool.map(record, range(args.tasks), chunksize=1)
        pool.close()
        pool.join()
    else:
        with context.Pool(WORKERS) as pool:
            run_ids = pool.map(record, range(args.tasks), chunksize=1)
    sys.stdout.write(json.dumps(run_ids) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
