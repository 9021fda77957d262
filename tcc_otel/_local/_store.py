"""Keep received spans in SQLite and summarise them per run, for ``tcc-otel dev --db``."""

from __future__ import annotations

import base64
import json
import math
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Final

from tcc_otel._local._receiver import ReceivedSpan
from tcc_otel._local._values import as_count, as_number
from tcc_otel._schema import _keys as attrs

DEFAULT_DB: Final = "tcc-otel-dev.db"
"""Database file used when ``--db`` is not given, relative to the current directory."""
MEMORY: Final = ":memory:"
"""Path that keeps the database in memory for the life of the process."""
SCHEMA_VERSION: Final = 1
"""Version of the tables below; a later release migrates from the number it finds."""
RUN_STATUSES: Final = ("ok", "error", "incomplete")
"""A run's status: its run span ended OK or unset, ended with an error, or has not arrived."""
MAX_LIMIT: Final = 1000
"""Most runs one ``runs()`` call returns."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    run_id TEXT NOT NULL,
    run_resolved INTEGER NOT NULL,
    is_run INTEGER NOT NULL,
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
    session TEXT,
    agent TEXT,
    model TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost REAL,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_run_id ON spans (run_id);
CREATE INDEX IF NOT EXISTS spans_unresolved ON spans (run_resolved, trace_id, parent_span_id);
CREATE VIEW IF NOT EXISTS runs AS
SELECT
    run_id,
    MAX(CASE WHEN is_run THEN name END) AS name,
    MAX(session) AS session,
    MAX(agent) AS agent,
    CASE
        WHEN MAX(is_run AND status = 'ERROR') THEN 'error'
        WHEN MAX(is_run) THEN 'ok'
        ELSE 'incomplete'
    END AS status,
    MIN(start_ns) AS start_ns,
    MAX(end_ns) AS end_ns,
    SUM(input_tokens) AS input_tokens,
    SUM(output_tokens) AS output_tokens,
    CASE
        WHEN COUNT(input_tokens) + COUNT(output_tokens) > 0
        THEN SUM(COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0))
    END AS total_tokens,
    SUM(cost) AS total_cost,
    COUNT(*) AS span_count,
    SUM(status = 'ERROR') AS error_count
FROM spans
GROUP BY run_id;
"""
"""Spans keep derived columns (run, model, tokens, cost) so ``runs`` is plain SQL (no JSON1)."""

_INSERT: Final = """
INSERT OR IGNORE INTO spans (
    trace_id, span_id, parent_span_id, run_id, run_resolved, is_run, name, kind, start_ns,
    end_ns, status, status_message, attributes, events, resource, scope_name, session, agent,
    model, input_tokens, output_tokens, cost
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_RESOLVE: Final = """
UPDATE spans SET
    run_id = (
        SELECT parent.run_id FROM spans AS parent
        WHERE parent.trace_id = spans.trace_id AND parent.span_id = spans.parent_span_id
    ),
    run_resolved = 1
WHERE run_resolved = 0 AND EXISTS (
    SELECT 1 FROM spans AS parent
    WHERE parent.trace_id = spans.trace_id AND parent.span_id = spans.parent_span_id
        AND parent.run_resolved = 1
)
"""
"""A span without ``tcc.runId`` joins the run of its nearest ancestor that has one; the
ancestor may arrive in a later request, so this runs after every insert until nothing moves."""

_SPAN_COLUMNS: Final = (
    "trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status, status_message, "
    "attributes, events, resource, scope_name"
)


class Store:
    """A SQLite database of received spans, safe to use from several threads at once.

    One connection is shared behind a lock: the receiver's request threads write, the API reads.
    File databases use WAL journaling, so another process can read while this one writes.
    """

    def __init__(self, path: str = DEFAULT_DB) -> None:
        """Open (creating when missing) the database at ``path`` and its tables.

        Args:
            path: A file path, or ``":memory:"`` for a database that ends with the process.

        Raises:
            sqlite3.Error: The file cannot be opened or is not a SQLite database.
            ValueError: The database was written by a newer tcc-otel (a higher schema version).
        """
        self.path = path
        self._lock = threading.Lock()
        self._closed = False
        # check_same_thread=False: the lock, not the creating thread, guards the connection
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA busy_timeout = 5000")
            if path != MEMORY:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    # --- writing ------------------------------------------------------------------------------

    def add(self, spans: Sequence[ReceivedSpan]) -> int:
        """Store spans; a span already stored (same trace and span id) is left as it is.

        Retries and spooled resends repeat spans, so repeats are ignored rather than duplicated.

        Returns:
            How many of ``spans`` were new.
        """
        rows = [_row(span) for span in spans]
        with self._lock:
            self._require_open("add")
            with self._transaction():
                before = self._db.total_changes
                self._db.executemany(_INSERT, rows)
                added = self._db.total_changes - before
                while self._db.execute(_RESOLVE).rowcount > 0:
                    pass  # each pass moves spans one level further from their run
        return added

    # --- reading ------------------------------------------------------------------------------

    def runs(
        self,
        *,
        status: str | None = None,
        session: str | None = None,
        agent: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Summaries of the stored runs, newest (latest start) first.

        Args:
            status: Only runs with this status, one of ``RUN_STATUSES``.
            session: Only runs of this session id.
            agent: Only runs of this agent.
            limit: At most this many runs, 1 to ``MAX_LIMIT``.

        Returns:
            One dict per run, as ``GET /api/runs`` lists them.

        Raises:
            ValueError: ``status`` or ``limit`` is out of range.
        """
        if status is not None and status not in RUN_STATUSES:
            raise ValueError(
                f"Store.runs() status must be one of {', '.join(RUN_STATUSES)}, got {status!r}."
            )
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"Store.runs() limit must be 1-{MAX_LIMIT}, got {limit}.")
        query = (
            "SELECT * FROM runs WHERE (:status IS NULL OR status = :status)"
            " AND (:session IS NULL OR session = :session)"
            " AND (:agent IS NULL OR agent = :agent)"
            " ORDER BY start_ns DESC, run_id LIMIT :limit"
        )
        parameters = {"status": status, "session": session, "agent": agent, "limit": limit}
        with self._lock:
            self._require_open("runs")
            with self._transaction(write=False):
                cursor = self._db.execute(query, parameters)
                rows = cursor.fetchall()
                names = [column[0] for column in cursor.description]
                models = self._models([row[0] for row in rows])
        return [_summary(dict(zip(names, row)), models.get(row[0], [])) for row in rows]

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run's summary and all its spans (start order), or ``None`` when it is unknown.

        Returns:
            ``{"run": summary, "spans": [...]}``, as ``GET /api/runs/{run_id}`` answers.
        """
        with self._lock:
            self._require_open("run")
            with self._transaction(write=False):
                cursor = self._db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,))
                row = cursor.fetchone()
                if row is None:
                    return None
                names = [column[0] for column in cursor.description]
                models = self._models([run_id])
                span_rows = self._db.execute(
                    f"SELECT {_SPAN_COLUMNS} FROM spans WHERE run_id = ?"
                    " ORDER BY start_ns, end_ns DESC, span_id",
                    (run_id,),
                ).fetchall()
        summary = _summary(dict(zip(names, row)), models.get(run_id, []))
        return {"run": summary, "spans": [_span(span, summary["start_ns"]) for span in span_rows]}

    def _models(self, run_ids: list[str]) -> dict[str, list[str]]:
        models: dict[str, list[str]] = {}
        for start in range(0, len(run_ids), 500):  # stays under SQLite's parameter limit
            chunk = run_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for run_id, model in self._db.execute(
                f"SELECT DISTINCT run_id, model FROM spans WHERE model IS NOT NULL"
                f" AND run_id IN ({marks}) ORDER BY run_id, model",
                chunk,
            ):
                models.setdefault(run_id, []).append(model)
        return models

    # --- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _require_open(self, method: str) -> None:
        if self._closed:
            raise RuntimeError(
                f"Store.{method}() was called after Store.close(); open a new Store(path)."
            )

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so two writers never deadlock on upgrade
        self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._transaction():  # a half-made schema is never left behind
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            found = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
            if found is None:
                self._db.execute(
                    "INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,)
                )
            elif found > SCHEMA_VERSION:
                raise ValueError(
                    f"Store() cannot open {self.path}: its schema version is {found} and this "
                    f"tcc-otel knows up to {SCHEMA_VERSION}; upgrade tcc-otel or use another --db."
                )


def _row(span: ReceivedSpan) -> tuple[Any, ...]:
    """The INSERT values of one span, derived columns included."""
    values = span.attributes
    run_id = _text(values.get(attrs.TCC_RUN_ID))
    is_run = values.get(attrs.TCC_TYPE) == attrs.SpanKind.RUN.value or (
        run_id is None and span.parent_span_id is None
    )
    # a run span (or an agent span) repeats its steps' usage as totals: count steps only
    counted = not is_run and values.get(attrs.GEN_AI_OPERATION_NAME) != attrs.OP_INVOKE_AGENT
    model = _text(values.get(attrs.GEN_AI_RESPONSE_MODEL)) or _text(
        values.get(attrs.GEN_AI_REQUEST_MODEL)
    )
    events = [{"name": name, "attributes": event} for name, event in span.events]
    return (
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.trace_id if run_id is None else run_id,
        0 if run_id is None else 1,
        1 if is_run else 0,
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
        _text(values.get(attrs.TCC_SESSION_ID)) or _text(values.get(attrs.GEN_AI_CONVERSATION_ID)),
        _text(values.get(attrs.TCC_AGENT)) or _text(values.get(attrs.GEN_AI_AGENT_NAME)),
        model if counted else None,
        as_count(values.get(attrs.GEN_AI_USAGE_INPUT_TOKENS)) if counted else None,
        as_count(values.get(attrs.GEN_AI_USAGE_OUTPUT_TOKENS)) if counted else None,
        as_number(values.get(attrs.STEP_REAL_TOTAL_COST, values.get(attrs.STEP_ESTIMATED_COST))),
    )


def _summary(row: dict[str, Any], models: list[str]) -> dict[str, Any]:
    """A ``runs`` view row as the API shows it."""
    cost = row["total_cost"]
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
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "total_tokens": row["total_tokens"],
        "total_cost": None if cost is None else round(cost, 12),  # hides float-sum noise
        "span_count": row["span_count"],
        "error_count": row["error_count"],
    }


def _span(row: tuple[Any, ...], run_start_ns: int) -> dict[str, Any]:
    """A stored span as the API shows it; ``offset_ms`` is its start within the run."""
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
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent_span_id,
        "name": name,
        "kind": kind,
        "start_ns": start_ns,
        "end_ns": end_ns,
        "offset_ms": (start_ns - run_start_ns) / 1e6,
        "duration_ms": (end_ns - start_ns) / 1e6,
        "status": status,
        "status_message": status_message,
        "attributes": json.loads(attributes),
        "events": json.loads(events),
        "resource": json.loads(resource),
        "scope_name": scope_name,
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
