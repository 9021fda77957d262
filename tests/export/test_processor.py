"""BackgroundProcessor: the bounded queue, its worker, flush and shutdown, and what they count."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from _fault_server import FaultServer, Reply
from helpers.clients import messages
from helpers.delivery import stats_snapshot
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer

from tcc_otel._export._batcher import Limits
from tcc_otel._export._exporter import OtlpHttpExporter
from tcc_otel._export._pipeline import ExportPipeline
from tcc_otel._export._processor import BackgroundProcessor
from tcc_otel._export._stats import Stats
from tcc_otel._export._wire import origin

SPAN_BYTES = 86
"""Encoded size of one span made by ``Setup.record`` (names ``span-N``), give or take a byte."""
HANG_GUARD = 20.0
"""Seconds after which a call that should return promptly is considered hung."""


class Setup:
    """A processor exporting to ``url``, attached to a private provider, with its tracer."""

    def __init__(
        self,
        url: str,
        *,
        max_queue: int = 20_000,
        batch_bytes: int = 1024 * 1024,
        delay: float = 30.0,
        export_timeout: float = 5.0,
    ) -> None:
        self.stats = Stats()
        self.exporter = OtlpHttpExporter(
            url, api_key="k", stats=self.stats, timeout=export_timeout, retry_budget=5.0
        )
        limits = Limits(max_spans=max_queue, batch_bytes=batch_bytes, batch_delay=delay)
        self.pipeline = ExportPipeline(self.exporter, self.stats, origin(None, "t"), limits=limits)
        self.processor = BackgroundProcessor(self.pipeline)
        self.provider = TracerProvider()
        self.provider.add_span_processor(self.processor)
        self.tracer: Tracer = self.provider.get_tracer("tests")

    def record(self, count: int, run_id: str | None = "run-1", prefix: str = "span") -> None:
        """End ``count`` spans; those with a ``run_id`` belong to that run."""
        attributes = {} if run_id is None else {"tcc.runId": run_id}
        for index in range(count):
            self.tracer.start_span(f"{prefix}-{index}", attributes=attributes).end()

    def close(self) -> None:
        """Stop the processor (bounded) and release the provider."""
        self.processor.shutdown(2.0)
        self.provider.shutdown()


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """An endpoint that accepts everything."""
    with FaultServer() as running:
        yield running


@pytest.fixture
def setups() -> Iterator[list[Setup]]:
    """Setups a test creates, closed in teardown."""
    made: list[Setup] = []
    yield made
    for setup in made:
        setup.close()


def sent(server: FaultServer) -> list[str]:
    """Names of every span the server received, in order."""
    return [name for request in server.requests for name in request.span_names]


class TestFlush:
    """``force_flush`` exports what is queued before returning."""

    def test_flush_exports_everything(self, server: FaultServer, setups: list[Setup]) -> None:
        """Spans queued behind a long batch delay are all exported by force_flush()."""
        setup = Setup(server.traces_url)
        setups.append(setup)
        setup.record(5)
        assert setup.processor.force_flush(int(HANG_GUARD * 1000)) is True
        assert sent(server) == [f"span-{i}" for i in range(5)]
        assert setup.stats.snapshot() == stats_snapshot(recorded=5, exported=5)

    def test_flush_with_nothing_queued(self, server: FaultServer, setups: list[Setup]) -> None:
        """With nothing queued, force_flush() returns True and sends nothing."""
        setup = Setup(server.traces_url)
        setups.append(setup)
        assert (setup.processor.force_flush(1000), server.requests) == (True, [])

    def test_batches(self, server: FaultServer, setups: list[Setup]) -> None:
        """No request carries more encoded bytes than ``batch_bytes`` allows (here: 3 spans),
        and none is lost or repeated."""
        setup = Setup(server.traces_url, batch_bytes=3 * SPAN_BYTES)
        setups.append(setup)
        setup.record(10)
        assert setup.processor.force_flush(int(HANG_GUARD * 1000)) is True
        assert sorted(sent(server)) == sorted(f"span-{i}" for i in range(10))
        assert [request.span_count for request in server.requests] == [3, 3, 3, 1]
        assert setup.stats.snapshot() == stats_snapshot(recorded=10, exported=10)

    def test_spans_outside_runs_ignored(self, server: FaultServer, setups: list[Setup]) -> None:
        """Spans without ``tcc.runId`` are neither counted nor sent."""
        setup = Setup(server.traces_url)
        setups.append(setup)
        setup.record(2, run_id=None, prefix="user")
        setup.record(2, prefix="run")
        setup.record(1, run_id=None, prefix="later")
        assert setup.processor.force_flush(int(HANG_GUARD * 1000)) is True
        assert sent(server) == ["run-0", "run-1"]
        assert setup.stats.snapshot() == stats_snapshot(recorded=2, exported=2)


class TestQueue:
    """A full queue drops spans instead of making the caller wait."""

    def test_burst_over_max_queue(
        self, server: FaultServer, setups: list[Setup], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A burst of 20 spans into a queue of 5 keeps 5 and drops 15, counted exactly and
        warned about once."""
        setup = Setup(server.traces_url, max_queue=5)
        setups.append(setup)
        setup.record(20)
        assert setup.processor.force_flush(int(HANG_GUARD * 1000)) is True
        assert sent(server) == [f"span-{i}" for i in range(5)]
        assert setup.stats.snapshot() == stats_snapshot(
            recorded=20, exported=5, dropped={"queue_full": 15}
        )
        [warning] = messages(caplog.records)
        assert "queue_full" in warning

    def test_after_shutdown(
        self, server: FaultServer, setups: list[Setup], caplog: pytest.LogCaptureFixture
    ) -> None:
        """Spans ending after shutdown are counted as dropped and not sent."""
        setup = Setup(server.traces_url)
        setups.append(setup)
        setup.processor.shutdown(1.0)
        setup.record(3)
        assert server.requests == []
        assert setup.stats.snapshot() == stats_snapshot(recorded=3, dropped={"after_shutdown": 3})
        assert len(messages(caplog.records)) == 1


class TestShutdown:
    """``shutdown(timeout)`` delivers what it can within its deadline, then stops."""

    def test_delivers_queue(self, server: FaultServer, setups: list[Setup]) -> None:
        """Queued spans are delivered by shutdown(), and a second shutdown() does nothing."""
        setup = Setup(server.traces_url)
        setups.append(setup)
        setup.record(4)
        setup.processor.shutdown(HANG_GUARD)
        setup.processor.shutdown(HANG_GUARD)
        assert sent(server) == [f"span-{i}" for i in range(4)]
        assert setup.stats.snapshot() == stats_snapshot(recorded=4, exported=4)

    def test_hanging_endpoint(self, caplog: pytest.LogCaptureFixture) -> None:
        """Against an endpoint that never answers, shutdown(0.5) returns and counts the spans in
        flight and still queued as ``shutdown_timeout``, with a warning giving their number."""
        with FaultServer(default=Reply(hang=True)) as hanging:
            setup = Setup(hanging.traces_url, delay=0.01, export_timeout=30.0)
            setup.record(2)
            assert hanging.wait_for_requests(1, HANG_GUARD)
            setup.record(3, prefix="queued")
            done = threading.Event()

            def close() -> None:
                setup.processor.shutdown(0.5)
                done.set()

            threading.Thread(target=close, daemon=True).start()
            returned = done.wait(HANG_GUARD)
            snapshot = setup.stats.snapshot()
        worker = setup.pipeline._sender  # released by the server's stop; let it finish here
        if worker is not None:
            worker.join(HANG_GUARD)
        setup.close()
        assert returned
        assert [request.span_count for request in hanging.requests] == [2]
        assert snapshot == stats_snapshot(recorded=5, dropped={"shutdown_timeout": 5})
        assert [line for line in messages(caplog.records) if "not delivered" in line] == [
            "5 spans were not delivered within the 0.5 s shutdown deadline; 5 spans dropped in all"
        ]

    @pytest.mark.parametrize("hang", [False, True], ids=["answered late", "connection dropped"])
    def test_late_export_not_counted_twice(self, hang: bool) -> None:
        """A batch counted as ``shutdown_timeout`` is not counted again when its request ends
        after shutdown() returned, however it ends: every recorded span is counted once."""
        answer = threading.Event()
        first = Reply(hang=True) if hang else Reply(200, hold=answer)
        with FaultServer([first]) as server:
            setup = Setup(server.traces_url, delay=0.01, export_timeout=30.0)
            setup.record(2)
            assert server.wait_for_requests(1, HANG_GUARD)
            setup.processor.shutdown(0.2)
            worker = setup.pipeline._sender
            assert worker is not None
            answer.set()
            server.released.set()  # a hanging request now ends with a dropped connection
            worker.join(HANG_GUARD)
            assert not worker.is_alive()
            snapshot = setup.stats.snapshot()
        counted = (snapshot["recorded"], snapshot["exported"], snapshot["dropped"])
        assert counted in [(2, 2, 0), (2, 0, 2)]
