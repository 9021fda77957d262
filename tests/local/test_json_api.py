"""Tests for tcc_otel._local._api: the JSON API on the receiver's port, over real HTTP."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from helpers.clients import fresh_client
from helpers.dev_runs import FAILED, KEY, failed_run, record_run, summary, untimed

import tcc_otel as tcc
from tcc_otel._local._api import Api
from tcc_otel._local._server import Receiver
from tcc_otel._local._store import Store

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 serving the API of an in-memory store, stopped in teardown."""
    with (
        Store(":memory:") as store,
        Receiver("127.0.0.1", 0, on_spans=store.add, on_get=Api(store)) as running,
    ):
        with fresh_client():
            tcc.configure(base_url=running.url, api_key=KEY)
            record_run("run-1")
            assert tcc.flush()
            failed_run("run-f")
            assert tcc.flush()
        yield running


def get(port: int, path: str, host: str | None = None) -> tuple[int, str, Any]:
    """GET ``path``; the status, Content-Type and JSON body (raw text when not JSON)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {} if host is None else {"Host": host}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        content_type = response.getheader("Content-Type", "")
        text = response.read().decode("utf-8")
        body = json.loads(text) if content_type == "application/json" else text
        return response.status, content_type, body
    finally:
        connection.close()


class TestRuns:
    def test_list(self, receiver: Receiver) -> None:
        """``GET /api/runs`` lists every run, newest first, as JSON."""
        status, content_type, body = get(receiver.port, "/api/runs")
        assert (status, content_type, untimed(body)) == (
            200,
            "application/json",
            {"runs": [FAILED, summary("run-1")]},
        )

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("status=error", ["run-f"]),
            ("status=ok&agent=weather", ["run-1"]),
            ("session=session-2", ["run-f"]),
            ("agent=nobody", []),
            ("limit=1", ["run-f"]),
            ("status=&session=", ["run-f", "run-1"]),
        ],
    )
    def test_filters(self, receiver: Receiver, query: str, expected: list[str]) -> None:
        """Query parameters filter the list; an empty value filters nothing."""
        status, _, body = get(receiver.port, "/api/runs?" + query)
        assert (status, [run["run_id"] for run in body["runs"]]) == (200, expected)

    @pytest.mark.parametrize(
        ("query", "error"),
        [
            ("status=done", "status must be one of ok, error, incomplete, got 'done'"),
            ("limit=lots", "limit must be a whole number 1-1000, got 'lots'"),
            ("limit=0", "limit must be a whole number 1-1000, got '0'"),
            ("user=me", "unknown parameter 'user'; use status, session, agent, limit"),
        ],
    )
    def test_bad_query(self, receiver: Receiver, query: str, error: str) -> None:
        """A bad parameter is answered 400 with a JSON error naming what is allowed."""
        assert get(receiver.port, "/api/runs?" + query) == (
            400,
            "application/json",
            {"error": error},
        )


class TestRun:
    def test_one_run(self, receiver: Receiver) -> None:
        """``GET /api/runs/{run_id}`` gives the run and its spans, tree-ready."""
        status, content_type, body = get(receiver.port, "/api/runs/run-f")
        assert (status, content_type, sorted(body)) == (200, "application/json", ["run", "spans"])
        assert untimed(body["run"]) == FAILED
        root, step = body["spans"]
        assert untimed(step) == {
            "trace_id": root["trace_id"],
            "span_id": step["span_id"],
            "parent_span_id": root["span_id"],
            "name": "chat gpt-4o-mini",
            "kind": "CLIENT",
            "status": "UNSET",
            "status_message": "",
            "attributes": step["attributes"],
            "events": [],
            "resource": root["resource"],
            "scope_name": "tcc_otel",
        }
        assert {key: step["attributes"][key] for key in ("tcc.stepId", "tcc.type")} == {
            "tcc.stepId": "run-f-s1",
            "tcc.type": "step",
        }
        assert (root["parent_span_id"], root["status"], root["status_message"]) == (
            None,
            "ERROR",
            "search failed",
        )

    def test_quoted_id(self, receiver: Receiver) -> None:
        """A percent-encoded run id finds the run."""
        status, _, body = get(receiver.port, "/api/runs/run%2Df")
        assert (status, body["run"]["run_id"]) == (200, "run-f")

    @pytest.mark.parametrize(
        ("path", "error"),
        [
            ("/api/runs/nope", "no run 'nope'"),
            ("/api/other", "no such path /api/other; the API has /api/runs and /api/runs/ID"),
        ],
    )
    def test_not_found(self, receiver: Receiver, path: str, error: str) -> None:
        """An unknown run or API path is answered 404 with a JSON error."""
        assert get(receiver.port, path) == (404, "application/json", {"error": error})


class TestReceiverStillWorks:
    def test_other_paths(self, receiver: Receiver) -> None:
        """Paths outside the API answer as before: 405 for GET /v1/traces, 404 elsewhere."""
        assert [get(receiver.port, path)[:2] for path in ("/v1/traces", "/nope")] == [
            (405, "text/plain; charset=utf-8"),
            (404, "text/plain; charset=utf-8"),
        ]

    @pytest.mark.parametrize("host", ["evil.example:4318", "10.0.0.1", "", "127.0.0.2"])
    def test_foreign_host(self, receiver: Receiver, host: str) -> None:
        """A request addressed to a host outside LOOPBACK_HOSTS (DNS rebinding) is refused."""
        assert get(receiver.port, "/api/runs", host=host) == (
            403,
            "application/json",
            {"error": "the API answers only requests addressed to a loopback host"},
        )

    @pytest.mark.parametrize("host", ["localhost:4318", "127.0.0.1", "[::1]:80"])
    def test_loopback_host(self, receiver: Receiver, host: str) -> None:
        """Loopback names, with or without a port, are served."""
        assert get(receiver.port, "/api/runs", host=host)[0] == 200


class TestCli:
    def test_db_survives_restart(self, tmp_path: Path) -> None:
        """A run stored by one ``tcc-otel dev --db`` session is listed by the next one."""
        db = str(tmp_path / "dev.db")
        first = _dev_session(db, _send)
        listed = _dev_session(db, lambda url: None)
        assert first == listed == [summary("run-1")]


def _send(url: str) -> None:
    with fresh_client():
        tcc.configure(base_url=url, api_key=KEY)
        record_run("run-1")
        assert tcc.flush()


def _dev_session(db: str, act: Callable[[str], None]) -> list[dict[str, Any]]:
    """Start ``tcc-otel dev --db db``, call ``act(url)``, read ``/api/runs``, then stop it."""
    args = [sys.executable, "-m", "tcc_otel", "dev", "--port", "0", "--db", db, "--no-color"]
    args += ["--timeout", "20"]
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO)
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split("listening on ")[1].split(" ")[0]
        act(url)
        port = int(url.rsplit(":", 1)[1])
        status, _, body = get(port, "/api/runs")
        assert status == 200
        return [untimed(run) for run in body["runs"]]
    finally:
        process.kill()
        process.communicate(timeout=10)


class TestPage:
    def test_page_and_assets_are_served(self, receiver: Receiver) -> None:
        """The page and its three assets come from the package with their content types."""
        served = {
            path: get(receiver.port, path)[:2]
            for path in ("/", "/static/app.js", "/static/style.css", "/static/index.html")
        }
        assert {path: (status, kind.split(";")[0]) for path, (status, kind) in served.items()} == {
            "/": (200, "text/html"),
            "/static/app.js": (200, "text/javascript"),
            "/static/style.css": (200, "text/css"),
            "/static/index.html": (200, "text/html"),
        }

    def test_no_files_outside_the_asset_list(self, receiver: Receiver) -> None:
        """Paths that climb out of the static folder or name unknown files are 404."""
        assert [
            get(receiver.port, path)[0]
            for path in ("/static/../_api.py", "/static/%2e%2e/_store.py", "/static/nope.js")
        ] == [404, 404, 404]

    def test_page_headers(self, receiver: Receiver) -> None:
        """The page forbids sniffing and allows only its own scripts, styles and API calls."""
        connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            response.read()
            headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            connection.close()
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["content-security-policy"].split("; ")[:4] == [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
        ]

    def test_page_refuses_foreign_host(self, receiver: Receiver) -> None:
        """A page request whose Host is not this machine is refused (DNS rebinding)."""
        assert get(receiver.port, "/", host="evil.example")[0] == 403
