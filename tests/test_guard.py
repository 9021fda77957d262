"""The internal-error guard: a bug of tcc_otel's own is logged and counted, never raised into the
agent or out of an export thread; under our test suite it is raised on the caller's side."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from helpers.clients import fresh_client
from helpers.delivery import HANG_GUARD, counters

import tcc_otel as tcc
from tcc_otel import _guard
from tcc_otel._export import _encode
from tcc_otel._guard import Guard
from tcc_otel._local._server import Receiver
from tcc_otel._records._span import LightSpan


@pytest.fixture
def caught_from_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's count of internal errors starts at zero for the test."""
    monkeypatch.setattr(_guard, "_caught", [0])


def boom(*args: Any, **kwargs: Any) -> Any:
    """A bug."""
    raise RuntimeError("a bug of ours")


@pytest.mark.usefixtures("caught_from_zero")
class TestGuard:
    """What the guard does with an exception, by itself."""

    def test_caught_counted_logged(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Outside our test suite an Exception is swallowed, counted, logged once with where
        it happened and its traceback, and on_error runs."""
        monkeypatch.setattr(_guard, "RAISE_INTERNAL_ERRORS", False)
        costs: list[str] = []
        with Guard("somewhere", lambda: costs.append("counted")):
            boom()
        [record] = [r for r in caplog.records if r.name == "tcc_otel"]
        assert (costs, _guard.caught(), record.levelno) == (["counted"], 1, logging.ERROR)
        assert record.getMessage().startswith("internal error in somewhere;")
        assert record.exc_info is not None

    def test_raised_under_the_test_suite(self) -> None:
        """With TCC_OTEL_RAISE_INTERNAL_ERRORS=1 (set by conftest) the bug is raised, and
        still counted."""
        with pytest.raises(RuntimeError, match="a bug of ours"), Guard("somewhere"):
            boom()
        assert _guard.caught() == 1

    def test_export_side_never_raises(self) -> None:
        """A guard of an export thread swallows even under the test suite: raising there
        would only end the thread."""
        with Guard("export", reraise=False):
            boom()
        assert _guard.caught() == 1

    def test_interrupts_pass(self) -> None:
        """KeyboardInterrupt and SystemExit are not bugs: they go on, uncounted."""
        with pytest.raises(KeyboardInterrupt), Guard("somewhere", reraise=False):
            raise KeyboardInterrupt
        assert _guard.caught() == 0


@pytest.mark.usefixtures("caught_from_zero")
class TestWhereItGuards:
    """The guard around tcc_otel's own code on both sides, seen through tcc.stats()."""

    def test_bug_on_the_export_thread(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A bug while building a span's attributes drops that span (counted as encode_error
        and as an internal error); the pipeline goes on and delivers the next run."""
        with Receiver("127.0.0.1", 0) as receiver, fresh_client():
            tcc.configure(base_url=receiver.url)
            with monkeypatch.context() as patched:
                patched.setattr(_encode, "attributes", boom)
                with tcc.run(run_id="broken") as r:
                    r.prompt("q")
                assert tcc.flush(HANG_GUARD)
            with tcc.run(run_id="fine") as r:
                r.prompt("q")
            assert tcc.flush(HANG_GUARD)
            stats = tcc.stats()
            runs = [span.attributes["tcc.runId"] for span in receiver.spans]
        assert runs == ["fine"]
        assert stats == counters(
            recorded=2, exported=1, dropped={"encode_error": 1}, internal_errors=1
        )

    def test_bug_on_the_callers_thread(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Outside our test suite, a bug while ending a record never reaches the agent: the
        span still ends and is sent (without the record's fields), and it is counted."""
        monkeypatch.setattr(_guard, "RAISE_INTERNAL_ERRORS", False)
        with Receiver("127.0.0.1", 0) as receiver, fresh_client():
            tcc.configure(base_url=receiver.url)
            monkeypatch.setattr(LightSpan, "finish", boom)
            r = tcc.run(run_id="half")
            r.prompt("q").end()
            assert tcc.flush(HANG_GUARD)
            stats = tcc.stats()
            [span] = receiver.spans
        assert (span.name, span.attributes["tcc.runId"]) == ("invoke_agent", "half")
        assert "tcc.run.user_prompt" not in span.attributes
        assert stats == counters(recorded=1, exported=1, internal_errors=1)
