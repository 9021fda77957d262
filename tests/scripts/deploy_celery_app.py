"""A Celery app whose broker needs no server: kombu's filesystem transport.

Used by tests/deploy/test_deploy_workers.py as ``celery -A deploy_celery_app worker`` and, to send
tasks, by tests/scripts/deploy_celery_send.py. Every folder lives under ``$DEPLOY_CELERY_DIR``
(``queue``, ``processed``, ``control``, ``markers``: the test creates them); results are
ignored. The task ``deploy.record(index)`` records the run ``celery-<index>``
(run + step), writes it to the ledger (tests/scripts/deploy_ledger.py, ``$DEPLOY_LEDGER``) and
then creates the file ``markers/<index>`` under ``$DEPLOY_CELERY_DIR``, so the test knows it ran.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery  # type: ignore[import-untyped]
from deploy_ledger import append, record_run

import tcc_otel  # noqa: F401  imported at the top, as an application's tasks module does

ROOT = Path(os.environ["DEPLOY_CELERY_DIR"])
MARKERS = ROOT / "markers"

app: Any = Celery("deploy_celery_app")
app.conf.update(
    broker_url="filesystem://",
    broker_transport_options={
        "data_folder_in": str(ROOT / "queue"),
        "data_folder_out": str(ROOT / "queue"),
        "processed_folder": str(ROOT / "processed"),
        "store_processed": True,  # nothing goes to the shared temporary directory
        "control_folder": str(ROOT / "control"),
        "polling_interval": 0.1,
    },
    task_ignore_result=True,
    result_backend=None,
)


def record(index: int) -> None:
    """Record the run ``celery-<index>``, write it down, then leave the marker."""
    run_id = f"celery-{index}"
    append(run_id, index, record_run(run_id))
    (MARKERS / str(index)).touch()


record_task: Any = app.task(name="deploy.record")(record)
