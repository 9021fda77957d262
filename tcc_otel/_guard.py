"""The internal-error guard: a bug of tcc_otel's own is logged and counted
(``stats()["internal_errors"]``), never raised into the agent or out of an export thread.

    with Guard("Run.end"):
        ...

One ``Guard`` per place, made once and reused (entering it costs two method calls). Under our
test suite (``TCC_OTEL_RAISE_INTERNAL_ERRORS=1``) the error is raised, so bugs fail tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import TracebackType

from tcc_otel._log import logger

RAISE_INTERNAL_ERRORS = os.environ.get("TCC_OTEL_RAISE_INTERNAL_ERRORS", "") == "1"
"""Our test suite sets this so that bugs fail tests instead of being logged."""

_caught = [0]  # internal errors so far in this process (a racy += on a rare path is fine)


def caught() -> int:
    """Internal errors caught so far in this process."""
    return _caught[0]


class Guard:
    """Catches, logs and counts an ``Exception`` raised inside the ``with`` block; an
    ``on_error`` callback, if given, runs after (to count what the error cost)."""

    __slots__ = ("on_error", "reraise", "where")

    def __init__(
        self,
        where: str,
        on_error: Callable[[], None] | None = None,
        *,
        reraise: bool = True,
    ) -> None:
        self.where = where
        self.on_error = on_error
        # False on export threads: raising there would only end the thread, not fail a test
        self.reraise = reraise

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc_type is None or not issubclass(exc_type, Exception):
            return False  # KeyboardInterrupt, SystemExit and the like go on
        _caught[0] += 1
        if self.on_error is not None:
            self.on_error()
        if RAISE_INTERNAL_ERRORS and self.reraise:
            return False
        logger.error(
            "internal error in %s; your code keeps running, this record may be incomplete",
            self.where,
            exc_info=(exc_type, exc, tb),  # type: ignore[arg-type]
        )
        return True


def report_internal_error(where: str, detail: object) -> None:
    """An internal error that another process of ours caught (the encoding helper): counted
    and logged as one a ``Guard`` caught here."""
    _caught[0] += 1
    logger.error(
        "internal error in %s: %s; your code keeps running, this record may be incomplete",
        where,
        detail,
    )


def _reset_after_fork() -> None:
    _caught[0] = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
