"""Send ``deploy.record`` tasks 0..N-1 to the Celery app of tests/scripts/deploy_celery_app.py
(its filesystem broker under ``$DEPLOY_CELERY_DIR``, whose folders the test created); prints
nothing.

Usage: deploy_celery_send.py N
"""

from __future__ import annotations

import sys

from deploy_celery_app import record_task


def main() -> int:
    for index in range(int(sys.argv[1])):
        record_task.delay(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
