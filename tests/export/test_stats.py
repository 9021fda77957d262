"""Stats: counters that caller threads bump without a lock and export threads under one."""

from __future__ import annotations

import threading

from tcc_otel._export._stats import Stats


def whole(**counts: object) -> dict[str, object]:
    """A whole snapshot: the three counters always present, ``dropped`` and its reasons."""
    by_reason = counts.pop("dropped_by_reason", {})
    assert isinstance(by_reason, dict)
    expected: dict[str, object] = {"recorded": 0, "exported": 0, "retried": 0}
    expected.update(counts)
    expected["dropped"] = sum(by_reason.values())
    expected["dropped_by_reason"] = by_reason
    return expected


class TestCounting:
    """What each call adds to the snapshot."""

    def test_empty(self) -> None:
        """A new Stats shows the three counters at zero and nothing dropped."""
        assert Stats().snapshot() == whole()

    def test_add_and_drop(self) -> None:
        """``add`` and ``drop`` count under their names; ``drop`` returns the total so far."""
        stats = Stats()
        stats.add("exported", 5)
        stats.add("kept", 2)
        assert stats.drop("http_400", 3) == 3
        assert stats.drop("queue_full", 1) == 4
        assert stats.snapshot() == whole(
            exported=5, kept=2, dropped_by_reason={"http_400": 3, "queue_full": 1}
        )

    def test_notes_show_before_and_after_folding(self) -> None:
        """Counts noted without the lock appear in the snapshot at once, and exactly once
        after the export side folds them into the counters."""
        stats = Stats()
        stats.note("recorded", 2)
        assert stats.note_drop("after_shutdown") == 1
        before = stats.snapshot()
        stats.add("exported", 1)  # folds the notes
        assert before == whole(recorded=2, dropped_by_reason={"after_shutdown": 1})
        assert stats.snapshot() == whole(
            recorded=2, exported=1, dropped_by_reason={"after_shutdown": 1}
        )

    def test_note_drop_total_includes_folded(self) -> None:
        """The total ``note_drop`` returns counts drops already folded and those still noted."""
        stats = Stats()
        stats.drop("http_500", 4)
        stats.note_drop("queue_full")
        assert stats.note_drop("queue_full", 2) == 7

    def test_after_fork_starts_clean(self) -> None:
        """In a forked child the counters start from zero: the parent's spans are its own."""
        stats = Stats()
        stats.add("exported", 3)
        stats.note_drop("queue_full")
        stats.after_fork()
        assert stats.snapshot() == whole()


class TestThreads:
    """Counting from many threads at once loses nothing."""

    def test_notes_and_adds_from_many_threads(self) -> None:
        """Four caller threads noting and one export thread adding and folding give exact
        totals."""
        stats = Stats()
        per_thread = 20_000

        def caller() -> None:
            for _ in range(per_thread):
                stats.note("recorded")
                stats.note_drop("queue_full")

        def exporter() -> None:
            for _ in range(per_thread):
                stats.add("exported")

        threads = [threading.Thread(target=caller) for _ in range(4)]
        threads.append(threading.Thread(target=exporter))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats.add("retried", 0)  # a last fold
        assert stats.snapshot() == whole(
            recorded=4 * per_thread,
            exported=per_thread,
            dropped_by_reason={"queue_full": 4 * per_thread},
        )
