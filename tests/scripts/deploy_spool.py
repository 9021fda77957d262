"""A process that records paced runs into a spool until it is killed, or one that only starts
tcc_otel, so that what a killed process spooled is sent.

Run by tests/deploy/test_deploy_signals.py with tcc_otel's settings (``TCC_SPOOL_DIR``,
``TCC_BASE_URL``) in the environment. Modes:

``record``     records ``paced-<i>`` runs (run + step), one every ``--pause`` seconds, each
               written to the ledger as it ends (tests/scripts/deploy_ledger.py,
               ``$DEPLOY_LEDGER``), until it is killed (or ``--max-seconds`` pass: exit 3).
``flush``      ``import tcc_otel`` and ``tcc.flush()``; records nothing.
``configure``  ``import tcc_otel`` and ``tcc.configure()``; records nothing.
``import``     ``import tcc_otel``, nothing else.

Prints nothing.
"""

from __future__ import annotations

import argparse
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["record", "flush", "configure", "import"])
    parser.add_argument("--pause", type=float, default=0.02)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    args = parser.parse_args()

    if args.mode == "record":
        from deploy_ledger import append, record_run

        end = time.monotonic() + args.max_seconds
        index = 0
        while time.monotonic() < end:
            run_id = f"paced-{index}"
            append(run_id, index, record_run(run_id))
            index += 1
            time.sleep(args.pause)
        return 3

    import tcc_otel as tcc

    if args.mode == "flush":
        tcc.flush()
    elif args.mode == "configure":
        tcc.configure()
    return 0


if __name__ == "__main__":
    sys.exit(main())
