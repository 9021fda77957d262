"""The spans table of the ``tcc-otel dev`` database: its columns, a span as a row and back, and
rows as the JSON API shows them."""

from __future__ import annotations

import base64
import json
import math
from typing import Any, Final

from tcc_otel._local._model import ReceivedSpan
from tcc_otel._local._rollup import Totals, usage_of
from tcc_otel._schema import _keys as attrs
from tcc_otel._schema._kinds import is_run, run_id_of

SCHEMA_VERSION: Final = 2
"""Version of the tables below. Opening an older database rebuilds it from the spans it holds;
a newer one is refused."""
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT NOT NULL,
    attributes TEXT NOT NULL,
    events TEXT NOT NULL,
    resource TEXT NOT NULL,
    scope_name TEXT NOT NULL,
    is_head INTEGER NOT NULL,
    session TEXT,
    agent TEXT,
    model TEXT,
    usage TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost REAL,
    run_id TEXT NOT NULL,
    run_resolved INTEGER NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_run_id ON spans (run_id);
CREATE INDEX IF NOT EXISTS spans_unresolved ON spans (run_resolved, trace_id, parent_span_id);
CREATE VIEW IF NOT EXISTS runs AS
SELECT
    run_id,
    MAX(CASE WHEN is_head THEN name END) AS name,
    MAX(session) AS session,
    MAX(agent) AS agent,
    CASE
        WHEN MAX(is_head AND status = 'ERROR') THEN 'error'
        WHEN MAX(is_head) THEN 'ok'
        ELSE 'incomplete'
    END AS status,
    MIN(start_ns) AS start_ns,
    MAX(end_ns) AS end_ns,
    COUNT(*) AS span_count,
    SUM(status = 'ERROR') AS error_count
FROM spans
GROUP BY run_id;
"""
"""Spans keep derived columns so ``runs`` is plain SQL (no JSON1): ``is_head`` marks the span
that names its group and gives its status (the run span; for spans outside any run, their
trace's root); ``usage`` is ``run``, ``step`` or NULL, with the tokens and cost that span reports
(``_rollup.usage_of``); ``run_id`` is the span's run (``_runs.resolve``), or its trace id with
``run_resolved = 0`` while its run is not known."""

INSERT: Final = """
INSERT OR IGNORE INTO spans (
    trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status, status_message,
    attributes, events, resource, scope_name, is_head, session, agent, model, usage,
    input_tokens, output_tokens, cost, run_id, run_resolved
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
"""Takes ``row(span)`` followed by ``run_id`` and ``run_resolved``; a stored span is kept."""
SPAN_COLUMNS: Final = (
    "trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status, status_message, "
    "attributes, events, resource, scope_name"
)
"""The span as received; every schema version has these."""
SELECT_SPANS: Final = f"SELECT {SPAN_COLUMNS} FROM spans ORDER BY rowid"
USAGE_RUN: Final = "run"
"""``usage`` of a run span: its tokens and cost are the run's totals."""
USAGE_STEP: Final = "step"
"""``usage`` of a step: its own tokens and cost."""


def row(span: ReceivedSpan) -> tuple[Any, ...]:
    """The INSERT values of one span up to ``run_id``: its own and its derived columns."""
    values = span.attributes
    is_head = is_run(values) or (run_id_of(values) is None and span.parent_span_id is None)
    # the model of a step or of an LLM call inside one; a run or agent span names none itself
    named = not is_head and values.get(attrs.GEN_AI_OPERATION_NAME) != attrs.OP_INVOKE_AGENT
    model = _text(values.get(attrs.GEN_AI_RESPONSE_MODEL)) or _text(
        values.get(attrs.GEN_AI_REQUEST_MODEL)
    )
    usage = usage_of(values)
    reported = (
        (None, None, None, None)
        if usage is None
        else (USAGE_RUN if usage.is_run else USAGE_STEP, *usage[1:])
    )
    events = [{"name": name, "attributes": event} for name, event in span.events]
    return (
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.name,
        span.kind,
        span.start_ns,
        span.end_ns,
        span.status_code,
        span.status_message,
        _dumps(values),
        _dumps(events),
        _dumps(span.resource),
        span.scope_name,
        1 if is_head else 0,
        _text(values.get(attrs.TCC_SESSION_ID)) or _text(values.get(attrs.GEN_AI_CONVERSATION_ID)),
        _text(values.get(attrs.TCC_AGENT)) or _text(values.get(attrs.GEN_AI_AGENT_NAME)),
        model if named else None,
        *reported,
    )


def span_of(row: tuple[Any, ...]) -> ReceivedSpan:
    """A span as ``SELECT_SPANS`` reads it back (bytes values come back as base64 text)."""
    (
        trace_id,
        span_id,
        parent_span_id,
        name,
        kind,
        start_ns,
        end_ns,
        status,
        status_message,
        attributes,
        events,
        resource,
        scope_name,
    ) = row
    return ReceivedSpan(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        name=name,
        kind=kind,
        start_ns=start_ns,
        end_ns=end_ns,
        status_code=status,
        status_message=status_message,
        attributes=json.loads(attributes),
        events=[(event["name"], event["attributes"]) for event in json.loads(events)],
        resource=json.loads(resource),
        scope_name=scope_name,
    )


def summary(row: dict[str, Any], rollup: tuple[list[str], Totals]) -> dict[str, Any]:
    """A ``runs`` view row, with the run's models and totals, as the API shows it."""
    models, run = rollup
    return {
        "run_id": row["run_id"],
        "name": row["name"],
        "status": row["status"],
        "session": row["session"],
        "agent": row["agent"],
        "start_ns": row["start_ns"],
        "end_ns": row["end_ns"],
        "duration_ms": (row["end_ns"] - row["start_ns"]) / 1e6,
        "models": models,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "total_tokens": run.total_tokens,
        "total_cost": run.cost,
        "span_count": row["span_count"],
        "error_count": row["error_count"],
    }


def api_span(row: tuple[Any, ...], run_start_ns: int) -> dict[str, Any]:
    """A stored span as the API shows it; ``offset_ms`` is its start within the run."""
    span = span_of(row)
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "kind": span.kind,
        "start_ns": span.start_ns,
        "end_ns": span.end_ns,
        "offset_ms": (span.start_ns - run_start_ns) / 1e6,
        "duration_ms": span.duration_ms,
        "status": span.status_code,
        "status_message": span.status_message,
        "attributes": span.attributes,
        "events": [{"name": name, "attributes": values} for name, values in span.events],
        "resource": span.resource,
        "scope_name": span.scope_name,
    }


def _dumps(value: Any) -> str:
    return json.dumps(_jsonable(value), ensure_ascii=False, allow_nan=False)


def _jsonable(value: Any) -> Any:
    """Make a decoded OTLP value valid JSON: bytes as base64 text, NaN and infinities as text."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
