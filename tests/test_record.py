"""Record, the base of Run, Step and ToolCall: no lock, yet ended exactly once and handed to
export as a copy, whatever threads race on it."""

from __future__ import annotations

import threading

import pytest
from helpers.clients import fresh_client
from helpers.delivery import HANG_GUARD

import tcc_otel as tcc
from tcc_otel._local._server import Receiver
from tcc_otel.testing import CapturedSpans


def race(calls: int, target: object) -> list[BaseException | None]:
    """Run ``target()`` from ``calls`` threads released together; what each one raised."""
    start = threading.Barrier(calls)
    results: list[BaseException | None] = [None] * calls

    def one(index: int) -> None:
        start.wait()
        try:
            target()  # type: ignore[operator]
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


class TestEndsOnce:
    """Concurrent ends: one wins, the others are told the record already ended."""

    @pytest.mark.parametrize("method", ["end", "error"])
    def test_concurrent_ends(self, captured: CapturedSpans, method: str) -> None:
        """Of 8 threads ending one step at once, exactly one succeeds; the rest get the
        'already ended' RuntimeError, and the step is recorded once."""
        for _ in range(20):
            r = tcc.run().prompt("q")
            s = r.step().prompt("p").response("a")
            results = race(8, getattr(s, method))
            assert results.count(None) == 1
            assert all(
                isinstance(e, RuntimeError) and "already ended" in str(e)
                for e in results
                if e is not None
            )
            r.end()
        assert len([x for x in captured.spans if x.name.startswith("chat")]) == 20

    def test_with_block_and_end_race(self, captured: CapturedSpans) -> None:
        """A ``with`` block exiting while another thread ends the record ends it once."""
        for _ in range(20):
            r = tcc.run().prompt("q")
            s = r.step().prompt("p").response("a")
            with s:
                results = race(4, s.end)
            assert results.count(None) == 1
            r.end()
        assert len([x for x in captured.spans if x.name.startswith("chat")]) == 20


class TestHandedOver:
    """What export receives does not change after end()."""

    def test_snapshot_is_a_copy(self) -> None:
        """In the default mode, a setter that slipped past the ended check (simulated) cannot
        change what was handed to export."""
        with Receiver("127.0.0.1", 0) as receiver, fresh_client():
            tcc.configure(base_url=receiver.url)
            r = tcc.run().prompt("the prompt")
            r.end()
            r._fields["tcc.run.user_prompt"] = "changed afterwards"
            assert tcc.flush(HANG_GUARD)
            [span] = receiver.spans
        assert span.attributes["tcc.run.user_prompt"] == "the prompt"
