"""Keep received spans in SQLite and summarise them per run, for ``tcc-otel dev --db``."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from tcc_otel._local import _rows
from tcc_otel._local._model import ReceivedSpan, SpanKey
from tcc_otel._local._rollup import Totals, Usage, totals
from tcc_otel._local._runs import resolve

DEFAULT_DB: Final = "tcc-otel-dev.db"
"""Database file used when ``--db`` is not given, relative to the current directory."""
MEMORY: Final = ":memory:"
"""Path that keeps the database in memory for the life of the process."""
RUN_STATUSES: Final = ("ok", "error", "incomplete")
"""A run's status: its run span ended OK or unset, ended with an error, or has not arrived."""
MAX_LIMIT: Final = 1000
"""Most runs one ``runs()`` call returns."""

_PLACE: Final = (
    "UPDATE spans SET run_id = ?, run_resolved = 1"
    " WHERE trace_id = ? AND span_id = ? AND run_resolved = 0"
)
"""Files a stored span under the run its ancestor, arrived since, belongs to."""


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
        rows = [_rows.row(span) for span in spans]
        with self._lock:
            self._require_open("add")
            with self._transaction():
                return self._insert(spans, rows)

    def _insert(self, spans: Sequence[ReceivedSpan], rows: list[tuple[Any, ...]]) -> int:
        found = resolve(spans, _Stored(self._db))
        placed = [(found.get(span.key), span.trace_id) for span in spans]
        before = self._db.total_changes
        self._db.executemany(
            _rows.INSERT,
            [
                row + ((trace_id, 0) if run_id is None else (run_id, 1))
                for row, (run_id, trace_id) in zip(rows, placed)
            ],
        )
        added = self._db.total_changes - before
        self._db.executemany(_PLACE, [(run, *key) for key, run in found.items()])
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
                rollups = self._rollups([row[0] for row in rows])
        return [_rows.summary(dict(zip(names, row)), rollups[row[0]]) for row in rows]

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
                rollups = self._rollups([run_id])
                span_rows = self._db.execute(
                    f"SELECT {_rows.SPAN_COLUMNS} FROM spans WHERE run_id = ?"
                    " ORDER BY start_ns, end_ns DESC, span_id",
                    (run_id,),
                ).fetchall()
        summary = _rows.summary(dict(zip(names, row)), rollups[run_id])
        return {
            "run": summary,
            "spans": [_rows.api_span(span, summary["start_ns"]) for span in span_rows],
        }

    def _rollups(self, run_ids: list[str]) -> dict[str, tuple[list[str], Totals]]:
        """Each run's models (sorted) and totals (``_rollup.totals``)."""
        models: dict[str, set[str]] = {run_id: set() for run_id in run_ids}
        usages: dict[str, list[Usage]] = {run_id: [] for run_id in run_ids}
        for start in range(0, len(run_ids), 500):  # stays under SQLite's parameter limit
            chunk = run_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for run_id, model, usage, *reported in self._db.execute(
                "SELECT run_id, model, usage, input_tokens, output_tokens, cost FROM spans"
                f" WHERE run_id IN ({marks}) AND (model IS NOT NULL OR usage IS NOT NULL)",
                chunk,
            ):
                if model is not None:
                    models[run_id].add(model)
                if usage is not None:
                    usages[run_id].append(Usage(usage == _rows.USAGE_RUN, *reported))
        return {run_id: (sorted(models[run_id]), totals(usages[run_id])) for run_id in run_ids}

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

    def __exit__(self, *exc_info: object) -> None:
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
        version = _rows.SCHEMA_VERSION
        with self._transaction():  # a half-made schema is never left behind
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            found = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
            if found is not None and found > version:
                raise ValueError(
                    f"Store() cannot open {self.path}: its schema version is {found} and this "
                    f"tcc-otel knows up to {version}; upgrade tcc-otel or use another --db."
                )
            stored: list[ReceivedSpan] = []
            if found is not None and found < version:  # rebuilt from the spans it holds
                stored = [_rows.span_of(row) for row in self._db.execute(_rows.SELECT_SPANS)]
                self._db.execute("DROP VIEW IF EXISTS runs")
                self._db.execute("DROP TABLE spans")
            for statement in _rows.SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            if found != version:
                self._db.execute("DELETE FROM schema_version")
                self._db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            if stored:
                self._insert(stored, [_rows.row(span) for span in stored])


class _Stored:
    """What the database holds, as ``_runs.resolve`` asks for it (a ``_runs.Known``)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._waiting: dict[str, dict[str, list[str]]] = {}
        """Trace id -> parent span id -> the stored spans still without a run under it."""

    def run_of(self, key: SpanKey) -> str | None:
        row = self._db.execute(
            "SELECT run_id FROM spans WHERE trace_id = ? AND span_id = ? AND run_resolved = 1", key
        ).fetchone()
        return None if row is None else str(row[0])

    def waiting_under(self, key: SpanKey) -> list[SpanKey]:
        trace_id, span_id = key
        by_parent = self._waiting.get(trace_id)
        if by_parent is None:  # one query per trace, not per span
            by_parent = self._waiting[trace_id] = {}
            for parent, child in self._db.execute(
                "SELECT parent_span_id, span_id FROM spans WHERE run_resolved = 0 AND trace_id = ?",
                (trace_id,),
            ):
                by_parent.setdefault(parent, []).append(child)
        return [(trace_id, child) for child in by_parent.get(span_id, ())]
