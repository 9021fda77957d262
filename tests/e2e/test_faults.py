"""Faults end to end through the public API: a receiver that goes down and comes back, 503s,
429 with Retry-After, 413, a hanging receiver at shutdown, a burst past the span bound and a
backlog past the byte bound. Every span is accounted for: delivered once, or dropped and
counted under a reason."""

from __future__ import annotations

import threading
import time

import pytest
from _fault_server import FaultServer, Reply
from helpers.clients import messages
from helpers.delivery import (
    HANG_GUARD,
    SpanId,
    accepted_ids,
    counters,
    flaky_receiver,
    record_run,
    request_ids,
    span_id,
    use_limits,
    wait_until,
)
from opentelemetry.sdk.trace import TracerProvider

import tcc_otel as tcc
from tcc_otel._client import Client

KEY = "test-key-123"
DOWNTIME = 2.0
"""Seconds the receiver stays down in the outage test: the scenario, not a bound."""
BURST_RUNS = 20_000
"""Runs of the burst; each is a run span and one step."""
BURST_BOUND = 5_000
"""``max_queue_spans`` during the burst."""


def statuses(server: FaultServer) -> list[tuple[int | None, list[SpanId]]]:
    """Each request as (status answered, span ids carried)."""
    return [(request.status, request_ids(request)) for request in server.requests]


def small_run(index: int) -> list[SpanId]:
    """Record a run with one step; return the ids in the order the spans ended."""
    with tcc.run() as r:
        r.prompt(f"q{index}")
        step = r.step().prompt("p").response("r")
        step.end()
    return [span_id(step.span), span_id(r.span)]


class TestReceiverDown:
    """The receiver goes away in the middle of a load and comes back on the same port."""

    def test_everything_arrives(self, client: Client) -> None:
        """Runs recorded before, during and after an outage of a few seconds are all
        delivered, each exactly once, with retries counted and nothing dropped."""
        with flaky_receiver() as receiver:
            tcc.configure(base_url=receiver.url, api_key=KEY)
            recorded: list[SpanId] = []
            stop = threading.Event()

            def load() -> None:
                index = 0
                while not stop.is_set():
                    recorded.extend(record_run(index))
                    index += 1
                    stop.wait(0.01)

            loader = threading.Thread(target=load, name="load", daemon=True)
            loader.start()
            try:
                assert wait_until(lambda: len(receiver.accepted_ids()) >= 60)
                assert receiver.go_down()
                time.sleep(DOWNTIME)  # the outage itself
                receiver.come_back()
                assert wait_until(lambda: bool(receiver.receivers[-1].spans))
            finally:
                stop.set()
                loader.join(HANG_GUARD)
            assert tcc.flush(HANG_GUARD)
            received = receiver.accepted_ids()
        stats = tcc.stats()
        assert received == sorted(recorded)
        assert stats == counters(
            recorded=len(recorded), exported=len(recorded), retried=stats["retried"]
        )
        assert stats["retried"] > 0


class TestRetries:
    """Answers that ask for the batch again."""

    def test_503_three_times(self, client: Client, provider: TracerProvider | None) -> None:
        """Three 503 answers, then 200: the run is sent four times whole and delivered once,
        each retry counted per span."""
        with FaultServer([Reply(503), Reply(503), Reply(503)]) as server:
            tcc.configure(base_url=server.url, api_key=KEY, tracer_provider=provider)
            ended = record_run()
            assert tcc.flush(HANG_GUARD)
        assert statuses(server) == [(503, ended)] * 3 + [(200, ended)]
        assert tcc.stats() == counters(recorded=6, exported=6, retried=18)

    def test_429_retry_after(self, client: Client) -> None:
        """A 429 with ``Retry-After: 1`` is waited out, then the run is delivered once."""
        with FaultServer([Reply(429, {"Retry-After": "1"})]) as server:
            tcc.configure(base_url=server.url, api_key=KEY)
            ended = record_run()
            assert tcc.flush(HANG_GUARD)
        assert statuses(server) == [(429, ended), (200, ended)]
        assert tcc.stats() == counters(recorded=6, exported=6, retried=6)


class TestTooLarge:
    """413 answers."""

    def test_413_splits(self, client: Client) -> None:
        """A run refused with 413 is sent again in two halves, in order, and every span is
        delivered once."""
        with FaultServer([Reply(413)]) as server:
            tcc.configure(base_url=server.url, api_key=KEY)
            ended = record_run()
            assert tcc.flush(HANG_GUARD)
        assert statuses(server) == [(413, ended), (200, ended[:3]), (200, ended[3:])]
        assert tcc.stats() == counters(recorded=6, exported=6)


class TestHangingReceiver:
    """A receiver that takes requests and never answers."""

    def test_shutdown_within_deadline(
        self,
        client: Client,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """With TCC_SHUTDOWN_TIMEOUT=1, tcc.shutdown() returns although a request hangs, and
        one warning gives the number of spans not delivered: the one in flight and the one
        queued behind it."""
        monkeypatch.setenv("TCC_SHUTDOWN_TIMEOUT", "1")
        with FaultServer(default=Reply(hang=True)) as hanging:
            tcc.configure(base_url=hanging.url, api_key=KEY)
            sink = client.pipeline().sink
            assert sink is not None
            record_run(0)
            assert hanging.wait_for_requests(1, HANG_GUARD)
            record_run(1)
            done = threading.Event()

            def close() -> None:
                tcc.shutdown()
                done.set()

            threading.Thread(target=close, name="close", daemon=True).start()
            returned = done.wait(HANG_GUARD)
            stats = tcc.stats()
        sender = sink._sender  # the server's stop ended the hanging request; let it finish
        if sender is not None:
            sender.join(HANG_GUARD)
        assert returned
        assert [request.status for request in hanging.requests] == [None]
        assert stats == counters(recorded=12, dropped={"shutdown_timeout": 12})
        assert [line for line in messages(caplog.records) if "not delivered" in line] == [
            "12 spans were not delivered within the 1.0 s shutdown deadline; "
            "12 spans dropped in all"
        ]


class TestBurst:
    """A burst far past ``max_queue_spans`` while the receiver cannot keep up."""

    def test_slow_receiver(self, client: Client, caplog: pytest.LogCaptureFixture) -> None:
        """While the first request is held, a 20,000-run burst keeps the first 5,000 spans
        and drops the rest as ``queue_full``, counted exactly and warned about once; the
        receiver then gets exactly the spans kept."""
        answer = threading.Event()
        with FaultServer([Reply(hold=answer)]) as slow:
            tcc.configure(
                base_url=slow.url, api_key=KEY, max_queue_spans=BURST_BOUND, export_timeout=60.0
            )
            recorded = [ids for index in range(BURST_RUNS) for ids in small_run(index)]
            during = tcc.stats()
            answer.set()
            assert tcc.flush(HANG_GUARD)
            received = accepted_ids(slow.requests)
        dropped = 2 * BURST_RUNS - BURST_BOUND
        assert during == counters(
            recorded=2 * BURST_RUNS, dropped={"queue_full": dropped}, queued=BURST_BOUND
        )
        assert tcc.stats() == counters(
            recorded=2 * BURST_RUNS, exported=BURST_BOUND, dropped={"queue_full": dropped}
        )
        assert received == sorted(recorded[:BURST_BOUND])
        assert len([line for line in messages(caplog.records) if "queue_full" in line]) == 1

    def test_receiver_down(self, client: Client) -> None:
        """With the receiver down for the whole burst, the spans kept are delivered once it
        comes up: recorded = exported + dropped, and the receiver got exactly ``exported``."""
        with flaky_receiver(up=False) as receiver:
            tcc.configure(base_url=receiver.url, api_key=KEY, max_queue_spans=BURST_BOUND)
            recorded = [ids for index in range(BURST_RUNS) for ids in small_run(index)]
            receiver.come_back()
            assert tcc.flush(HANG_GUARD)
            received = receiver.accepted_ids()
        stats = tcc.stats()
        dropped = 2 * BURST_RUNS - BURST_BOUND
        assert stats == counters(
            recorded=2 * BURST_RUNS,
            exported=BURST_BOUND,
            retried=stats["retried"],
            dropped={"queue_full": dropped},
        )
        assert received == sorted(recorded[:BURST_BOUND])


class TestBacklogBytes:
    """``max_queue_bytes`` bounds the encoded batches waiting while the endpoint is down."""

    def test_tiny_bound_endpoint_down(
        self,
        client: Client,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """With the endpoint down and room for one waiting batch, a run spread over several
        batches loses its oldest ones as ``backlog_full``; once the endpoint is back the rest
        arrive, and recorded = exported + dropped, exactly what the receiver got."""
        use_limits(monkeypatch, batch_bytes=4000)  # each step of the big run fills a batch
        with flaky_receiver(up=False) as receiver:
            tcc.configure(base_url=receiver.url, api_key=KEY, max_queue_bytes=1)
            with tcc.run() as first:
                first.prompt("before the big one")
            first_ids = span_id(first.span)
            assert wait_until(lambda: tcc.stats()["retried"] > 0)  # the sender is stuck on it
            big = record_run(content="x" * 1500)
            receiver.come_back()
            assert tcc.flush(HANG_GUARD)
            received = receiver.accepted_ids()
        stats = tcc.stats()
        by_reason = stats["dropped_by_reason"]
        assert list(by_reason) == ["backlog_full"]
        lost = by_reason["backlog_full"]
        assert 0 < lost < len(big)
        assert stats == counters(
            recorded=7, exported=7 - lost, retried=stats["retried"], dropped={"backlog_full": lost}
        )
        # the oldest batches gave way: what arrived of the big run is its last spans
        assert received == sorted([first_ids, *big[lost:]])
        assert len([line for line in messages(caplog.records) if "bytes were waiting" in line]) == 1
