"""A parent that exported once (its connection is open), then forks children that record runs.

Run by tests/deploy/test_deploy_fork.py with ``$DEPLOY_LEDGER`` and tcc_otel's settings in the
environment. The parent records the run ``parent`` (run + step + tool call) and calls
``tcc.flush()``, then forks ``--children`` children; child ``c`` records ``--runs`` runs
``child-<c>-<i>`` (run + step + tool call, each prompt carrying ``--prompt-bytes`` of text) and
exits normally (``sys.exit(0)``). Each ended run goes to the ledger
(tests/scripts/deploy_ledger.py).

Every process, after tcc_otel's own exit handling, writes its ``tcc.stats()`` to
``stats-<role>.json`` in the ledger directory (role ``parent`` or ``child-<c>``). The parent
waits for each child at most ``--guard`` seconds (a child alive then is hung: its threads'
stacks go to stderr, and it is killed), writes ``report.json`` (``{"exit_codes": {"<c>": code
or null}, "hung": [c, ...]}``) and exits 0.

Options:
    --children N      children to fork (default 4).
    --runs N          runs per child (default 50).
    --prompt-bytes N  text added to each run's and step's prompt (default 20,000).
    --guard S         seconds a child may run before it counts as hung (default 60).
"""

from __future__ import annotations

import argparse
import atexit
import faulthandler
import os
import random
import signal
import string
import sys
import time

from deploy_ledger import append, hang_report, record_run, write_json

role = "parent"
"""``parent``, or ``child-<c>`` in a child: names the stats file."""


def write_stats() -> None:
    """Registered before tcc_otel is imported, so it runs after tcc_otel's exit handling."""
    import tcc_otel as tcc

    write_json(f"stats-{role}.json", tcc.stats())


def child(number: int, runs: int, content: str) -> None:
    """The forked child's whole life: its runs, then a normal exit."""
    global role
    role = f"child-{number}"
    for index in range(runs):
        run_id = f"child-{number}-{index}"
        append(run_id, index, record_run(run_id, tool_call=True, content=content))
    sys.exit(0)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=4)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--prompt-bytes", type=int, default=20_000)
    parser.add_argument("--guard", type=float, default=60.0)
    args = parser.parse_args()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # where a hung child is stuck
    atexit.register(write_stats)

    import tcc_otel as tcc

    append("parent", 0, record_run("parent", tool_call=True))
    tcc.flush()  # the parent's connection to the receiver is now open

    chance = random.Random(9)  # text gzip cannot shrink much: bodies stay large
    pids: dict[int, int] = {}  # pid -> child number
    for number in range(args.children):
        content = "".join(chance.choices(string.ascii_letters, k=args.prompt_bytes))
        pid = os.fork()
        if pid == 0:
            child(number, args.runs, content)
        pids[pid] = number

    deadline = time.monotonic() + args.guard
    exit_codes: dict[str, int | None] = {}
    hung: list[int] = []
    while pids:
        for pid, number in list(pids.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                exit_codes[str(number)] = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > deadline:
                hang_report(pid)
                exit_codes[str(number)] = None
                hung.append(number)
            else:
                continue
            del pids[pid]
        time.sleep(0.02)
    write_json("report.json", {"exit_codes": exit_codes, "hung": sorted(hung)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
