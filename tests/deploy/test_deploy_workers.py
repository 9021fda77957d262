"""Worker pools whose workers leave without the interpreter's normal exit: ``multiprocessing``
(fork and spawn) and a real Celery prefork worker. Every run a worker completed reaches the
receiver exactly once, with no code beyond using tcc_otel.

The spans a loopback receiver kept (duplicates included) are compared with the ledger of runs
the workers wrote down as they ended.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.deploy import (
    LEDGER_ENV,
    Processes,
    assert_exactly_once,
    child_env,
    finish,
    read_ledger,
    spans_of,
    wait_for,
    wait_group_gone,
)

from tcc_otel._local._server import Receiver

TASKS = 200
CELERY_TASKS = 20


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_multiprocessing_pool(
    context: str, receiver: Receiver, procs: Processes, ledger: Path
) -> None:
    """200 tasks of a Pool(4) each deliver their run once: with fork after close() and join(),
    with spawn when ``with Pool(...)`` terminates the workers after the results came back."""
    driver = procs.python(
        f"pool-{context}",
        "deploy_pool.py",
        context,
        "--tasks",
        str(TASKS),
        env=child_env(TCC_BASE_URL=receiver.url, **{LEDGER_ENV: str(ledger)}),
    )
    assert finish(driver) == 0, driver.describe()
    wait_group_gone(driver)
    assert json.loads(driver.stdout()) == [f"task-{n}" for n in range(TASKS)]
    runs = read_ledger(ledger)
    assert sorted(run.run_id for run in runs) == sorted(f"task-{n}" for n in range(TASKS))
    expected = spans_of(runs)
    assert len(expected) == TASKS * 3
    assert_exactly_once(receiver.spans, expected)


def test_celery_prefork_max_tasks_per_child(
    receiver: Receiver,
    procs: Processes,
    ledger: Path,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """A Celery prefork worker with ``--max-tasks-per-child=1`` (a new pool process per task)
    delivers each of 20 runs once by the time its warm shutdown after SIGTERM ends."""
    root = tmp_path / "celery"
    for folder in ("queue", "processed", "control", "markers"):
        (root / folder).mkdir(parents=True)
    env = child_env(
        TCC_BASE_URL=receiver.url, DEPLOY_CELERY_DIR=str(root), **{LEDGER_ENV: str(ledger)}
    )
    sender = procs.python("sender", "deploy_celery_send.py", str(CELERY_TASKS), env=env)
    assert finish(sender) == 0, sender.describe()
    worker = procs.start(
        "celery",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "deploy_celery_app",
            "worker",
            "--pool=prefork",
            "-c",
            "2",
            "--max-tasks-per-child=1",
            "--loglevel=WARNING",
        ],
        env,
        cwd=tmp_path,
    )
    markers = root / "markers"
    wait_for(
        lambda: len(list(markers.iterdir())) == CELERY_TASKS,
        f"all {CELERY_TASKS} tasks ran",
        worker,
    )
    signalled = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)  # warm shutdown
    returncode = finish(worker)
    record_property("shutdown_seconds", round(time.monotonic() - signalled, 2))
    assert returncode == 0, worker.describe()
    wait_group_gone(worker)
    runs = read_ledger(ledger)
    assert sorted(run.run_id for run in runs) == sorted(f"celery-{n}" for n in range(CELERY_TASKS))
    expected = spans_of(runs)
    assert len(expected) == CELERY_TASKS * 2
    assert_exactly_once(receiver.spans, expected)
