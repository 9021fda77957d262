"""Internal-error guard: our own bugs are logged and counted, never raised into the agent."""

from __future__ import annotations

import os

from tcc_otel._log import logger

RAISE_INTERNAL_ERRORS = os.environ.get("TCC_OTEL_RAISE_INTERNAL_ERRORS", "") == "1"
"""Our test suite sets this so that bugs fail tests instead of being logged."""


def internal_error(where: str) -> None:
    """Call from an ``except Exception:`` block around tcc_otel's own code."""
    if RAISE_INTERNAL_ERRORS:
        raise
    logger.exception(
        "internal error in %s; your code keeps running, this record may be incomplete", where
    )
