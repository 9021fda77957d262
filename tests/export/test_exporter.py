"""OtlpHttpExporter against a scripted endpoint: retries, Retry-After, 413 splits, drops, deadline,
keep-alive."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import pytest
from _fault_server import FaultServer, Reply, closed_port
from helpers.clients import make_spans, messages
from helpers.delivery import stats_snapshot
from opentelemetry.sdk.trace.export import SpanExportResult

from tcc_otel._export._exporter import OtlpHttpExporter
from tcc_otel._export._stats import Stats

KEY = "tcc_live_4f9a8b7c6d5e4f3a2b1c"
"""An API key shaped so that no generic redaction pattern would hide it: only our care does."""
HANG_GUARD = 20.0
"""Seconds after which a test that waits on the exporter is considered hung."""
SHORT_GUARD = 5.0
"""The hang guard of a wait that should end within a second."""


class RecordingEvent(threading.Event):
    """An Event that remembers every timeout it was asked to wait for."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []
        self.entered = threading.Event()
        """Set once ``wait()`` was first called."""

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        self.entered.set()
        return super().wait(timeout)


@pytest.fixture
def stats() -> Stats:
    """Counters shared with the exporter under test."""
    return Stats()


def exporter_for(
    url: str, stats: Stats, *, timeout: float = 5.0, retry_budget: float = 10.0
) -> OtlpHttpExporter:
    """An exporter with the test key and a short budget."""
    return OtlpHttpExporter(
        url, api_key=KEY, stats=stats, timeout=timeout, retry_budget=retry_budget
    )


class TestSuccess:
    """Requests that the endpoint accepts."""

    def test_request(self, stats: Stats) -> None:
        """One POST to the traces URL carries every span, gzipped, with the Bearer key."""
        with FaultServer() as server:
            result = exporter_for(server.traces_url, stats).export(make_spans(3))
        assert result is SpanExportResult.SUCCESS
        assert [
            (
                r.method,
                r.path,
                r.headers.get("authorization"),
                r.headers.get("content-type"),
                r.headers.get("content-encoding"),
                r.span_names,
            )
            for r in server.requests
        ] == [
            (
                "POST",
                "/v1/traces",
                f"Bearer {KEY}",
                "application/x-protobuf",
                "gzip",
                ("span-0", "span-1", "span-2"),
            )
        ]
        assert stats.snapshot() == stats_snapshot(exported=3)

    def test_keep_alive(self, stats: Stats) -> None:
        """Several exports reuse one TCP connection."""
        with FaultServer() as server:
            exporter = exporter_for(server.traces_url, stats)
            results = [exporter.export(make_spans(2)) for _ in range(4)]
            connections = server.connections
            exporter.shutdown()
        assert results == [SpanExportResult.SUCCESS] * 4
        assert [(r.connection, r.span_count) for r in server.requests] == [(1, 2)] * 4
        assert connections == 1
        assert stats.snapshot() == stats_snapshot(exported=8)

    def test_nothing_to_send(self, stats: Stats) -> None:
        """An empty batch succeeds without a request."""
        with FaultServer() as server:
            result = exporter_for(server.traces_url, stats).export([])
        assert (result, server.requests, stats.snapshot()) == (
            SpanExportResult.SUCCESS,
            [],
            stats_snapshot(),
        )


class TestRetry:
    """Transient failures are retried within the budget."""

    def test_503_three_times(self, stats: Stats) -> None:
        """Three 503 answers, then 200: the batch is delivered and each retry is counted."""
        script = [Reply(503), Reply(503), Reply(503), Reply(200)]
        with FaultServer(script) as server:
            result = exporter_for(server.traces_url, stats).export(make_spans(2))
        assert result is SpanExportResult.SUCCESS
        assert [(r.status, r.span_count) for r in server.requests] == [
            (503, 2),
            (503, 2),
            (503, 2),
            (200, 2),
        ]
        assert stats.snapshot() == stats_snapshot(exported=2, retried=6)

    @pytest.mark.parametrize("status", [429, 502, 503, 504])
    def test_retryable_statuses(self, stats: Stats, status: int) -> None:
        """429, 502, 503 and 504 are retried (here at once, as Retry-After: 0 asks)."""
        script = [Reply(status, {"Retry-After": "0"}), Reply(200)]
        with FaultServer(script) as server:
            result = exporter_for(server.traces_url, stats).export(make_spans(1))
        assert result is SpanExportResult.SUCCESS
        assert [r.status for r in server.requests] == [status, 200]
        assert stats.snapshot() == stats_snapshot(exported=1, retried=1)

    def test_retry_after(self, stats: Stats) -> None:
        """A 429 with ``Retry-After: 1`` makes the exporter wait exactly one second, then
        succeed."""
        script = [Reply(429, {"Retry-After": "1"}), Reply(200)]
        with FaultServer(script) as server:
            exporter = exporter_for(server.traces_url, stats)
            wake = exporter._wake = RecordingEvent()
            result = exporter.export(make_spans(2))
        assert result is SpanExportResult.SUCCESS
        assert wake.waits == [1.0]
        assert [r.status for r in server.requests] == [429, 200]
        assert stats.snapshot() == stats_snapshot(exported=2, retried=2)

    def test_retry_after_date_in_the_past(self, stats: Stats) -> None:
        """A Retry-After given as an HTTP date that has passed means retry at once."""
        script = [Reply(503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), Reply(200)]
        with FaultServer(script) as server:
            exporter = exporter_for(server.traces_url, stats)
            wake = exporter._wake = RecordingEvent()
            result = exporter.export(make_spans(1))
        assert (result, wake.waits) == (SpanExportResult.SUCCESS, [0.0])
        assert stats.snapshot() == stats_snapshot(exported=1, retried=1)

    def test_retry_after_beyond_budget(
        self, stats: Stats, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A Retry-After longer than the remaining budget drops the batch at once, counted
        under the status."""
        with FaultServer([Reply(503, {"Retry-After": "60"})]) as server:
            exporter = exporter_for(server.traces_url, stats, retry_budget=2.0)
            wake = exporter._wake = RecordingEvent()
            result = exporter.export(make_spans(2))
        assert result is SpanExportResult.FAILURE
        assert (wake.waits, len(server.requests)) == ([], 1)
        assert stats.snapshot() == stats_snapshot(dropped={"http_503": 2})
        assert len(messages(caplog.records)) == 1

    def test_connection_refused(self, stats: Stats, caplog: pytest.LogCaptureFixture) -> None:
        """A closed port is retried until the budget runs out, then the batch is dropped as
        ``unreachable`` with a warning."""
        url = f"http://127.0.0.1:{closed_port()}/v1/traces"
        exporter = exporter_for(url, stats, retry_budget=2.0)
        wake = exporter._wake = RecordingEvent()
        result = exporter.export(make_spans(3))
        assert result is SpanExportResult.FAILURE
        snapshot = stats.snapshot()
        assert snapshot == stats_snapshot(retried=3 * len(wake.waits), dropped={"unreachable": 3})
        assert len(wake.waits) >= 1
        warnings = messages(caplog.records)
        assert warnings
        assert "3 spans dropped" in warnings[-1]
        assert all(KEY not in line for line in messages(caplog.records, logging.DEBUG))


class TestRefused:
    """Answers that are not retried."""

    def test_413_splits(self, stats: Stats) -> None:
        """A 413 on a 4-span batch splits it in halves, and every span is delivered."""
        with FaultServer([Reply(413)]) as server:
            result = exporter_for(server.traces_url, stats).export(make_spans(4))
        assert result is SpanExportResult.SUCCESS
        assert [(r.status, r.span_names) for r in server.requests] == [
            (413, ("span-0", "span-1", "span-2", "span-3")),
            (200, ("span-0", "span-1")),
            (200, ("span-2", "span-3")),
        ]
        assert stats.snapshot() == stats_snapshot(exported=4)

    def test_413_splits_down_to_one(self, stats: Stats) -> None:
        """A half that is still too large is split again; a single span refused with 413 is
        dropped and the rest delivered."""
        script = [Reply(413), Reply(413), Reply(413), Reply(200), Reply(200)]
        with FaultServer(script) as server:
            result = exporter_for(server.traces_url, stats).export(make_spans(4))
        assert result is SpanExportResult.FAILURE
        assert [(r.status, r.span_names) for r in server.requests] == [
            (413, ("span-0", "span-1", "span-2", "span-3")),
            (413, ("span-0", "span-1")),
            (413, ("span-0",)),
            (200, ("span-1",)),
            (200, ("span-2", "span-3")),
        ]
        assert stats.snapshot() == stats_snapshot(exported=3, dropped={"http_413": 1})

    def test_400_dropped(self, stats: Stats, caplog: pytest.LogCaptureFixture) -> None:
        """A 400 drops the batch at once, counted as ``http_400``, with one warning."""
        with FaultServer([Reply(400)]) as server:
            result = exporter_for(server.traces_url, stats).export(make_spans(2))
        assert result is SpanExportResult.FAILURE
        assert [r.status for r in server.requests] == [400]
        assert stats.snapshot() == stats_snapshot(dropped={"http_400": 2})
        [warning] = messages(caplog.records)
        assert "HTTP 400" in warning
        assert "2 spans" in warning

    @pytest.mark.parametrize("status", [401, 403])
    def test_auth_refused(
        self, stats: Stats, caplog: pytest.LogCaptureFixture, status: int
    ) -> None:
        """A 401/403 is not retried; the warning points at TCC_API_KEY and never shows it."""
        with FaultServer([Reply(status)]) as server:
            result = exporter_for(server.traces_url, stats).export(make_spans(1))
        assert result is SpanExportResult.FAILURE
        assert [r.status for r in server.requests] == [status]
        assert stats.snapshot() == stats_snapshot(dropped={f"http_{status}": 1})
        [warning] = messages(caplog.records)
        assert "check TCC_API_KEY" in warning
        assert KEY not in caplog.text

    def test_500_dropped(self, stats: Stats) -> None:
        """A 500 is not in the retryable set: the batch is dropped as ``http_500``."""
        with FaultServer([Reply(500)]) as server:
            result = exporter_for(server.traces_url, stats).export(make_spans(1))
        assert result is SpanExportResult.FAILURE
        assert [r.status for r in server.requests] == [500]
        assert stats.snapshot() == stats_snapshot(dropped={"http_500": 1})

    def test_drops_add_up(self, stats: Stats, caplog: pytest.LogCaptureFixture) -> None:
        """Repeated refusals are all counted, while the warning is logged once per interval."""
        with FaultServer(default=Reply(400)) as server:
            exporter = exporter_for(server.traces_url, stats)
            results = [exporter.export(make_spans(2)) for _ in range(3)]
        assert results == [SpanExportResult.FAILURE] * 3
        assert stats.snapshot() == stats_snapshot(dropped={"http_400": 6})
        assert len(messages(caplog.records)) == 1


class TestDeadline:
    """``set_deadline`` bounds requests, so shutdown is never held by a dead endpoint."""

    def test_hanging_request_cut_short(self, stats: Stats) -> None:
        """With a deadline one second away, a request to an endpoint that never answers gives
        up, although the request timeout is far longer."""
        with FaultServer(default=Reply(hang=True)) as server:
            exporter = exporter_for(server.traces_url, stats, timeout=60.0, retry_budget=60.0)
            exporter.set_deadline(time.monotonic() + 1.0)
            outcome: list[SpanExportResult] = []
            worker = threading.Thread(
                target=lambda: outcome.append(exporter.export(make_spans(2))), daemon=True
            )
            worker.start()
            worker.join(HANG_GUARD)
            hung = worker.is_alive()
        assert not hung
        assert outcome == [SpanExportResult.FAILURE]
        assert [r.status for r in server.requests] == [None]
        assert stats.snapshot() == stats_snapshot(dropped={"unreachable": 2})

    def test_deadline_ends_backoff(self, stats: Stats) -> None:
        """A deadline set while the exporter waits to retry ends the wait and drops the batch."""
        with FaultServer(default=Reply(503, {"Retry-After": "30"})) as server:
            exporter = exporter_for(server.traces_url, stats, retry_budget=120.0)
            wake = exporter._wake = RecordingEvent()
            outcome: list[SpanExportResult] = []
            worker = threading.Thread(
                target=lambda: outcome.append(exporter.export(make_spans(2))), daemon=True
            )
            try:
                worker.start()
                assert wake.entered.wait(HANG_GUARD)
                exporter.set_deadline(time.monotonic())
                worker.join(HANG_GUARD)
                hung = worker.is_alive()
            finally:
                exporter.shutdown()
        assert not hung
        assert outcome == [SpanExportResult.FAILURE]
        assert ([r.status for r in server.requests], wake.waits) == ([503], [30.0])
        assert stats.snapshot() == stats_snapshot(retried=2, dropped={"deadline": 2})

    def test_deadline_during_request_bounds_retry(self, stats: Stats) -> None:
        """A deadline set while a request is in flight bounds the retry after it: a Retry-After
        that ends past the deadline is not waited for."""
        answer = threading.Event()
        with FaultServer([Reply(503, {"Retry-After": "60"}, hold=answer)]) as server:
            exporter = exporter_for(server.traces_url, stats, retry_budget=120.0)
            wake = exporter._wake = RecordingEvent()
            outcome: list[SpanExportResult] = []
            worker = threading.Thread(
                target=lambda: outcome.append(exporter.export(make_spans(2))), daemon=True
            )
            try:
                worker.start()
                assert server.wait_for_requests(1)
                exporter.set_deadline(time.monotonic() + 0.5)
                answer.set()
                worker.join(SHORT_GUARD)
                hung = worker.is_alive()
            finally:
                exporter.shutdown()
        assert not hung
        assert outcome == [SpanExportResult.FAILURE]
        assert (len(server.requests), wake.waits) == (1, [])
        assert stats.snapshot() == stats_snapshot(dropped={"http_503": 2})

    def test_past_deadline(self, stats: Stats) -> None:
        """After the deadline has passed, nothing is sent and the batch is dropped."""
        with FaultServer() as server:
            exporter = exporter_for(server.traces_url, stats)
            exporter.set_deadline(time.monotonic() - 1.0)
            result = exporter.export(make_spans(2))
        assert (result, server.requests) == (SpanExportResult.FAILURE, [])
        assert stats.snapshot() == stats_snapshot(dropped={"deadline": 2})


class TestImports:
    """What the sender thread uses is imported with tcc_otel, never lazily on that thread: an
    import in progress there at fork() would leave its lock held in the child."""

    def test_idna_codec_loaded_at_import(self) -> None:
        """The codec the first connect needs (``encodings.idna``) is loaded by importing
        tcc_otel."""
        code = "import sys, tcc_otel; sys.exit(0 if 'encodings.idna' in sys.modules else 3)"
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_GUARD
        )
        assert (done.returncode, done.stderr) == (0, "")
