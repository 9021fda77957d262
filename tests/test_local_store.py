"""Tests for tcc_otel._local._store: spans sent by tcc_otel through a real receiver into SQLite."""

from __future__ import annotations

import http.client
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.clients import fresh_client
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

import tcc_otel as tcc
from tcc_otel._local._receiver import ReceivedSpan, Receiver
from tcc_otel._local._store import SCHEMA_VERSION, Store
from tcc_otel.testing import capture

KEY = "test-key-123"
TIMES = ("start_ns", "end_ns", "duration_ms", "offset_ms")
"""Clock-dependent fields, left out of whole-structure comparisons."""


def record_run(run_id: str, *, session: str = "session-1", agent: str = "weather") -> None:
    """Record one run: a step with model, tokens and cost, a tool call, and a failed step."""
    with tcc.run(run_id=run_id, session_id=session) as r:
        r.prompt("Weather in London?").metadata({"tcc.agent": agent})
        with r.step(step_id=f"{run_id}-s1") as s:
            s.prompt("Weather in London?").model(requested="gpt-4o", used="gpt-4o-2024-08-06")
            s.response("Calling get_weather.").finish_reason("tool_call")
            s.tokens(prompt_uncached=100, prompt_cached=20, completion=18).cost(0.0005)
        with r.tool_call("get_weather", tool_call_id=f"{run_id}-t1") as t:
            t.args({"city": "London"}).result({"temperature": 15})
        r.step(step_id=f"{run_id}-s2").prompt("Summarise").error("model overloaded")
        r.response("15 °C.")


def failed_run(run_id: str, *, session: str = "session-2", agent: str = "search") -> None:
    """Record a run whose status is error, with one step of another model."""
    with tcc.run(run_id=run_id, session_id=session) as r:
        r.prompt("Find it").metadata({"tcc.agent": agent})
        with r.step(step_id=f"{run_id}-s1") as s:
            s.prompt("Find it").model(used="gpt-4o-mini").tokens(prompt_uncached=7, completion=3)
            s.response("Nothing.").cost(0.0001)
        r.status(2, "search failed")


def untimed(value: Any) -> Any:
    """``value`` without its clock-dependent fields, recursively."""
    if isinstance(value, dict):
        return {key: untimed(item) for key, item in value.items() if key not in TIMES}
    if isinstance(value, list):
        return [untimed(item) for item in value]
    return value


def summary(run_id: str, **changes: Any) -> dict[str, Any]:
    """The untimed summary of a run recorded by ``record_run``, with ``changes`` applied."""
    expected: dict[str, Any] = {
        "run_id": run_id,
        "name": "invoke_agent weather",
        "status": "ok",
        "session": "session-1",
        "agent": "weather",
        "models": ["gpt-4o-2024-08-06"],
        "input_tokens": 120,
        "output_tokens": 18,
        "total_tokens": 138,
        "total_cost": 0.0005,
        "span_count": 4,
        "error_count": 1,
    }
    expected.update(changes)
    return expected


FAILED = {
    "run_id": "run-f",
    "name": "invoke_agent search",
    "status": "error",
    "session": "session-2",
    "agent": "search",
    "models": ["gpt-4o-mini"],
    "input_tokens": 7,
    "output_tokens": 3,
    "total_tokens": 10,
    "total_cost": 0.0001,
    "span_count": 2,
    "error_count": 1,
}


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
