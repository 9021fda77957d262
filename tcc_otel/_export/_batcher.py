"""Batcher: groups encoded spans by run into batches (the batcher thread's state, no locks).

A run's steps and tool calls wait for the run span and travel with it in one request, where
size allows; children that end after their run follow within ``Limits.grace``; spans of runs
that live elsewhere are batched by time (``Limits.batch_delay``); a long open run sends what it
has after ``Limits.max_hold``. With a spool, sealed batches are written to disk before they are
handed on, and spans still waiting for their run are checkpointed every ``Limits.checkpoint``
seconds (removed once they are in a batch file), so SIGKILL loses at most about a second.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from tcc_otel._export._batch import Batch
from tcc_otel._export._spool import Spool
from tcc_otel._export._wire import Origin

Encoded = tuple[Origin, bytes]
"""One encoded span and the origin (resource, scope) it shares with others."""
_RECENT_RUNS = 4096  # runs sent recently: their late children follow in the grace group


class Limits:
    """Bounds and timings of a pipeline; every bound that drops spans counts them."""

    __slots__ = (
        "batch_bytes",
        "batch_delay",
        "checkpoint",
        "grace",
        "max_hold",
        "max_queue_bytes",
        "max_spans",
        "pressure_above",
        "pressure_wait",
    )

    def __init__(
        self,
        *,
        max_spans: int = 200_000,
        max_queue_bytes: int = 64 * 1024 * 1024,
        batch_bytes: int = 1024 * 1024,
        grace: float = 0.5,
        batch_delay: float = 1.0,
        max_hold: float = 10.0,
        pressure_above: int = 10_000,
        pressure_wait: float = 0.05,
        checkpoint: float = 0.5,
    ) -> None:
        self.max_spans = max_spans  # spans accepted and not yet delivered (or dropped)
        self.max_queue_bytes = max_queue_bytes  # encoded bytes of batches waiting to be sent
        self.batch_bytes = batch_bytes  # encoded bytes per request, before compression
        self.grace = grace  # how long children that end after their run may wait
        self.batch_delay = batch_delay  # how long spans with no run here may wait
        self.max_hold = max_hold  # how long children of a still-open run may wait
        # Overload only: past this many spans not yet encoded, a caller handing one over waits
        # (at most pressure_wait seconds) for the batcher to get halfway back: memory stays
        # bounded, and nothing is dropped for a burst the export can absorb.
        self.pressure_above = pressure_above
        self.pressure_wait = pressure_wait
        self.checkpoint = checkpoint  # with a spool: how often waiting spans go to disk


class _Hold:
    """A spool checkpoint file of waiting spans; removed once all of them are in batch files."""

    __slots__ = ("path", "remaining")

    def __init__(self, path: str, count: int) -> None:
        self.path = path
        self.remaining = count


class _Group:
    """Encoded spans waiting for something: their run to end, a grace period, a size."""

    __slots__ = ("holds", "saved", "since", "size", "spans")

    def __init__(self, now: float) -> None:
        self.since = now
        self.size = 0
        self.spans: list[Encoded] = []
        self.saved = 0  # spans[:saved] are in spool checkpoints
        self.holds: list[tuple[_Hold, int]] = []  # those checkpoints, and how many spans each

    def add(self, encoded: Encoded, now: float) -> None:
        if not self.spans:
            self.since = now
        self.spans.append(encoded)
        self.size += len(encoded[1])


class Batcher:
    """Places encoded spans, seals batches and hands them to ``emit`` (the sender's queue)."""

    def __init__(self, limits: Limits, spool: Spool | None, emit: Callable[[Batch], None]) -> None:
        self._limits = limits
        self._spool = spool
        self._emit = emit
        self._runs: dict[str, _Group] = {}  # children of runs still open here
        self._recent: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._late = _Group(0.0)  # children that ended after their run was sent
        self._orphans = _Group(0.0)  # spans of runs that live elsewhere
        self._batch = Batch()
        self._batch_holds: list[tuple[_Hold, int]] = []  # released once the batch is on disk
        self._holds: set[_Hold] = set()  # checkpoint files with spans only they hold
        self._checkpointed = 0.0

    def waiting_for(self, run_id: str) -> bool:
        """Whether children of ``run_id`` wait here for its span."""
        return run_id in self._runs

    def next_timeout(self) -> float:
        """How long the batcher thread may sleep before something is due."""
        limits = self._limits
        if self._late.spans or self._orphans.spans or self._runs:
            return min(limits.grace, limits.batch_delay, limits.max_hold) / 2
        return 1.0

    def on_disk_only(self) -> int:
        """Spans that are on disk in checkpoints and nowhere else yet."""
        return sum(hold.remaining for hold in list(self._holds))

    def place(self, run_id: str, run_span: bool, local: bool, encoded: Encoded, now: float) -> None:
        """Put one encoded span where it waits: with its run, in a group, or in the batch."""
        if run_span:  # the run and the children it waited for travel together
            group = self._runs.pop(run_id, None)
            unit = [encoded] if group is None else [*group.spans, encoded]
            unit_size = len(encoded[1]) + (0 if group is None else group.size)
            if self._batch.count and self._batch.size + unit_size > self._limits.batch_bytes:
                self._seal_batch()  # start a new request rather than cut the run in two
            self._extend(unit)
            if group is not None:
                self._batch_holds.extend(group.holds)
            self._recent[run_id] = now
            if len(self._recent) > _RECENT_RUNS:
                self._recent.popitem(last=False)
        elif run_id in self._recent:
            self._add(self._late, encoded, now)
        elif local:
            group = self._runs.get(run_id)
            if group is None:
                group = self._runs[run_id] = _Group(now)
            self._add(group, encoded, now)
        else:
            self._add(self._orphans, encoded, now)

    def seal_due(self, now: float) -> None:
        """Seal what has waited long enough; the current batch goes whenever this is called."""
        limits = self._limits
        if self._late.spans and now - self._late.since >= limits.grace:
            self._extend(self._late.spans)
            self._late = _Group(now)
        if self._orphans.spans and now - self._orphans.since >= limits.batch_delay:
            self._extend(self._orphans.spans)
            self._orphans = _Group(now)
        for run_id in [r for r, g in self._runs.items() if now - g.since >= limits.max_hold]:
            self._send_group(self._runs.pop(run_id))  # a long run: send what it has
        if self._spool is not None and now - self._checkpointed >= limits.checkpoint:
            self._checkpoint(now)
        self._seal_batch()

    def seal_all(self) -> None:
        """Seal everything that waits (a flush or a shutdown)."""
        for group in (self._late, self._orphans, *self._runs.values()):
            self._send_group(group)
        self._late, self._orphans, self._runs = _Group(0.0), _Group(0.0), {}
        self._seal_batch()

    def _add(self, group: _Group, encoded: Encoded, now: float) -> None:
        """Add to a waiting group; a group that fills a request goes now (memory stays small)."""
        group.add(encoded, now)
        if group.size >= self._limits.batch_bytes:
            self._send_group(group)
            group.spans, group.size, group.saved, group.holds = [], 0, 0, []

    def _send_group(self, group: _Group) -> None:
        """Put a group's spans in the current batch; its checkpoints go once that is on disk."""
        self._extend(group.spans)
        self._batch_holds.extend(group.holds)

    def _extend(self, spans: list[Encoded]) -> None:
        """Add spans to the current batch, sealing it each time it reaches the size limit."""
        limit = self._limits.batch_bytes
        for where, span in spans:
            if self._batch.count and self._batch.size + len(span) > limit:
                self._seal_batch()
            self._batch.add(where, span)

    def _seal_batch(self) -> None:
        batch = self._batch
        if not batch.count:
            return
        self._batch = Batch()
        if self._spool is not None:
            self._spool.write(batch)
            holds, self._batch_holds = self._batch_holds, []
            if holds:
                self._release(holds)
        self._emit(batch)

    # --- spool checkpoints ------------------------------------------------------------------

    def _checkpoint(self, now: float) -> None:
        """Write the spans waiting for their run that are not on disk yet to spool checkpoint
        files (at most one request's worth each), so that SIGKILL cannot take them."""
        assert self._spool is not None
        self._checkpointed = now
        limit = self._limits.batch_bytes
        batch = Batch()
        parts: list[tuple[_Group, int]] = []
        for group in self._runs.values():
            for span in group.spans[group.saved :]:
                if batch.count and batch.size + len(span[1]) > limit:
                    self._write_hold(batch, parts)
                    batch, parts = Batch(), []
                batch.add(*span)
                if parts and parts[-1][0] is group:
                    parts[-1] = (group, parts[-1][1] + 1)
                else:
                    parts.append((group, 1))
        if batch.count:
            self._write_hold(batch, parts)

    def _write_hold(self, batch: Batch, parts: list[tuple[_Group, int]]) -> None:
        assert self._spool is not None
        path = self._spool.write_hold(batch)
        if path is None:
            return  # logged; those spans stay in memory only, as without a spool
        hold = _Hold(path, batch.count)
        self._holds.add(hold)
        for group, n in parts:
            group.saved += n
            group.holds.append((hold, n))

    def _release(self, holds: list[tuple[_Hold, int]]) -> None:
        """Checkpointed spans are in a batch file now (or the write failed and they are in
        memory only): a checkpoint none of whose spans is left there is removed."""
        assert self._spool is not None
        for hold, n in holds:
            hold.remaining -= n
            if hold.remaining <= 0:
                self._spool.remove(hold.path)
                self._holds.discard(hold)
