"""GenAI content log records noted for the spans they belong to (``_export._logs``), on a real
SDK ``LoggerProvider`` whose own exporter still gets every record unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers.tracing import UserTracing
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from tcc_otel._export._inside import Inside
from tcc_otel._export._logs import ContentEvents


class Logs:
    def __init__(self) -> None:
        self.inside = Inside()
        self.exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        self.provider = LoggerProvider()
        self.provider.add_log_record_processor(ContentEvents(self.inside))
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))
        self.logger = self.provider.get_logger("instrumentation")


@pytest.fixture
def logs() -> Iterator[Logs]:
    found = Logs()
    yield found
    found.provider.shutdown()


def test_content_event_of_a_followed_span(logs: Logs, user: UserTracing) -> None:
    with user.tracer.start_as_current_span("chat") as span:
        span_id = span.get_span_context().span_id
        logs.inside.started(span_id, None)
        logs.logger.emit(LogRecord(event_name="gen_ai.choice", body={"index": 0}))
        logs.logger.emit(LogRecord(body="an ordinary log line"))
    opened = logs.inside.ended(span_id)
    assert opened is not None
    assert [(e.name, e.body) for e in opened.events] == [("gen_ai.choice", {"index": 0})]
    assert len(logs.exporter.get_finished_logs()) == 2  # the application's exporter: both


def test_event_name_as_attribute(logs: Logs, user: UserTracing) -> None:
    """Older instrumentations name the event in the ``event.name`` attribute."""
    with user.tracer.start_as_current_span("chat") as span:
        span_id = span.get_span_context().span_id
        logs.inside.started(span_id, None)
        logs.logger.emit(
            LogRecord(body={"content": "Hi"}, attributes={"event.name": "gen_ai.user.message"})
        )
    opened = logs.inside.ended(span_id)
    assert opened is not None
    assert [e.name for e in opened.events] == ["gen_ai.user.message"]


def test_spans_not_followed_are_left_alone(logs: Logs, user: UserTracing) -> None:
    with user.tracer.start_as_current_span("chat"):
        logs.logger.emit(LogRecord(event_name="gen_ai.choice", body={"index": 0}))
    logs.logger.emit(LogRecord(event_name="gen_ai.choice", body={"index": 0}))  # no span
    assert len(logs.exporter.get_finished_logs()) == 2
