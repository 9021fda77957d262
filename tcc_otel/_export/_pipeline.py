"""Export pipeline: caller threads hand over ended spans; a batcher thread encodes them (itself,
or under a backlog through helper processes: ``_offload``) and groups them by run
(``_batcher``); a sender thread delivers the batches (through the spool when enabled). This
module holds the hand-over, the two threads, the bounds and flush/shutdown.

The caller's cost is one ``deque.append``: no lock, no encoding, no I/O. The batcher hands the
GIL over every few spans, so the agent's threads and the sender keep running; in overload only
(past ``Limits.pressure_above`` spans not yet encoded) a caller waits briefly for it, so memory
stays bounded and a burst the export can absorb loses nothing.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol, Union

from opentelemetry.sdk.trace import ReadableSpan, SpanLimits

from tcc_otel._export._batch import Batch
from tcc_otel._export._batcher import Batcher, Limits
from tcc_otel._export._encode import (
    Prepared,
    encode_prepared,
    light_span,
    limit_values,
    prepare,
    report,
    row,
)
from tcc_otel._export._exporter import Exporter, Outcome
from tcc_otel._export._foreign import Foreign
from tcc_otel._export._foreign import encode as foreign_span
from tcc_otel._export._offload import Offload
from tcc_otel._export._offload_serve import Answer
from tcc_otel._export._process import background_thread, on_fork_child
from tcc_otel._export._spool import Spool
from tcc_otel._export._stats import Stats
from tcc_otel._export._wire import Origin, sdk_origin, sdk_span
from tcc_otel._guard import Guard, report_internal_error
from tcc_otel._log import RateLimitedLog, logger
from tcc_otel._records._span import LightSpan
from tcc_otel._schema._kinds import is_run, run_id_of

Item = Union[LightSpan, ReadableSpan, Foreign]
"""An ended span: a record's in the default mode, or an SDK span of the user's provider."""


class Share(Protocol):
    """Hands a record's span, with the name and attributes built for it, to the application's
    span processors (``_share.Sharing``)."""

    @property
    def active(self) -> bool:
        """Whether there are processors to share with now."""
        ...

    def __call__(self, span: LightSpan, prepared: Prepared) -> None:
        """Share ``span``; never raises."""
        ...


class ExportPipeline:
    """Per-destination pipeline: submit() on any thread; two daemon worker threads.

    Without an exporter it sends nothing and only shares (``share``) the records' spans: the
    default mode with nothing to send to TCC, under a global SDK provider.
    """

    def __init__(
        self,
        exporter: Exporter | None,
        stats: Stats,
        record_origin: Origin,
        *,
        limits: Limits | None = None,
        spool: Spool | None = None,
        is_local_run: Callable[[str], bool] = lambda run_id: False,
        on_start: Callable[[], None] = lambda: None,
        encode_process: str = "auto",
    ) -> None:
        self._exporter = exporter
        self._stats = stats
        self._origin = record_origin
        self._limits = limits or Limits()
        self._spool = spool
        self._is_local_run = is_local_run
        self._on_start = on_start  # the process hooks: exit, signals (once per process)
        self.span_limits = SpanLimits()  # OTEL_SPAN_ATTRIBUTE_* limits, read once
        self._limit_values = limit_values(self.span_limits)
        self._offload = Offload(self._limit_values, encode_process)  # export thread only
        self._log = RateLimitedLog()
        self.share: Share | None = None  # set by the client; kept in a forked child
        self._encoding = Guard(
            "encoding a span (it was dropped)", self._encode_failed, reraise=False
        )
        self._init_state()
        on_fork_child(self._after_fork)

    def _init_state(self) -> None:
        self._inbox: collections.deque[Item] = collections.deque()
        # Reentrant: a SIGTERM handler on the main thread may shut down while that thread is
        # inside flush() holding it.
        self._lock = threading.RLock()
        self._wake = Wake()  # batcher: something to do now
        self._send_ready = threading.Condition(self._lock)  # sender: a batch or a marker
        self._outbox: collections.deque[Batch | _Marker] = collections.deque()
        self._outbox_bytes = 0
        self._held = 0  # spans taken from the inbox and not yet delivered or dropped
        self._flushes: list[Wake] = []
        self._urgent = 0  # flushes or a shutdown in progress: the batcher stops yielding
        self._pressed = 0  # callers waiting for the batcher to catch up (overload)
        self._relieved: queue.SimpleQueue[None] = queue.SimpleQueue()  # one token per waiter
        self._closed = False
        self._batcher: threading.Thread | None = None
        self._sender: threading.Thread | None = None
        self._in_flight: Batch | None = None
        self._given_up = False  # shutdown counted what its deadline left behind
        self._taken = 0  # spans the batcher took from the inbox, not yet counted as recorded
        self._sent = threading.Condition(self._lock)  # batcher: the sender took a batch
        self._delivered_at = -_FLOWING  # when the sender last delivered a batch
        self._groups = Batcher(self._limits, self._spool, self._emit)  # batcher thread

    # --- caller side ------------------------------------------------------------------------

    def submit(self, item: Item, run_end: bool) -> None:
        """Hand over one ended span; never blocks or takes a lock; drops (counted) when the
        bound is hit."""
        if self._closed:
            self._dropped("after_shutdown")
            return
        if len(self._inbox) + self._held >= self._limits.max_spans:
            self._dropped("queue_full")
            return
        inbox = self._inbox
        inbox.append(item)  # deque.append is atomic: no lock on the caller's path
        if self._batcher is None:
            self._start()
        if run_end:
            self._wake.set()
        if len(inbox) > self._limits.pressure_above:
            self._relieve()

    def _relieve(self) -> None:
        """Overload: let the batcher, running flat out meanwhile, get halfway back before the
        caller goes on; a bounded wait that takes no lock."""
        self._stats.note("caller_waits")
        self._pressed += 1  # racy, and only a hint to the batcher
        self._wake.set()
        try:
            self._relieved.get(timeout=self._limits.pressure_wait)
        except queue.Empty:
            pass
        finally:
            self._pressed -= 1

    def _dropped(self, reason: str) -> None:
        self._stats.note("recorded")
        total = self._stats.note_drop(reason)
        self._log.warning(reason, "a span was dropped (%s); %d spans dropped so far", reason, total)

    def pending(self) -> int:
        """Spans submitted and not yet delivered or dropped."""
        return len(self._inbox) + self._held

    def uncounted(self) -> int:
        """Spans handed over that ``Stats`` does not count as recorded yet: the batcher counts
        them as it takes them, so the caller's thread never takes the counters' lock."""
        if self._exporter is None:
            return 0  # sending nothing, it records nothing
        return self._taken + len(self._inbox)

    @property
    def sends(self) -> bool:
        """Whether spans go somewhere (TCC or a collector); else they are only shared."""
        return self._exporter is not None

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is pending, without asking for a flush; ``True`` if it got there.

        For a second caller of ``shutdown()``, and for a signal handler that interrupted the
        first one on its own thread.
        """
        deadline = time.monotonic() + timeout
        while self.pending() and not self._given_up:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return not self.pending()

    def spooled(self) -> int:
        """Spans of this process waiting on disk."""
        return 0 if self._spool is None else self._spool.pending_spans()

    def flush(self, timeout: float) -> bool:
        """Send everything submitted so far, open runs' children included; ``True`` if all of
        it was handled (delivered, or dropped and counted) within ``timeout`` seconds."""
        done = Wake()
        with self._lock:
            if self._batcher is None and not self._inbox:
                return True
            if self._closed and self._batcher is not None and not self._batcher.is_alive():
                return not self.pending()  # shut down: nothing will come, nobody to wait for
            if self._batcher is None:
                self._start()
            self._flushes.append(done)
            self._urgent += 1
        self._wake.set()
        try:
            return done.wait(timeout)
        finally:
            with self._lock:
                self._urgent -= 1

    def shutdown(self, timeout: float) -> None:
        """Deliver what is pending within ``timeout`` seconds, then stop; idempotent.

        With a spool, batches not delivered stay on disk for the next process.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._exporter is not None:
            self._exporter.set_deadline(deadline)  # retries and requests end by the deadline
        delivered = self.flush(timeout)
        for thread in (self._batcher, self._sender):
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        if not delivered:
            self._account_leftovers(timeout)
        self._offload.close()
        if self._exporter is not None:
            self._exporter.shutdown()
        kept = self.spooled()
        if self._spool is not None:
            self._spool.close()  # what is left, any later process (or pipeline) sends
        if kept and self._spool is not None:
            logger.warning(
                "%d spans were not delivered; they are kept in %s and the next process that "
                "uses tcc_otel with that TCC_SPOOL_DIR sends them",
                kept,
                self._spool.directory,
            )

    def _account_leftovers(self, timeout: float) -> None:
        """Count what the deadline left behind; spooled batches stay for the next process."""
        # stop counting the batch in flight
        counted = 0 if self._exporter is None else self._exporter.abandon()
        with self._lock:
            in_flight = self._in_flight
            kept = sum(
                b.count for b in self._outbox if isinstance(b, Batch) and b.spool_path is not None
            )
            if in_flight is not None and in_flight.spool_path is not None:
                kept += counted
            kept += self._groups.on_disk_only()  # checkpoints
            unsent = len(self._inbox) + self._held
            self._stats.add("recorded", len(self._inbox))  # recorded, then lost to the deadline
            if in_flight is not None:
                unsent -= in_flight.count - counted  # spans of it the exporter already counted
            self._inbox.clear()
            self._outbox.clear()
            self._outbox.append(_STOP)  # the sender stops after the request it is in
            self._send_ready.notify()
            self._held = 0
            self._given_up = True
        lost = unsent - kept
        if lost > 0:
            total = self._stats.drop("shutdown_timeout", lost)
            logger.warning(
                "%d spans were not delivered within the %.1f s shutdown deadline; "
                "%d spans dropped in all",
                lost,
                timeout,
                total,
            )

    # --- threads ----------------------------------------------------------------------------

    def _start(self) -> None:
        # idempotent; may be called with the lock held
        if self._batcher is not None:
            return
        self._on_start()
        self._batcher = background_thread(self._batch_loop, "tcc_otel-batch")
        self._sender = background_thread(self._send_loop, "tcc_otel-send")
        self._batcher.start()
        self._sender.start()

    def recover(self) -> None:
        """Send batches that processes now gone left in the spool."""
        if self._spool is None:
            return
        batches = self._spool.adopt()
        if not batches:
            return
        with self._lock:
            self._held += sum(b.count for b in batches)
            self._start()
        for batch in batches:
            self._stats.add("recovered", batch.count)
            self._queue_batch(batch)

    def _batch_loop(self) -> None:
        while True:
            self._wake.wait(self._groups.next_timeout())
            self._drain()
            with self._lock:
                flushes, self._flushes = self._flushes, []
                closed = self._closed
            if flushes or closed:
                self._groups.seal_all()
            else:
                now = time.monotonic()
                self._groups.seal_due(now)
                self._offload.release_idle(now)
            if flushes:
                self._queue_marker(_Marker(flushes))
            if closed and not self._inbox:
                self._queue_marker(_STOP)
                return

    def _drain(self) -> None:
        """Move everything from the inbox into groups, encoding as it goes: in the helper
        processes while they are up and used (``_offload``), else in this thread."""
        inbox = self._inbox
        while inbox:
            if self._offloads() and self._offload.usable(len(inbox)):
                self._drain_offloaded()
            else:
                self._drain_here(_CHECK_EVERY)
            self._count_taken()
            self._groups.seal_due(time.monotonic())  # a long drain still sends what is due
        self._count_taken()

    def _offloads(self) -> bool:
        """Whether record spans may be encoded in the helper: they are sent and not shared
        (sharing needs the attributes built here)."""
        share = self.share
        return self._exporter is not None and (share is None or not share.active)

    def _take(self, n: int) -> list[Item]:
        """Take ``n`` spans from the inbox; they are held until delivered or dropped."""
        inbox = self._inbox
        chunk = [inbox.popleft() for _ in range(n)]
        self._taken += n
        with self._lock:
            self._held += n
        return chunk

    def _drain_here(self, most: int) -> None:
        """Encode and place up to ``most`` spans in this thread."""
        self._place_here(self._take(min(most, len(self._inbox))))

    def _place_here(self, chunk: list[Item]) -> None:
        for n, item in enumerate(chunk, 1):
            with self._encoding:  # one bad span must not stop the pipeline
                self._place(item, time.monotonic())
            self._ease()
            if n % _YIELD_EVERY == 0:
                self._yield()

    def _drain_offloaded(self) -> None:
        """Encode in the helper processes until the inbox is empty, a few frames in flight
        for each, so that they encode while this thread places spans they encoded before.
        Whatever they cannot take, or held when they failed, is encoded here."""
        inbox, offload, sent = self._inbox, self._offload, collections.deque[list[Item]]()
        while inbox or sent:
            if inbox and len(sent) < _IN_FLIGHT * offload.ready and offload.usable(len(inbox)):
                chunk = self._take(min(_CHUNK, len(inbox)))
                if offload.send([row(item) for item in chunk if isinstance(item, LightSpan)]):
                    sent.append(chunk)
                    continue
                # Not taken (a value marshal refuses, or the helpers are gone): spans keep their
                # order, so that a run's spans still meet their run span.
                self._place_answers(sent)
                self._place_here(chunk)
                continue
            if not sent:
                return  # the helpers are gone: what is left is encoded here
            self._place_answers(sent, most=1)

    def _place_answers(self, sent: collections.deque[list[Item]], most: int = 0) -> None:
        """Place the oldest chunks ``sent`` to the helpers (``most`` of them, or all) as
        they answer; if they fail, every chunk still sent is encoded here, in order."""
        for _ in range(most or len(sent)):
            chunk = sent.popleft()
            answer = self._offload.receive(_lights(chunk))
            if answer is None:
                for left in (chunk, *sent):
                    self._place_here(left)
                sent.clear()
                return
            self._place_encoded(chunk, answer)
            self._count_taken()
            self._groups.seal_due(time.monotonic())

    def _place_encoded(self, chunk: list[Item], answer: Answer) -> None:
        """Place a chunk whose record spans the helper encoded (``answer``, in order)."""
        now, origin, place = time.monotonic(), self._origin, self._groups.place
        lengths, notes, blob = answer
        row, at = 0, 0
        for n, item in enumerate(chunk, 1):
            if isinstance(item, LightSpan):
                size = lengths[row]
                note = notes.get(row) if notes else None
                row += 1
                if size < 0:  # the helper caught an error: counted as if caught here
                    report_internal_error("encoding a span (it was dropped)", note)
                    self._encode_failed()
                    continue
                place(item.run_id, item.is_run, item.local, (origin, blob[at : at + size]), now)
                at += size
                if note is not None:
                    cuts, kind = note
                    report(cuts, kind, self._limit_values, self._stats.add)
            else:
                with self._encoding:
                    self._place(item, now)
            if n % _EASE_EVERY == 0:
                self._ease()
        self._ease()

    def _ease(self) -> None:
        """Callers waiting for the batcher to catch up go on once it got halfway back."""
        if self._pressed and len(self._inbox) <= self._limits.pressure_above // 2:
            for _ in range(self._pressed - self._relieved.qsize()):
                self._relieved.put(None)  # a token for each caller still waiting

    def _yield(self) -> None:
        """Let the agent's threads (unless they wait for us) and the sender (when it has a
        batch to send) take the GIL. ``time.sleep(0)`` hands it over: Linux's timer slack
        keeps us off it for ~50 us; every few spans, so that costs little."""
        if not self._urgent and (self._outbox or not self._pressed):
            time.sleep(0)

    def _count_taken(self) -> None:
        if self._taken:
            taken, self._taken = self._taken, 0
            if self._exporter is not None:  # sharing only: nothing to count
                self._stats.add("recorded", taken)

    def _place(self, item: Item, now: float) -> None:
        """Encode one ended span and hand it to the batcher."""
        if isinstance(item, LightSpan):
            self._place_light(item, now)
            return
        span = item.span if isinstance(item, Foreign) else item
        run_id = run_id_of(span.attributes) or ""
        if isinstance(item, Foreign):  # another instrumentation's: TCC's copy of it
            body, run_span = foreign_span(item, self.span_limits, self._stats.add), False
        else:
            body, run_span = sdk_span(item), is_run(item.attributes)
        local = self._groups.waiting_for(run_id) or self._is_local_run(run_id)
        self._groups.place(run_id, run_span, local, (sdk_origin(span), body), now)

    def _place_light(self, span: LightSpan, now: float) -> None:
        """Encode a record's span and, when sharing, hand it to the application's span
        processors: both from the one name and attribute set that ``prepare`` builds."""
        share = self.share
        if self._exporter is None:  # sharing only
            if share is not None:
                share(span, prepare(span, self.span_limits, self._stats.add))
            self._forget(1)
            return
        run_id, run_span, local = span.run_id, span.is_run, span.local
        if share is None or not share.active:
            body = light_span(span, self._limit_values, self._stats.add)
            self._groups.place(run_id, run_span, local, (self._origin, body), now)
            return
        prepared = prepare(span, self.span_limits, self._stats.add)
        # encoded before it is shared: nothing an application's processor does reaches TCC
        encoded = (self._origin, encode_prepared(span, prepared))
        self._groups.place(run_id, run_span, local, encoded, now)
        share(span, prepared)

    def _emit(self, batch: Batch) -> None:
        """The batcher's hand-over: while the sender is delivering, the batcher keeps at most
        a few batches ahead of it (encoding faster than gzip and HTTP only piles up bytes);
        with the endpoint down it goes on, and the byte bound decides what gives way."""
        limit = _AHEAD * self._limits.batch_bytes
        with self._lock:
            if self._outbox_bytes > limit and self._flowing():
                self._sent.wait_for(
                    lambda: self._outbox_bytes <= limit or not self._flowing(), _AHEAD_WAIT
                )
        self._queue_batch(batch)

    def _flowing(self) -> bool:
        """Whether the sender delivered a batch lately (the endpoint takes what we send)."""
        return not self._closed and time.monotonic() - self._delivered_at < _FLOWING

    def _queue_batch(self, batch: Batch) -> None:
        """Hand a batch to the sender; past the byte bound, the oldest batches give way."""
        size = batch.size  # encoded bytes held: compression happens on the sender thread
        evicted: list[Batch] = []
        with self._lock:
            self._outbox.append(batch)
            self._outbox_bytes += size
            while self._outbox_bytes > self._limits.max_queue_bytes:
                oldest = next((b for b in self._outbox if isinstance(b, Batch)), None)
                if oldest is None or oldest is batch:
                    break
                self._outbox.remove(oldest)
                self._outbox_bytes -= oldest.size
                self._held -= oldest.count
                evicted.append(oldest)
            self._send_ready.notify()
        for old in evicted:  # the newest spans are the most useful: the oldest give way
            if old.spool_path is not None:
                continue  # still on disk: the next process sends it
            total = self._stats.drop("backlog_full", old.count)
            self._log.warning(
                "backlog_full",
                "%d spans dropped: more than %d bytes were waiting to be sent; %d dropped so far",
                old.count,
                self._limits.max_queue_bytes,
                total,
            )

    def _queue_marker(self, marker: _Marker) -> None:
        with self._lock:
            self._outbox.append(marker)
            self._send_ready.notify()

    def _send_loop(self) -> None:
        while True:
            with self._send_ready:
                while not self._outbox:
                    self._send_ready.wait()
                entry = self._outbox.popleft()
                if isinstance(entry, Batch):
                    self._outbox_bytes -= entry.size
                    self._in_flight = entry
                    self._sent.notify()
            if isinstance(entry, _Marker):
                if entry is _STOP:
                    return
                for done in entry.flushes:
                    done.set()
                continue
            self._deliver(entry)

    def _deliver(self, batch: Batch) -> None:
        spooled = batch.spool_path is not None
        outcome = Outcome.DROPPED  # unless the exporter says otherwise
        with Guard("sending a batch", lambda: self._dropped_batch(batch), reraise=False):
            if self._exporter is not None:  # else no batch is ever made
                outcome = self._exporter.deliver(batch, keep=spooled)
        if outcome is Outcome.KEPT and not self._closed:
            with self._lock:  # endpoint still down: try again later, it is safe on disk
                self._in_flight = None
            time.sleep(min(1.0, self._limits.batch_delay))
            self._queue_batch_back(batch)
            return
        if spooled and outcome is not Outcome.KEPT and self._spool is not None:
            self._spool.remove(batch.spool_path)
            batch.spool_path = None
        with self._lock:
            self._in_flight = None
            if outcome is Outcome.DELIVERED:
                self._delivered_at = time.monotonic()
            if not self._given_up:  # else shutdown already counted it
                self._held -= batch.count

    def _queue_batch_back(self, batch: Batch) -> None:
        with self._lock:
            self._outbox.appendleft(batch)
            self._outbox_bytes += batch.size

    def _dropped_batch(self, batch: Batch) -> None:
        self._stats.drop("export_error", batch.count)

    def _encode_failed(self) -> None:
        self._forget(1)
        self._stats.drop("encode_error", 1)

    def _forget(self, n: int) -> None:
        with self._lock:
            self._held -= n

    def _after_fork(self) -> None:
        """In a forked child: no threads, fresh locks, an empty pipeline started on first use;
        the parent's spans, connection and spool files stay the parent's."""
        self._init_state()
        self._offload.after_fork()
        if self._exporter is not None:
            self._exporter.after_fork()
        if self._spool is not None:
            self._spool.after_fork()


_YIELD_EVERY = 4
"""Spans the batcher encodes between two hand-overs of the GIL: every span would cost ~50 us
of timer slack each time (Linux); never would starve the sender, whose gzip and HTTP need the
GIL between their blocking calls, until the backlog drops batches."""
_EASE_EVERY = 32
"""Spans the batcher places between two looks at callers waiting for it, when the helper
processes encoded them: placing one is a few microseconds, and no GIL hand-over is needed
(reading the next answer hands it over)."""
_CHUNK = 256
"""Spans per frame to the helper process."""
_IN_FLIGHT = 3
"""Frames the helper may hold: it always has the next one when it finishes one."""
_AHEAD = 4
"""Batches (of ``Limits.batch_bytes``) the batcher may queue ahead of a sender that delivers."""
_AHEAD_WAIT = 1.0
"""Longest wait for such a sender, per batch."""
_FLOWING = 2.0
"""Seconds after a delivery during which the sender counts as delivering."""
_CHECK_EVERY = 512
"""Spans encoded here between two looks at what is due (and whether the helper is up)."""


def _lights(chunk: list[Item]) -> int:
    """Record spans in ``chunk``: the rows it sends to the helper."""
    return sum(1 for item in chunk if isinstance(item, LightSpan))


class Wake:
    """A wake-up call that takes no lock to give: ``set()`` is one C-level queue put.

    ``threading.Event.set`` takes a lock; a SIGTERM handler that flushes on the main thread may
    interrupt that thread inside it (a run ending, say) and would then wait for that same lock
    forever. ``wait`` can be interrupted by signals, like ``Event.wait``.
    """

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[None] = queue.SimpleQueue()

    def set(self) -> None:
        """Wake the waiter (now, or at its next ``wait``)."""
        self._calls.put(None)

    def wait(self, timeout: float | None) -> bool:
        """Wait until set (``True``) or ``timeout`` seconds pass (``False``); one return
        answers every call made so far."""
        try:
            self._calls.get(timeout=timeout)
        except queue.Empty:
            return False
        while True:
            try:
                self._calls.get_nowait()
            except queue.Empty:
                return True


class _Marker:
    """An outbox entry that is not a batch: flushes to signal, or the stop signal."""

    __slots__ = ("flushes",)

    def __init__(self, flushes: list[Wake]) -> None:
        self.flushes = flushes


_STOP = _Marker([])
