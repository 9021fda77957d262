"""Tests for tcc_otel._local._store (and the rows of _rows): spans sent by tcc_otel through a
real receiver into SQLite."""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers.clients import fresh_client
from helpers.dev_runs import FAILED, KEY, failed_run, record_run, summary, untimed
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

import tcc_otel as tcc
from tcc_otel._local._model import ReceivedSpan
from tcc_otel._local._rows import SCHEMA_VERSION
from tcc_otel._local._server import Receiver
from tcc_otel._local._store import Store
from tcc_otel.testing import capture

SCHEMA_1 = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE spans (
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_span_id TEXT, run_id TEXT NOT NULL,
    run_resolved INTEGER NOT NULL, is_run INTEGER NOT NULL, name TEXT NOT NULL,
    kind TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, status TEXT NOT NULL,
    status_message TEXT NOT NULL, attributes TEXT NOT NULL, events TEXT NOT NULL,
    resource TEXT NOT NULL, scope_name TEXT NOT NULL, session TEXT, agent TEXT, model TEXT,
    input_tokens INTEGER, output_tokens INTEGER, cost REAL, PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX spans_run_id ON spans (run_id);
CREATE VIEW runs AS SELECT run_id, COUNT(*) AS span_count FROM spans GROUP BY run_id;
"""
"""The tables of schema version 1 (the view cut short); its derived columns were computed
differently, so the rows below leave them empty and unresolved."""


@pytest.fixture
def store() -> Iterator[Store]:
    """An in-memory store, closed in teardown."""
    with Store(":memory:") as opened:
        yield opened


@pytest.fixture
def receiver(store: Store) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 that writes into ``store``, stopped in teardown."""
    with Receiver("127.0.0.1", 0, on_spans=store.add) as running:
        yield running


def send(receiver: Receiver, *runs: str) -> None:
    """Record ``record_run`` for each run id with a fresh client and deliver it to ``receiver``."""
    with fresh_client():
        tcc.configure(base_url=receiver.url, api_key=KEY)
        for run_id in runs:
            record_run(run_id)
        assert tcc.flush()


class TestRoundTrip:
    def test_run_summary(self, store: Store, receiver: Receiver) -> None:
        """A run sent by tcc_otel is listed with its status, session, agent, models and totals."""
        send(receiver, "run-1")
        assert untimed(store.runs()) == [summary("run-1")]

    def test_run_spans(self, store: Store, receiver: Receiver) -> None:
        """A run's spans come back with parents, statuses and the attributes as received."""
        send(receiver, "run-1")
        found = store.run("run-1")
        assert found is not None
        received = {span.span_id: span for span in receiver.spans}
        assert untimed(found["spans"]) == [
            untimed(as_api(received[span["span_id"]])) for span in found["spans"]
        ]
        shape = [
            (span["name"], span["parent_span_id"] is None, span["status"], span["status_message"])
            for span in found["spans"]
        ]
        assert shape == [
            ("invoke_agent weather", True, "UNSET", ""),
            ("chat gpt-4o-2024-08-06", False, "UNSET", ""),
            ("execute_tool get_weather", False, "UNSET", ""),
            ("chat", False, "ERROR", "model overloaded"),
        ]
        root = found["spans"][0]["span_id"]
        assert {span["parent_span_id"] for span in found["spans"][1:]} == {root}

    def test_timing(self, store: Store, receiver: Receiver) -> None:
        """A run starts with its first span and lasts until its last span ends."""
        send(receiver, "run-1")
        found = store.run("run-1")
        assert found is not None
        run, spans = found["run"], found["spans"]
        assert run["start_ns"] == min(span["start_ns"] for span in spans)
        assert run["end_ns"] == max(span["end_ns"] for span in spans)
        assert run["duration_ms"] == (run["end_ns"] - run["start_ns"]) / 1e6
        assert [span["offset_ms"] for span in spans] == [
            (span["start_ns"] - run["start_ns"]) / 1e6 for span in spans
        ]

    def test_unknown_run(self, store: Store) -> None:
        """An unknown run id gives ``None``."""
        assert store.run("no-such-run") is None


def as_api(span: ReceivedSpan) -> dict[str, Any]:
    """A received span as the store gives it back, without times."""
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "kind": span.kind,
        "status": span.status_code,
        "status_message": span.status_message,
        "attributes": span.attributes,
        "events": [{"name": name, "attributes": values} for name, values in span.events],
        "resource": span.resource,
        "scope_name": span.scope_name,
    }


class TestIdempotency:
    def test_same_spans_twice(self, store: Store, receiver: Receiver) -> None:
        """The same spans stored twice (a retry, a spooled resend) are kept once."""
        send(receiver, "run-1")
        spans = receiver.spans
        assert store.add(spans) == 0
        assert untimed(store.runs()) == [summary("run-1")]

    def test_same_request_posted_twice(self, store: Store, receiver: Receiver) -> None:
        """The same OTLP request body POSTed to the receiver twice leaves one copy of each span."""
        with capture() as captured:
            record_run("run-1")
        body = encode_spans(captured.spans).SerializeToString()
        statuses = []
        for _ in range(2):
            connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
            try:
                connection.request(
                    "POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"}
                )
                statuses.append(connection.getresponse().status)
            finally:
                connection.close()
        assert (statuses, len(receiver.spans)) == ([200, 200], 8)
        assert untimed(store.runs()) == [summary("run-1")]


class TestRestart:
    def test_reopen_file(self, tmp_path: Path) -> None:
        """Runs stored in a file are listed again after the store is closed and reopened."""
        path = str(tmp_path / "dev.db")
        with Store(path) as first, Receiver("127.0.0.1", 0, on_spans=first.add) as receiver:
            send(receiver, "run-1")
        with Store(path) as second:
            assert untimed(second.runs()) == [summary("run-1")]
            journal = second._db.execute("PRAGMA journal_mode").fetchone()
            version = second._db.execute("SELECT version FROM schema_version").fetchall()
        assert (journal, version) == (("wal",), [(SCHEMA_VERSION,)])

    def test_upgrade_from_version_1(self, tmp_path: Path) -> None:
        """A database of schema version 1 is rebuilt from the spans it holds, totals included."""
        with Receiver("127.0.0.1", 0) as source:
            send(source, "run-1")
            spans = source.spans
        path = str(tmp_path / "dev.db")
        with sqlite3.connect(path) as db:
            db.executescript(SCHEMA_1)
            db.executemany(
                "INSERT INTO spans VALUES"
                " (?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?, ?, '[]', '{}', ?,"
                " NULL, NULL, NULL, NULL, NULL, NULL)",
                [
                    (
                        span.trace_id,
                        span.span_id,
                        span.parent_span_id,
                        span.trace_id,
                        span.name,
                        span.kind,
                        span.start_ns,
                        span.end_ns,
                        span.status_code,
                        span.status_message,
                        json.dumps(span.attributes),
                        span.scope_name,
                    )
                    for span in spans
                ],
            )
        db.close()
        with Store(path) as upgraded:
            assert untimed(upgraded.runs()) == [summary("run-1")]
            version = upgraded._db.execute("SELECT version FROM schema_version").fetchall()
        assert version == [(SCHEMA_VERSION,)]

    def test_newer_schema(self, tmp_path: Path) -> None:
        """A database from a newer schema is refused with a message naming both versions."""
        path = str(tmp_path / "dev.db")
        Store(path).close()
        with sqlite3.connect(path) as db:
            db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
        db.close()
        with pytest.raises(ValueError, match=f"schema version is {SCHEMA_VERSION + 1} and"):
            Store(path)

    def test_closed(self) -> None:
        """Using a closed store raises; closing twice does not."""
        store = Store(":memory:")
        store.close()
        store.close()
        with pytest.raises(RuntimeError, match=r"Store\.runs\(\) was called after"):
            store.runs()


class TestConcurrency:
    def test_threads_posting(self, tmp_path: Path) -> None:
        """Several exporters posting at once all land, each run once."""
        with Store(str(tmp_path / "dev.db")) as store:
            with Receiver("127.0.0.1", 0, on_spans=store.add) as source:
                send(source, *[f"run-{index}" for index in range(8)])
                spans = source.spans
            by_run: dict[str, list[ReceivedSpan]] = {}
            for span in spans:
                by_run.setdefault(str(span.attributes["tcc.runId"]), []).append(span)
            # a second store fed by eight threads at once, each run posted twice
            with Store(str(tmp_path / "concurrent.db")) as target:
                errors: list[BaseException] = []

                def post(batch: list[ReceivedSpan]) -> None:
                    try:
                        for _ in range(2):
                            target.add(batch)
                    except BaseException as error:  # surfaced by the assert below
                        errors.append(error)

                threads = [threading.Thread(target=post, args=(b,)) for b in by_run.values()]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                assert errors == []
                assert untimed(target.runs()) == untimed(store.runs())
            expected = sorted(f"run-{index}" for index in range(8))
            assert sorted(run["run_id"] for run in store.runs()) == expected


class TestFilters:
    @pytest.fixture
    def filled(self, store: Store, receiver: Receiver) -> Store:
        """``run-1`` (ok, weather, session-1) then ``run-f`` (error, search, session-2)."""
        with fresh_client():
            tcc.configure(base_url=receiver.url, api_key=KEY)
            record_run("run-1")
            assert tcc.flush()
            failed_run("run-f")
            assert tcc.flush()
        return store

    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            ({}, ["run-f", "run-1"]),
            ({"status": "error"}, ["run-f"]),
            ({"status": "ok"}, ["run-1"]),
            ({"status": "incomplete"}, []),
            ({"session": "session-1"}, ["run-1"]),
            ({"agent": "search"}, ["run-f"]),
            ({"agent": "search", "status": "ok"}, []),
            ({"limit": 1}, ["run-f"]),
        ],
    )
    def test_filter(self, filled: Store, filters: dict[str, Any], expected: list[str]) -> None:
        """Each filter keeps the matching runs, newest first."""
        assert [run["run_id"] for run in filled.runs(**filters)] == expected

    def test_failed_run(self, filled: Store) -> None:
        """A run whose run span failed is listed with status error and its own totals."""
        assert untimed(filled.runs(status="error")) == [FAILED]

    @pytest.mark.parametrize(
        ("filters", "message"),
        [
            ({"status": "done"}, "status must be one of ok, error, incomplete, got 'done'"),
            ({"limit": 0}, "limit must be 1-1000, got 0"),
        ],
    )
    def test_bad_filter(self, store: Store, filters: dict[str, Any], message: str) -> None:
        """A status or limit out of range raises ValueError naming the valid values."""
        with pytest.raises(ValueError, match=message):
            store.runs(**filters)


class TestGrouping:
    def test_ancestor_arrives_later(self, tmp_path: Path) -> None:
        """A span without a run id stored before its ancestors joins their run once they come,
        even in a later session of the same database."""
        with Receiver("127.0.0.1", 0) as source:
            send(source, "run-1")
            spans = source.spans
        [run_span] = [span for span in spans if span.attributes.get("tcc.type") == "run"]
        middle = replace(run_span, span_id="00000000000000b1", attributes={})
        middle = replace(middle, parent_span_id=run_span.span_id, name="retrieve")
        orphan = replace(middle, span_id="00000000000000b2", parent_span_id=middle.span_id)
        orphan = replace(orphan, name="http get")
        path = str(tmp_path / "dev.db")
        with Store(path) as first:
            first.add([orphan])
            assert [run["run_id"] for run in first.runs()] == [run_span.trace_id]
        with Store(path) as second:
            second.add([middle])
            assert len(second.runs()) == 1  # still waiting: the middle span has no run either
            second.add(spans)
            assert untimed(second.runs()) == [summary("run-1", span_count=6)]
            found = second.run("run-1")
            assert found is not None
            assert sorted(span["name"] for span in found["spans"]) == [
                "chat",
                "chat gpt-4o-2024-08-06",
                "execute_tool get_weather",
                "http get",
                "invoke_agent weather",
                "retrieve",
            ]

    def test_incomplete_until_run_span(self, store: Store) -> None:
        """Steps stored before their run span make an incomplete run that completes later."""
        with Receiver("127.0.0.1", 0) as source:
            send(source, "run-1")
            spans = source.spans
        run_spans = [s for s in spans if s.attributes.get("tcc.type") == "run"]
        others = [s for s in spans if s.attributes.get("tcc.type") != "run"]
        store.add(others)
        assert untimed(store.runs()) == [
            summary("run-1", name=None, status="incomplete", session=None, agent=None, span_count=3)
        ]
        store.add(run_spans)
        assert untimed(store.runs()) == [summary("run-1")]
