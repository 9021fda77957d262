"""A real trace UI: a run exported by tcc_otel to Arize Phoenix, read back through its REST API.

Phoenix runs as a subprocess on a free 127.0.0.1 port with its gRPC receiver off (see
``_serve.py``) and its database in a temporary directory. tcc_otel sends the run to
``http://127.0.0.1:<port>/v1/traces`` (loopback: no key); ``GET /v1/projects/{project}/spans``
must then show the run's tree: names, parent ids, one trace id, ``tcc.runId`` on every span, the
failing step's status, and the span kinds Phoenix derives from our ``gen_ai.*`` attributes.

Not part of ``make test``: run it with ``make test-phoenix``, which installs Phoenix into its own
venv (``.venv-phoenix``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import tcc_otel as tcc

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("phoenix") is None,
    reason="arize-phoenix is not installed in this interpreter: run `make test-phoenix`",
)

SERVE = Path(__file__).resolve().parent / "_serve.py"
PROJECT = "tcc-otel-phoenix-test"
"""Phoenix files spans under the ``openinference.project.name`` resource attribute."""

# Hang guards only: each is far above what the step takes, and none is asserted on.
START_TIMEOUT = 120.0
FLUSH_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class Phoenix:
    """A running Phoenix server: where it listens, and the gRPC port it was told to use."""

    base_url: str
    grpc_port: int
    log: Path


def free_port() -> int:
    """A TCP port nothing listens on right now on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(url: str) -> Any:
    """GET ``url`` and decode its JSON body; raises ``urllib.error.HTTPError`` on 4xx/5xx."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def log_tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    """Phoenix on 127.0.0.1 with a throwaway working dir; terminated in teardown."""
    tmp_path = tmp_path_factory.mktemp("phoenix")
    port, grpc_port = free_port(), free_port()
    workdir = tmp_path / "phoenix"
    workdir.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PHOENIX_", "OTEL_", "TCC_"))
    }
    env.update(
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(grpc_port),  # must stay closed: _serve.py keeps gRPC off
        PHOENIX_WORKING_DIR=str(workdir),  # its SQLite database and exports live here
        PHOENIX_TELEMETRY_ENABLED="false",
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
        PHOENIX_DISABLE_AGENT_ASSISTANT="true",
    )
    log = tmp_path / "phoenix.log"
    base_url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:  # a file, not a pipe: a chatty server can never block on it
        process = subprocess.Popen(
            [sys.executable, str(SERVE)], cwd=workdir, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"Phoenix exited with {process.returncode}:\n{log_tail(log)}")
            try:
                with urllib.request.urlopen(f"{base_url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Phoenix did not answer on {base_url}:\n{log_tail(log)}")
            time.sleep(0.25)
        yield Phoenix(base_url, grpc_port, log)
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


@pytest.fixture
def configured(phoenix: Phoenix, monkeypatch: pytest.MonkeyPatch) -> Iterator[Phoenix]:
    """tcc_otel sending to Phoenix, into project ``PROJECT``; shut down in teardown."""
    for key in list(os.environ):
        if key.startswith("TCC_"):  # never send a real key (or go elsewhere) from this test
            monkeypatch.delenv(key)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"openinference.project.name={PROJECT}")
    tcc.configure(base_url=phoenix.base_url, service_name="tcc-otel-phoenix-test")
    try:
        yield phoenix
    finally:
        tcc.shutdown()


def read_spans(phoenix: Phoenix, trace_id: str, count: int) -> list[dict[str, Any]]:
    """The trace's spans from Phoenix's REST API, once ``count`` have been stored.

    Phoenix answers the OTLP request before it writes the spans (and 404 until the project
    exists), so this polls.
    """
    url = (
        f"{phoenix.base_url}/v1/projects/{quote(PROJECT)}/spans"
        f"?trace_id={trace_id}&limit=100&sort=start_time&order=asc"
    )
    deadline = time.monotonic() + READ_TIMEOUT
    spans: list[dict[str, Any]] = []
    while True:
        try:
            spans = get_json(url)["data"]
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
        if len(spans) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.25)


def test_run_tree_in_phoenix(configured: Phoenix) -> None:
    """A run with two steps (one failing) and a tool call shows up in Phoenix as one tree."""
    with tcc.run() as run:
        traceparent = tcc.inject()["traceparent"]  # 00-<trace id>-<run span id>-<flags>
        run.prompt("What is the weather in Paris?").metadata({"tcc.agent": "weather-agent"})
        with run.step() as step:
            step.prompt("What is the weather in Paris?").response("Calling get_weather.")
            step.model(requested="gpt-4o", used="gpt-4o-2024-08-06")
        with run.tool_call("get_weather") as tool:
            tool.args({"city": "Paris"}).result({"temp_c": 18})
        failing = run.step()
        failing.prompt("Summarise: 18 C in Paris").model(requested="gpt-4o-mini")
        failing.error("rate limited by the provider")
        run.response("It is 18 C in Paris.")
    _, trace_id, run_span_id, _ = traceparent.split("-")

    assert tcc.flush(FLUSH_TIMEOUT)
    stats = tcc.stats()
    assert (stats["exported"], stats["dropped"]) == (4, 0), stats

    spans = read_spans(configured, trace_id, 4)
    assert {span["context"]["trace_id"] for span in spans} == {trace_id}
    tree = {
        span["name"]: {
            "parent_id": span["parent_id"],
            "span_kind": span["span_kind"],
            "status": (span["status_code"], span["status_message"]),
            "tcc.type": span["attributes"].get("tcc.type"),
            "tcc.runId": span["attributes"].get("tcc.runId"),
            "error.type": span["attributes"].get("error.type"),
        }
        for span in spans
    }
    span_ids = {span["name"]: span["context"]["span_id"] for span in spans}
    assert span_ids["invoke_agent weather-agent"] == run_span_id
    assert len(set(span_ids.values())) == 4
    assert tree == {
        "invoke_agent weather-agent": {
            "parent_id": None,
            "span_kind": "AGENT",
            "status": ("UNSET", ""),
            "tcc.type": "run",
            "tcc.runId": run.run_id,
            "error.type": None,
        },
        "chat gpt-4o-2024-08-06": {
            "parent_id": run_span_id,
            "span_kind": "LLM",
            "status": ("UNSET", ""),
            "tcc.type": "step",
            "tcc.runId": run.run_id,
            "error.type": None,
        },
        "execute_tool get_weather": {
            "parent_id": run_span_id,
            "span_kind": "TOOL",
            "status": ("UNSET", ""),
            "tcc.type": "tool_call",
            "tcc.runId": run.run_id,
            "error.type": None,
        },
        "chat gpt-4o-mini": {
            "parent_id": run_span_id,
            "span_kind": "LLM",
            "status": ("ERROR", "rate limited by the provider"),
            "tcc.type": "step",
            "tcc.runId": run.run_id,
            "error.type": "_OTHER",
        },
    }


def test_grpc_stays_off(phoenix: Phoenix) -> None:
    """Phoenix answers on its HTTP port only: nothing listens on the gRPC port it was given."""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", phoenix.grpc_port), timeout=2).close()
