"""The package logger. It adds no handlers: the application owns handlers and levels."""

from __future__ import annotations

import logging
import time

logger = logging.getLogger("tcc_otel")


def enable_debug() -> None:
    """Turn on debug output on stderr (``TCC_DEBUG=1``), unless the application set a handler."""
    logger.setLevel(logging.DEBUG)
    if not logger.hasHandlers():  # the application's own (e.g. root) handler prints already
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s tcc_otel %(levelname)s %(message)s"))
        logger.addHandler(handler)


class RateLimitedLog:
    """Logs a warning at most once per ``interval`` seconds per key; the rest go to debug."""

    __slots__ = ("_interval", "_last")

    def __init__(self, interval: float = 10.0) -> None:
        self._interval = interval
        self._last: dict[str, float] = {}

    def warning(self, key: str, msg: str, *args: object) -> None:
        """Log ``msg % args`` as a warning unless ``key`` was logged within the interval."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is None or now - last >= self._interval:
            self._last[key] = now
            logger.warning(msg, *args)
        else:
            logger.debug(msg, *args)
