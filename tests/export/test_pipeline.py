"""ExportPipeline: the spans of a run travel together, late children follow within the grace
period, spans of runs that live elsewhere go by time, batches keep to their byte size and the
backlog to its byte bound — on the pipeline itself and through ``tcc``."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from _fault_server import FaultServer, Reply
from helpers.clients import messages
from helpers.delivery import (
    HANG_GUARD,
    SPANS_PER_RUN,
    SpanId,
    accepted_ids,
    counters,
    record_run,
    request_ids,
    sent_spans,
    span_id,
    stats_snapshot,
    use_limits,
    wait_until,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel._export._batcher import Limits
from tcc_otel._export._exporter import OtlpHttpExporter
from tcc_otel._export._pipeline import ExportPipeline
from tcc_otel._export._stats import Stats
from tcc_otel._export._wire import origin, sdk_span

KEY = "test-key-123"
NEVER = 3600.0
"""A wait (grace, batch delay, hold) that no test lives to see: only the other timer acts."""
QUICK = 0.1
"""The wait of the timer under test."""
DELIVERY_GUARD = 5.0
"""Hang guard of a delivery that the timer under test (``QUICK``) should bring about."""


class Rig:
    """A pipeline to ``url`` with its own counters, fed with SDK spans made here.

    ``local_runs`` are the runs ``is_local_run`` claims; while ``gate`` is clear, the batcher
    waits inside that call, so a test can submit several spans before it takes any of them.
    """

    def __init__(
        self,
        url: str,
        limits: Limits,
        *,
        local_runs: frozenset[str] = frozenset(),
        gate: threading.Event | None = None,
    ) -> None:
        self.stats = Stats()
        self.exporter = OtlpHttpExporter(url, api_key="k", stats=self.stats, retry_budget=5.0)
        self._local_runs = local_runs
        self._gate = gate
        self.pipeline = ExportPipeline(
            self.exporter, self.stats, origin(None, "t"), limits=limits, is_local_run=self._local
        )

    def _local(self, run_id: str) -> bool:
        if self._gate is not None:
            self._gate.wait(HANG_GUARD)
        return run_id in self._local_runs

    def submit(self, *spans: ReadableSpan) -> None:
        """Hand ``spans`` to the pipeline as a processor would."""
        for span in spans:
            self.pipeline.submit(span, (span.attributes or {}).get("tcc.type") == "run")

    def close(self) -> None:
        """Stop the pipeline (bounded)."""
        self.pipeline.shutdown(2.0)


_TRACER = TracerProvider().get_tracer("tests")  # private, no processors: spans just end


def make_span(name: str, run_id: str, kind: str = "step") -> ReadableSpan:
    """An ended SDK span ``name`` of ``run_id``; ``kind`` is its ``tcc.type``."""
    span = _TRACER.start_span(name, attributes={"tcc.runId": run_id, "tcc.type": kind})
    span.end()
    assert isinstance(span, ReadableSpan)
    return span


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """An endpoint that accepts everything."""
    with FaultServer() as running:
        yield running


@pytest.fixture
def rigs() -> Iterator[list[Rig]]:
    """Rigs a test creates, closed in teardown."""
    made: list[Rig] = []
    yield made
    for rig in made:
        rig.close()


def names(server: FaultServer) -> list[tuple[str, ...]]:
    """Span names of each request, in order."""
    return [request.span_names for request in server.requests]


def encoded_size(*spans: ReadableSpan) -> int:
    """Encoded bytes of ``spans``, as the pipeline counts them against ``batch_bytes``."""
    return sum(len(sdk_span(span)) for span in spans)


class TestRunBatches:
    """The pipeline itself: a run's spans go out together when the run span arrives."""

    def test_children_travel_with_their_run(self, server: FaultServer, rigs: list[Rig]) -> None:
        """Children that end before their run wait for it, and the run's end sends all of them
        in one request, children first, without a flush."""
        rig = Rig(server.traces_url, Limits(max_hold=NEVER), local_runs=frozenset({"run-a"}))
        rigs.append(rig)
        rig.submit(make_span("step-1", "run-a"), make_span("tool-1", "run-a"))
        rig.submit(make_span("step-2", "run-a"), make_span("agent", "run-a", "run"))
        assert server.wait_for_requests(1, HANG_GUARD)
        assert rig.pipeline.flush(HANG_GUARD)
        assert names(server) == [("step-1", "tool-1", "step-2", "agent")]
        assert rig.stats.snapshot() == stats_snapshot(recorded=4, exported=4)

    def test_flush_after_shutdown_returns_at_once(
        self, server: FaultServer, rigs: list[Rig]
    ) -> None:
        """A provider flushed after ``tcc.shutdown()`` (an application's exit path) calls our
        processor's flush: with the threads stopped there is nothing to wait for."""
        rig = Rig(server.traces_url, Limits(), local_runs=frozenset({"run-a"}))
        rig.submit(make_span("agent", "run-a", "run"))
        rig.close()
        answers: list[bool] = []
        waiter = threading.Thread(target=lambda: answers.append(rig.pipeline.flush(3600.0)))
        waiter.start()
        waiter.join(HANG_GUARD)
        assert not waiter.is_alive(), "flush waited for threads that had stopped"
        assert answers == [True]

    def test_runs_back_to_back_share_a_request(self, server: FaultServer, rigs: list[Rig]) -> None:
        """Two runs ended before the batcher looks go out in one request, each run whole."""
        gate = threading.Event()
        rig = Rig(server.traces_url, Limits(), local_runs=frozenset({"run-a", "run-b"}), gate=gate)
        rigs.append(rig)
        for run in ("run-a", "run-b"):
            rig.submit(make_span(f"{run}-s1", run), make_span(f"{run}-s2", run))
            rig.submit(make_span(f"{run}-r0", run, "run"))
        gate.set()
        assert server.wait_for_requests(1, HANG_GUARD)
        assert rig.pipeline.flush(HANG_GUARD)
        assert names(server) == [
            ("run-a-s1", "run-a-s2", "run-a-r0", "run-b-s1", "run-b-s2", "run-b-r0")
        ]

    def test_run_that_fits_is_not_split(self, server: FaultServer, rigs: list[Rig]) -> None:
        """When two runs do not fit in one batch together, each run still travels whole in its
        own request: a run that fits within ``batch_bytes`` is never split."""
        spans = [
            make_span(f"{run}-{name}", run, "run" if name == "r0" else "step")
            for run in ("run-a", "run-b")
            for name in ("s1", "s2", "r0")
        ]
        gate = threading.Event()
        limits = Limits(batch_bytes=encoded_size(*spans[:4]))  # room for one run and a bit
        rig = Rig(server.traces_url, limits, local_runs=frozenset({"run-a", "run-b"}), gate=gate)
        rigs.append(rig)
        rig.submit(*spans)
        gate.set()
        assert server.wait_for_requests(1, HANG_GUARD)
        assert rig.pipeline.flush(HANG_GUARD)
        assert names(server) == [
            ("run-a-s1", "run-a-s2", "run-a-r0"),
            ("run-b-s1", "run-b-s2", "run-b-r0"),
        ]
        assert rig.stats.snapshot() == stats_snapshot(recorded=6, exported=6)

    def test_run_over_batch_bytes_is_split(self, server: FaultServer, rigs: list[Rig]) -> None:
        """A run larger than ``batch_bytes`` goes out in several requests, none over the size
        and no span lost or repeated."""
        spans = [make_span(f"step-{i}", "run-a") for i in range(6)]
        spans.append(make_span("agent-0", "run-a", "run"))
        limits = Limits(batch_bytes=encoded_size(*spans[:3]), max_hold=NEVER)
        rig = Rig(server.traces_url, limits, local_runs=frozenset({"run-a"}))
        rigs.append(rig)
        rig.submit(*spans)
        assert server.wait_for_requests(3, HANG_GUARD)
        assert rig.pipeline.flush(HANG_GUARD)
        assert names(server) == [
            ("step-0", "step-1", "step-2"),
            ("step-3", "step-4", "step-5"),
            ("agent-0",),
        ]
        assert rig.stats.snapshot() == stats_snapshot(recorded=7, exported=7)


class TestTimers:
    """What does not come with a run span goes out by time: grace, batch delay, max hold."""

    def test_late_child_within_grace(self, server: FaultServer, rigs: list[Rig]) -> None:
        """A child ending after its run was sent follows in a later request once the grace
        period passed, without a flush."""
        limits = Limits(grace=QUICK, batch_delay=NEVER, max_hold=NEVER)
        rig = Rig(server.traces_url, limits, local_runs=frozenset({"run-a"}))
        rigs.append(rig)
        rig.submit(make_span("step-1", "run-a"), make_span("agent", "run-a", "run"))
        assert server.wait_for_requests(1, HANG_GUARD)
        rig.submit(make_span("late-1", "run-a"), make_span("late-2", "run-a"))
        assert server.wait_for_requests(2, DELIVERY_GUARD)
        assert rig.pipeline.flush(HANG_GUARD)
        assert names(server) == [("step-1", "agent"), ("late-1", "late-2")]
        assert rig.stats.snapshot() == stats_snapshot(recorded=4, exported=4)

    def test_spans_of_runs_elsewhere(self, server: FaultServer, rigs: list[Rig]) -> None:
        """Spans of a run that is not in this process go out together once ``batch_delay``
        passed, without a flush and without waiting for a run span."""
        gate = threading.Event()
        limits = Limits(grace=NEVER, batch_delay=QUICK, max_hold=NEVER)
        rig = Rig(server.traces_url, limits, gate=gate)
        rigs.append(rig)
        rig.submit(*(make_span(f"remote-{i}", "run-x") for i in range(3)))
        gate.set()
        assert server.wait_for_requests(1, DELIVERY_GUARD)
        assert names(server) == [("remote-0", "remote-1", "remote-2")]
        assert [span.run_id for span in sent_spans(server.requests[0])] == ["run-x"] * 3

    def test_open_run_children_after_max_hold(self, server: FaultServer, rigs: list[Rig]) -> None:
        """Children of a run still open go out after ``max_hold``; the run span follows alone
        when it ends."""
        limits = Limits(grace=NEVER, batch_delay=NEVER, max_hold=QUICK)
        rig = Rig(server.traces_url, limits, local_runs=frozenset({"run-a"}))
        rigs.append(rig)
        rig.submit(make_span("step-1", "run-a"), make_span("step-2", "run-a"))
        assert server.wait_for_requests(1, DELIVERY_GUARD)
        rig.submit(make_span("agent", "run-a", "run"))
        assert server.wait_for_requests(2, HANG_GUARD)
        assert names(server) == [("step-1", "step-2"), ("agent",)]


class TestBacklogBytes:
    """The encoded backlog waiting for the sender is bounded; the oldest batches give way."""

    def test_oldest_batches_dropped(
        self, rigs: list[Rig], caplog: pytest.LogCaptureFixture
    ) -> None:
        """While the endpoint holds the first request, batches past ``max_queue_bytes`` drop
        the oldest, counted as ``backlog_full`` with one warning, and the newest are sent."""
        answer = threading.Event()
        runs = [f"run-{i}" for i in range(9)]
        spans = {run: [make_span("step", run), make_span("agent", run, "run")] for run in runs}
        one_run = max(encoded_size(*pair) for pair in spans.values())
        bound = 2 * one_run + one_run // 2  # room for two batches, never three
        limits = Limits(
            batch_bytes=max(encoded_size(*pair) for pair in spans.values()),  # a batch per run
            max_queue_bytes=bound,
            max_hold=NEVER,
        )
        with FaultServer([Reply(hold=answer)]) as slow:
            rig = Rig(slow.traces_url, limits, local_runs=frozenset(runs))
            rigs.append(rig)
            rig.submit(*spans["run-0"])
            assert slow.wait_for_requests(1, HANG_GUARD)  # the sender is stuck on run-0
            for run in runs[1:]:
                rig.submit(*spans[run])
            # run-0 in flight and two batches waiting: nothing else is left once the batcher
            # has taken every span and the bound has dropped the rest
            settled = wait_until(lambda: rig.pipeline.pending() == 6)
            answer.set()
            assert rig.pipeline.flush(HANG_GUARD)
            sent = [{span.run_id for span in sent_spans(request)} for request in slow.requests]
        assert (settled, sent) == (True, [{"run-0"}, {"run-7"}, {"run-8"}])
        assert rig.stats.snapshot() == stats_snapshot(
            recorded=18, exported=6, dropped={"backlog_full": 12}
        )
        assert [line for line in messages(caplog.records) if "bytes were waiting" in line] == [
            f"2 spans dropped: more than {bound} bytes were waiting to be sent; 2 dropped so far"
        ]


# --- through tcc ---------------------------------------------------------------------------


def requests_of_each_run(requests: list[list[SpanId]], runs: list[list[SpanId]]) -> list[set[int]]:
    """For each run (its span ids), the indexes of the requests that carried its spans."""
    where = {ids: index for index, request in enumerate(requests) for ids in request}
    return [{where[ids] for ids in run if ids in where} for run in runs]


class TestThroughTcc:
    """Runs recorded with the public API reach the endpoint a run per request."""

    def test_one_request_per_run(
        self, server: FaultServer, client: Client, provider: TracerProvider | None
    ) -> None:
        """A run with three steps and two tool calls arrives in one request holding its six
        spans, children in the order they ended and the run last, without a flush."""
        tcc.configure(base_url=server.url, api_key=KEY, tracer_provider=provider)
        ended = record_run()
        assert server.wait_for_requests(1, HANG_GUARD)
        assert tcc.flush(HANG_GUARD)
        assert [request_ids(request) for request in server.requests] == [ended]
        assert len(ended) == SPANS_PER_RUN
        assert tcc.stats() == counters(recorded=6, exported=6)

    def test_concurrent_runs_never_split(
        self, server: FaultServer, client: Client, provider: TracerProvider | None
    ) -> None:
        """Runs recorded on three threads at once may share requests, but each run's spans all
        arrive in one request, each exactly once."""
        tcc.configure(base_url=server.url, api_key=KEY, tracer_provider=provider)
        runs: list[list[SpanId]] = []
        lock = threading.Lock()

        def agent(first: int) -> None:
            for index in range(first, first + 20):
                ended = record_run(index)
                with lock:
                    runs.append(ended)

        threads = [threading.Thread(target=agent, args=(n * 100,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(HANG_GUARD)
        assert tcc.flush(HANG_GUARD)
        requests = [request_ids(request) for request in server.requests]
        assert accepted_ids(server.requests) == sorted(ids for run in runs for ids in run)
        assert [len(found) for found in requests_of_each_run(requests, runs)] == [1] * 60
        assert tcc.stats() == counters(recorded=360, exported=360)

    def test_late_child_follows_within_grace(
        self,
        server: FaultServer,
        client: Client,
        provider: TracerProvider | None,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A step that ends after its run arrives in a later request of its own once the grace
        period passed, without a flush."""
        use_limits(monkeypatch, grace=QUICK, batch_delay=NEVER, max_hold=NEVER)
        tcc.configure(base_url=server.url, api_key=KEY, tracer_provider=provider)
        r = tcc.run()
        r.prompt("hello")
        late = r.step()
        early = r.step().prompt("p").response("r")
        early.end()
        r.end()
        assert server.wait_for_requests(1, HANG_GUARD)
        late.prompt("still thinking").response("done").end()
        assert server.wait_for_requests(2, DELIVERY_GUARD)
        assert tcc.flush(HANG_GUARD)
        assert [request_ids(request) for request in server.requests] == [
            [span_id(early.span), span_id(r.span)],
            [span_id(late.span)],
        ]
        assert tcc.stats() == counters(recorded=3, exported=3)

    def test_step_of_run_elsewhere(
        self,
        server: FaultServer,
        client: Client,
        provider: TracerProvider | None,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A step of a run this process does not know goes out once ``batch_delay`` passed,
        without a flush; it does not wait for a run span that will never come."""
        use_limits(monkeypatch, grace=NEVER, batch_delay=QUICK, max_hold=NEVER)
        tcc.configure(base_url=server.url, api_key=KEY, tracer_provider=provider)
        step = tcc.step(run_id="elsewhere").prompt("p").response("r")
        step.end()
        delivered = server.wait_for_requests(1, DELIVERY_GUARD)
        assert delivered, f"the step was not sent within {DELIVERY_GUARD} s: {tcc.stats()}"
        assert tcc.flush(HANG_GUARD)
        assert [sent_spans(request) for request in server.requests] == [
            [(*span_id(step.span), "chat", "elsewhere")]
        ]
        assert tcc.stats() == counters(recorded=1, exported=1)

    def test_run_over_batch_bytes_is_split(
        self,
        server: FaultServer,
        client: Client,
        provider: TracerProvider | None,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A run whose encoded spans exceed ``batch_bytes`` arrives in several requests, every
        span exactly once."""
        use_limits(monkeypatch, batch_bytes=4000)
        tcc.configure(base_url=server.url, api_key=KEY, tracer_provider=provider)
        ended = record_run(content="x" * 1500)
        assert tcc.flush(HANG_GUARD)
        assert accepted_ids(server.requests) == sorted(ended)
        assert len(server.requests) > 1
        assert tcc.stats() == counters(recorded=6, exported=6)


class TestBackpressure:
    """In overload only, a caller waits (bounded) for the batcher instead of memory growing."""

    def test_callers_wait_past_the_threshold(self, server: FaultServer, rigs: list[Rig]) -> None:
        """With the batcher stuck, spans past ``pressure_above`` make their caller wait (for
        ``pressure_wait`` at most, counted as caller_waits); nothing is dropped, and once the
        batcher runs every span is delivered."""
        gate = threading.Event()
        limits = Limits(pressure_above=5, pressure_wait=0.01, max_hold=NEVER)
        rig = Rig(server.traces_url, limits, gate=gate)
        rigs.append(rig)
        rig.submit(*[make_span(f"s{i}", "elsewhere") for i in range(12)])
        waits = rig.stats.snapshot()["caller_waits"]
        assert isinstance(waits, int)
        gate.set()
        assert rig.pipeline.flush(HANG_GUARD)
        assert sum(r.span_count for r in server.requests) == 12
        assert 1 <= waits <= 12 - 5
        assert rig.stats.snapshot()["dropped"] == 0

    def test_no_wait_below_the_threshold(self, server: FaultServer, rigs: list[Rig]) -> None:
        """Below the threshold a caller never waits."""
        gate = threading.Event()
        rig = Rig(server.traces_url, Limits(pressure_above=100, max_hold=NEVER), gate=gate)
        rigs.append(rig)
        rig.submit(*[make_span(f"s{i}", "elsewhere") for i in range(12)])
        gate.set()
        assert rig.pipeline.flush(HANG_GUARD)
        assert "caller_waits" not in rig.stats.snapshot()
