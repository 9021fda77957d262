"""Counters of what happened to spans, shared by the pipeline and exporter, read by ``stats()``."""

from __future__ import annotations

import collections
import threading
from collections import Counter

_ALWAYS = ("recorded", "exported", "retried")
"""Counters in every snapshot, zero or not."""


class Stats:
    """Thread-safe span counters; every span dropped is counted under a reason.

    Caller threads count with ``note``/``note_drop``, which never take a lock: a signal handler
    that flushes may interrupt the main thread anywhere, and must not find a lock held that the
    export threads need. Export threads use ``add``/``drop``.
    """

    __slots__ = ("_counts", "_dropped", "_lock", "_noted_drops", "_notes")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()
        self._notes: collections.deque[tuple[str, int, bool]] = collections.deque()
        self._noted_drops = 0  # for log lines only: racy increments may miss a few

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name`` (``exported``, ``retried``, ...)."""
        with self._lock:
            self._fold()
            self._counts[name] += n

    def drop(self, reason: str, n: int) -> int:
        """Count ``n`` spans dropped for ``reason``; return the total dropped so far."""
        with self._lock:
            self._fold()
            self._dropped[reason] += n
            return sum(self._dropped.values())

    def note(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name`` without taking the lock (caller threads)."""
        self._notes.append((name, n, False))  # deque.append is atomic

    def note_drop(self, reason: str, n: int = 1) -> int:
        """Count ``n`` spans dropped for ``reason`` without taking the lock (caller threads);
        return about how many were dropped so far, for a log line."""
        self._notes.append((reason, n, True))
        self._noted_drops += n
        return self._noted_drops + sum(self._dropped.copy().values())

    def snapshot(self) -> dict[str, object]:
        """A copy: each counter, ``dropped`` (total) and ``dropped_by_reason``.

        Takes no lock (the caller's thread may be the one a signal handler interrupts): counts
        moving between the notes and the counters at this instant may be missed, never doubled.
        """
        counts, dropped = Counter(self._counts.copy()), Counter(self._dropped.copy())
        for name, n, is_drop in list(self._notes):
            (dropped if is_drop else counts)[name] += n
        out: dict[str, object] = {
            name: counts[name] for name in ("recorded", "exported", "retried")
        }
        out.update(counts)
        out["dropped"] = sum(dropped.values())
        out["dropped_by_reason"] = dict(dropped)
        return out

    def after_fork(self) -> None:
        """In a forked child: a fresh lock and zero counts; the parent's spans are its own."""
        self._lock = threading.Lock()
        self._counts = Counter()
        self._dropped = Counter()
        self._notes = collections.deque()
        self._noted_drops = 0

    def _fold(self) -> None:
        """Move the counts noted without the lock into the counters; call with the lock held."""
        notes = self._notes
        while notes:
            try:
                name, n, is_drop = notes.popleft()
            except IndexError:  # pragma: no cover - another folder emptied it first
                break
            if is_drop:
                self._dropped[name] += n
                self._noted_drops -= n
            else:
                self._counts[name] += n
