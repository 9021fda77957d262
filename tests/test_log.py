"""The package logger (tcc_otel/_log.py): debug output that adds a handler only where the
application has none, and warnings rate-limited per key."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tcc_otel._log import RateLimitedLog, enable_debug, logger


@pytest.fixture
def restored() -> Iterator[None]:
    """The tcc_otel logger's level, handlers and propagation as they were before the test."""
    level, handlers, propagate = logger.level, list(logger.handlers), logger.propagate
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers
    logger.propagate = propagate


def logged(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    """``(level, message)`` of each record logged on ``tcc_otel``."""
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "tcc_otel"]


class TestRateLimitedLog:
    def test_once_per_interval_per_key(self, caplog: pytest.LogCaptureFixture) -> None:
        """Within the interval a key's warning is logged once; repeats go to debug, and
        another key has its own warning."""
        caplog.set_level(logging.DEBUG, logger="tcc_otel")
        log = RateLimitedLog(interval=3600.0)
        log.warning("http_503", "export failed (HTTP %d); %d dropped", 503, 1)
        log.warning("http_503", "export failed (HTTP %d); %d dropped", 503, 2)
        log.warning("unreachable", "export failed (%s)", "ConnectionRefusedError")
        assert logged(caplog) == [
            (logging.WARNING, "export failed (HTTP 503); 1 dropped"),
            (logging.DEBUG, "export failed (HTTP 503); 2 dropped"),
            (logging.WARNING, "export failed (ConnectionRefusedError)"),
        ]

    def test_interval_passed(self, caplog: pytest.LogCaptureFixture) -> None:
        """Once the interval has passed (here it is zero) the warning is logged again."""
        caplog.set_level(logging.DEBUG, logger="tcc_otel")
        log = RateLimitedLog(interval=0.0)
        log.warning("http_503", "export failed (%s)", "first")
        log.warning("http_503", "export failed (%s)", "second")
        assert logged(caplog) == [
            (logging.WARNING, "export failed (first)"),
            (logging.WARNING, "export failed (second)"),
        ]


@pytest.mark.usefixtures("restored")
class TestEnableDebug:
    def test_application_handler_used(self) -> None:
        """Where the application has a handler (as pytest puts one on the root logger), debug
        output goes there: the level is DEBUG and no handler of ours is added."""
        logger.propagate = True
        before = list(logger.handlers)
        enable_debug()
        assert (logger.level, logger.handlers, logging.getLogger().hasHandlers()) == (
            logging.DEBUG,
            before,
            True,
        )

    def test_own_handler_without_one(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Where no handler would print, one handler on stderr prints tcc_otel's lines."""
        logger.propagate = False
        logger.handlers[:] = []
        enable_debug()
        logger.debug("sending %d spans", 3)
        (handler,) = logger.handlers
        err = capsys.readouterr().err
        assert (type(handler), logger.level, err.endswith(" tcc_otel DEBUG sending 3 spans\n")) == (
            logging.StreamHandler,
            logging.DEBUG,
            True,
        ), err
