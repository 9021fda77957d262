"""Counters of what happened to spans, shared by the processor and exporter, read by ``stats()``."""

from __future__ import annotations

import threading
from collections import Counter


class Stats:
    """Thread-safe span counters; every span dropped is counted under a reason."""

    __slots__ = ("_counts", "_dropped", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name`` (``recorded``, ``exported``, ``retried``, ...)."""
        with self._lock:
            self._counts[name] += n

    def drop(self, reason: str, n: int) -> int:
        """Count ``n`` spans dropped for ``reason``; return the total dropped so far."""
        with self._lock:
            self._dropped[reason] += n
            return sum(self._dropped.values())

    def snapshot(self) -> dict[str, object]:
        """A copy: each counter, ``dropped`` (total) and ``dropped_by_reason``."""
        with self._lock:
            out: dict[str, object] = {
                name: self._counts[name] for name in ("recorded", "exported", "retried")
            }
            out.update(self._counts)
            out["dropped"] = sum(self._dropped.values())
            out["dropped_by_reason"] = dict(self._dropped)
            return out
