"""Collect spans as they arrive and print each run's tree once the run has settled."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from typing import Callable

from tcc_otel._local._model import ReceivedSpan, SpanKey
from tcc_otel._local._runs import resolve
from tcc_otel._local._tree import render_run
from tcc_otel._schema._kinds import is_run

_MAX_REMEMBERED = 1000
"""Printed runs remembered (to file late spans under them); the oldest are forgotten first."""


class _Group:
    """The spans of one run (or of one trace without a run) and where printing stands."""

    __slots__ = ("has_run_span", "key", "last_arrival", "pending", "printed", "span_keys")

    def __init__(self, key: str) -> None:
        self.key = key
        self.pending: list[ReceivedSpan] = []
        """Spans not printed yet."""
        self.span_keys: list[SpanKey] = []
        """``(trace_id, span_id)`` of every span filed here, printed or not."""
        self.has_run_span = False
        self.printed = False
        self.last_arrival = 0.0


class _Filed:
    """What the printer has filed, as ``_runs.resolve`` asks for it (a ``_runs.Known``)."""

    __slots__ = ("owner", "traces")

    def __init__(self, owner: dict[SpanKey, str], traces: dict[str, _Group]) -> None:
        self.owner = owner
        self.traces = traces

    def run_of(self, key: SpanKey) -> str | None:
        return self.owner.get(key)

    def waiting_under(self, key: SpanKey) -> Iterable[SpanKey]:
        group = self.traces.get(key[0])
        if group is None:
            return ()
        return [span.key for span in group.pending if span.parent_key == key]


class RunPrinter:
    """Print each run's span tree once, when its spans stop arriving.

    A run is printed when its run span (``tcc.type`` = ``run``) has arrived and no span of the run
    arrived for ``settle`` seconds. A run whose run span never comes (it lives in another process)
    is printed ``orphan_settle`` seconds after its last span, and so are spans that belong to no
    run. Spans of a run that arrive after it was printed come out as a "late spans" addendum.

    ``add()`` may be called from any thread (it is the receiver's ``on_spans``); ``write`` is only
    called from ``flush_due()``/``flush_all()``, never while a lock is held.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        settle: float = 0.5,
        *,
        orphan_settle: float = 2.0,
        color: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create a printer that writes nothing until ``flush_due()`` is called.

        Args:
            write: Receives each printed block of text, ending with a newline.
            settle: Seconds without new spans after which a run with its run span is printed.
            orphan_settle: The same for runs without a run span and spans outside any run.
            color: Render with ANSI colors.
            clock: Source of the time spans arrive at; ``flush_due(now)`` takes the same scale.
        """
        self._write = write
        self._settle = settle
        self._orphan_settle = orphan_settle
        self._color = color
        self._clock = clock
        self._lock = threading.Lock()
        self._runs: dict[str, _Group] = {}
        self._traces: dict[str, _Group] = {}
        """Spans with no run (yet), by trace id; a span moves to a run once its parent is known."""
        self._owner: dict[SpanKey, str] = {}
        """``(trace_id, span_id)`` -> run id, for every span filed under a run."""
        self._filed = _Filed(self._owner, self._traces)
        self._runs_printed = 0

    @property
    def runs_printed(self) -> int:
        """How many run trees were printed so far (late addenda and runless traces not counted)."""
        with self._lock:
            return self._runs_printed

    def add(self, spans: Sequence[ReceivedSpan]) -> None:
        """File newly received spans under their runs (``_runs.resolve``); prints nothing."""
        now = self._clock()
        with self._lock:
            found = resolve(spans, self._filed)
            for span in spans:
                run_id = found.get(span.key)
                if run_id is not None:
                    self._file(run_id, span, now)
                    continue
                group = self._traces.get(span.trace_id)
                if group is None:
                    group = self._traces[span.trace_id] = _Group(span.trace_id)
                group.pending.append(span)
                group.last_arrival = now
            self._adopt(found, {span.trace_id for span in spans})

    def flush_due(self, now: float | None = None) -> int:
        """Print every run that has settled by ``now`` (default: the clock's current time).

        Returns:
            How many run trees this call printed.
        """
        if now is None:
            now = self._clock()
        with self._lock:
            texts, count = self._collect(now, force=False)
        for text in texts:
            self._write(text)
        return count

    def flush_all(self) -> int:
        """Print everything not printed yet, settled or not (for shutdown).

        Returns:
            How many run trees this call printed.
        """
        with self._lock:
            texts, count = self._collect(self._clock(), force=True)
        for text in texts:
            self._write(text)
        return count

    # --- under the lock -------------------------------------------------------------------------

    def _file(self, run_id: str, span: ReceivedSpan, now: float) -> None:
        group = self._runs.get(run_id)
        if group is None:
            group = self._runs[run_id] = _Group(run_id)
        group.pending.append(span)
        group.span_keys.append(span.key)
        group.last_arrival = max(group.last_arrival, now)
        group.has_run_span = group.has_run_span or is_run(span.attributes)
        self._owner[span.key] = run_id

    def _adopt(self, found: dict[SpanKey, str], trace_ids: set[str]) -> None:
        """Move spans that waited without a run under the run ``resolve`` found for them."""
        for trace_id in trace_ids:
            group = self._traces.get(trace_id)
            if group is None:
                continue
            waiting = group.pending
            group.pending = [span for span in waiting if span.key not in found]
            for span in waiting:
                if span.key in found:
                    self._file(found[span.key], span, group.last_arrival)
            if not group.pending:
                del self._traces[trace_id]

    def _collect(self, now: float, force: bool) -> tuple[list[str], int]:
        texts: list[str] = []
        count = 0
        for group in self._runs.values():
            wait = self._settle if group.has_run_span or group.printed else self._orphan_settle
            if not group.pending or (not force and now - group.last_arrival < wait):
                continue
            tree = render_run(group.pending, color=self._color)
            if group.printed:
                texts.append(f"late spans for run {group.key}:\n{tree}\n\n")
            elif group.has_run_span:
                texts.append(f"{tree}\n\n")
                count += 1
            else:
                texts.append(
                    f"run {group.key} (its run span was not received here; "
                    f"it may have been recorded by another process):\n{tree}\n\n"
                )
                count += 1
            group.pending = []
            group.printed = True
        for trace_id, group in list(self._traces.items()):
            if force or now - group.last_arrival >= self._orphan_settle:
                tree = render_run(group.pending, color=self._color)
                texts.append(f"trace {trace_id} (spans outside any tcc run):\n{tree}\n\n")
                del self._traces[trace_id]
        self._runs_printed += count
        self._forget_old()
        return texts, count

    def _forget_old(self) -> None:
        printed = [key for key, group in self._runs.items() if group.printed and not group.pending]
        for key in printed[: max(0, len(printed) - _MAX_REMEMBERED)]:
            for span_key in self._runs.pop(key).span_keys:
                self._owner.pop(span_key, None)
