"""The task of the multiprocessing pool driver (tests/scripts/deploy_pool.py), in a module the
pool's workers import by name, with fork and with spawn."""

from __future__ import annotations

from deploy_ledger import append, record_run

import tcc_otel  # noqa: F401  imported at the top, as an application's tasks module does


def record(index: int) -> str:
    """Record the run ``task-<index>`` (run + step + tool call) in the worker, write it to the
    ledger (``$DEPLOY_LEDGER``) and return its run id."""
    run_id = f"task-{index}"
    append(run_id, index, record_run(run_id, tool_call=True))
    return run_id
