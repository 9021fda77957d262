"""A program that records runs and then gets SIGTERM, with or without a handler of its own.

Run by tests/deploy/test_deploy_signals.py with ``$DEPLOY_LEDGER`` and tcc_otel's settings in the
environment. Every run is ``loop-<i>`` (run + step) and goes to the ledger as it ends
(tests/scripts/deploy_ledger.py). Modes:

``loop``    records runs in a tight loop until a signal ends it.
``before``  installs its own SIGTERM handler, then records ``--runs`` runs (tcc_otel starts
            exporting), then waits.
``after``   records ``--runs`` runs (tcc_otel starts exporting), then installs its own SIGTERM
            handler, then waits.
``report``  records ``--runs`` runs, calls ``tcc.flush()``, then waits.

The own handler appends ``handled`` to the file ``handled`` of the ledger directory and calls
``sys.exit(7)``. Before waiting, the other modes write ``ready.json`` to the ledger directory:
``{"disposition": ...}``, SIGTERM's disposition then: ``"SIG_DFL"``, ``"SIG_IGN"``, ``"own"``
(the handler above) or ``"<module>.<qualname>"`` of another handler. Nothing ever waits longer
than ``--max-seconds`` (then exit 3), so a process the test forgot cannot run on.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from types import FrameType

from deploy_ledger import append, directory, record_run, write_json


def own_handler(signum: int, frame: FrameType | None) -> None:
    """The application's SIGTERM handler: leave a mark, then exit 7 through ``sys.exit``."""
    fd = os.open(
        os.path.join(directory(), "handled"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
    )
    os.write(fd, b"handled\n")
    os.close(fd)
    sys.exit(7)


def describe(handler: object) -> str:
    """How ``ready.json`` names a disposition."""
    if handler is signal.SIG_DFL:
        return "SIG_DFL"
    if handler is signal.SIG_IGN:
        return "SIG_IGN"
    if handler is own_handler:
        return "own"
    module = getattr(handler, "__module__", None)
    return f"{module}.{getattr(handler, '__qualname__', repr(handler))}"


def record(index: int) -> None:
    """Record the run ``loop-<index>`` and write it to the ledger."""
    run_id = f"loop-{index}"
    append(run_id, index, record_run(run_id))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["loop", "before", "after", "report"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    args = parser.parse_args()
    end = time.monotonic() + args.max_seconds

    if args.mode == "loop":
        index = 0
        while time.monotonic() < end:
            record(index)
            index += 1
        return 3

    if args.mode == "before":
        signal.signal(signal.SIGTERM, own_handler)
    for index in range(args.runs):
        record(index)
    if args.mode == "after":
        signal.signal(signal.SIGTERM, own_handler)
    if args.mode == "report":
        import tcc_otel as tcc

        tcc.flush()
    write_json("ready.json", {"disposition": describe(signal.getsignal(signal.SIGTERM))})
    while time.monotonic() < end:
        time.sleep(0.05)
    return 3


if __name__ == "__main__":
    sys.exit(main())
