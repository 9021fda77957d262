"""Batcher: how encoded spans wait for their run and leave in batches, driven by hand with
explicit clocks (no threads): the pipeline's grouping rules one at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcc_otel._export._batch import Batch
from tcc_otel._export._batcher import Batcher, Limits
from tcc_otel._export._spool import Spool
from tcc_otel._export._wire import Origin, origin

WHERE: Origin = origin({"service.name": "test"}, "tcc_otel")
LIMITS = Limits(grace=0.5, batch_delay=1.0, max_hold=10.0, batch_bytes=1000, checkpoint=0.5)


def span(name: str, size: int = 10) -> tuple[Origin, bytes]:
    """A stand-in encoded span: its name padded to ``size`` bytes."""
    return (WHERE, name.encode().ljust(size, b"."))


def names(batch: Batch) -> list[str]:
    """The stand-in spans of a batch, in order."""
    return [raw.rstrip(b".").decode() for group in batch.groups.values() for raw in group]


class Harness:
    """A Batcher whose emitted batches are kept."""

    def __init__(self, spool: Spool | None = None, limits: Limits = LIMITS) -> None:
        self.emitted: list[Batch] = []
        self.batcher = Batcher(limits, spool, self.emitted.append)

    def place(
        self,
        run_id: str,
        name: str,
        *,
        run: bool = False,
        local: bool = True,
        now: float = 0.0,
        size: int = 10,
    ) -> None:
        self.batcher.place(run_id, run, local, span(name, size), now)

    @property
    def sent(self) -> list[list[str]]:
        return [names(batch) for batch in self.emitted]


class TestGrouping:
    """Where a span waits, and when it leaves."""

    def test_children_wait_for_their_run(self) -> None:
        """A run's children wait until the run span, then leave with it in one batch."""
        h = Harness()
        h.place("r", "step-1")
        h.place("r", "tool-1")
        h.batcher.seal_due(1.0)
        assert (h.sent, h.batcher.waiting_for("r")) == ([], True)
        h.place("r", "run", run=True, now=2.0)
        h.batcher.seal_due(2.0)
        assert (h.sent, h.batcher.waiting_for("r")) == ([["step-1", "tool-1", "run"]], False)

    def test_late_children_follow_within_grace(self) -> None:
        """A child that ends after its run was sent leaves once the grace period passed."""
        h = Harness()
        h.place("r", "run", run=True)
        h.batcher.seal_due(0.0)
        h.place("r", "late", now=1.0)
        h.batcher.seal_due(1.4)
        assert h.sent == [["run"]]
        h.batcher.seal_due(1.5)
        assert h.sent == [["run"], ["late"]]

    def test_spans_of_runs_elsewhere_batched_by_time(self) -> None:
        """Spans of a run this process does not know leave after batch_delay, together."""
        h = Harness()
        h.place("remote", "a", local=False, now=0.0)
        h.place("remote", "b", local=False, now=0.5)
        h.batcher.seal_due(0.9)
        assert h.sent == []
        h.batcher.seal_due(1.0)
        assert h.sent == [["a", "b"]]

    def test_long_run_sends_what_it_has(self) -> None:
        """Children of a run still open after max_hold leave without it."""
        h = Harness()
        h.place("r", "step-1", now=0.0)
        h.batcher.seal_due(10.0)
        assert (h.sent, h.batcher.waiting_for("r")) == ([["step-1"]], False)

    def test_request_size_is_bounded(self) -> None:
        """A batch never grows past batch_bytes: a run that does not fit starts a new batch,
        and a run larger than a batch is cut at the limit."""
        h = Harness()
        h.place("a", "run-a", run=True, size=600)
        h.place("b", "step-b", size=600)
        h.place("b", "run-b", run=True, size=600)
        h.batcher.seal_all()
        assert h.sent == [["run-a"], ["step-b"], ["run-b"]]
        assert all(batch.size <= LIMITS.batch_bytes for batch in h.emitted)

    def test_seal_all(self) -> None:
        """A flush sends everything that waits."""
        h = Harness()
        h.place("r", "step", now=0.0)
        h.place("x", "orphan", local=False, now=0.0)
        h.batcher.seal_all()
        assert sorted(n for batch in h.sent for n in batch) == ["orphan", "step"]


class TestCheckpoints:
    """With a spool, waiting spans are on disk within a checkpoint interval, never twice."""

    @pytest.fixture
    def spool(self, tmp_path: Path) -> Spool:
        """A spool in an empty directory."""
        return Spool(str(tmp_path), "http://127.0.0.1:4318/v1/traces", None)

    def test_waiting_spans_checkpointed(self, spool: Spool) -> None:
        """Spans waiting for their run are written to a checkpoint file once the interval
        passed, and only once."""
        h = Harness(spool)
        h.place("r", "step-1")
        h.place("r", "step-2")
        h.batcher.seal_due(0.5)
        h.batcher.seal_due(0.9)
        assert (h.batcher.on_disk_only(), len(list(Path(spool.directory).glob("*-h*")))) == (
            2,
            1,
        )

    def test_checkpoint_removed_once_in_a_batch_file(self, spool: Spool) -> None:
        """When the run ends, its batch is written and the checkpoint goes: each span is on
        disk once."""
        h = Harness(spool)
        h.place("r", "step-1")
        h.batcher.seal_due(0.5)
        h.place("r", "run", run=True, now=1.0)
        h.batcher.seal_due(1.0)
        files = sorted(p.name for p in Path(spool.directory).glob("*.otlp.gz"))
        assert (h.batcher.on_disk_only(), len(files), "-b" in files[0]) == (0, 1, True)
        assert h.sent == [["step-1", "run"]]
