"""A log record processor for the application's SDK ``LoggerProvider``: GenAI content events
(``gen_ai.*``) that an instrumentation logs for a span it opened inside a run are noted, so that
TCC's copy of that span carries them. The log records themselves go on unchanged to the
application's own log processors; we export none."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor

from tcc_otel._export._inside import Inside
from tcc_otel._guard import Guard
from tcc_otel._schema._calls import Event

_NOTE = Guard("noting a GenAI content log record")


class ContentEvents(LogRecordProcessor):
    """Notes ``gen_ai.*`` log records of followed spans (``Inside``); never raises."""

    def __init__(self, inside: Inside) -> None:
        self._inside = inside

    def on_emit(self, log_record: Any) -> None:
        """SDK 1.35 and later: a ``ReadWriteLogRecord``."""
        with _NOTE:
            self._note(log_record)

    def emit(self, log_data: Any) -> None:
        """Older SDKs: a ``LogData``."""
        with _NOTE:
            self._note(log_data)

    def _note(self, data: Any) -> None:
        record = getattr(data, "log_record", data)
        span_id = getattr(record, "span_id", None)
        if not span_id:
            return
        attributes = getattr(record, "attributes", None) or {}
        name = getattr(record, "event_name", None) or attributes.get("event.name")
        if isinstance(name, str) and name.startswith("gen_ai."):
            self._inside.logged(span_id, Event(name, record.body, dict(attributes)))

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is held."""
        return True
