"""The spool (``TCC_SPOOL_DIR``): batches stay on disk until acknowledged, so a process killed
with SIGKILL, or one that exits while the endpoint is down, loses nothing; the next process with
the same directory sends them once, and live processes never send each other's files.

The cross-process tests run tests/scripts/spool_agent.py in fresh interpreters configured by the
environment only, and compare span ids: what the receiver got against what the agents recorded.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _fault_server import FaultServer, Reply, closed_port
from helpers.clients import fresh_client
from helpers.delivery import (
    HANG_GUARD,
    SpanId,
    accepted_ids,
    counters,
    record_run,
    wait_until,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel._local._receiver import Receiver

AGENT = Path(__file__).parent / "scripts" / "spool_agent.py"
KEY = "test-key-123"
SUFFIX = ".otlp.gz"
"""Spool files end with this; anything else in the directory is not a batch (yet)."""
RUNS = 5
"""Runs the first agent records; each has two steps and one tool call."""
SPANS = RUNS * 4


class Agent:
    """A running spool_agent.py, with its report once it printed one."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        clean = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("TCC_", "OTEL_"))  # also drops TCC_OTEL_RAISE_INTERNAL_ERRORS
        }
        self.process = subprocess.Popen(
            [sys.executable, str(AGENT), *args],
            env={**clean, "PYTHONUNBUFFERED": "1", "TCC_API_KEY": KEY, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.report: dict[str, Any] = {}
        self.stderr = ""

    @property
    def pid(self) -> int:
        """The agent's process id."""
        return self.process.pid

    def read_report(self) -> dict[str, Any]:
        """Wait (bounded) for the JSON line the agent prints once its runs ended."""
        line: list[str] = []
        assert self.process.stdout is not None
        stdout = self.process.stdout
        reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(HANG_GUARD)
        assert line, f"the agent printed no report; stderr: {self._stderr_now()}"
        assert line[0], f"the agent ended without a report; stderr: {self._stderr_now()}"
        self.report = json.loads(line[0])
        return self.report

    @property
    def spans(self) -> list[SpanId]:
        """Ids of the spans the agent recorded, sorted."""
        return sorted((trace_id, span_id) for trace_id, span_id in self.report["spans"])

    def finish(self) -> int:
        """Close the agent's stdin and wait (bounded) for it to exit; return its exit code."""
        _, self.stderr = self.process.communicate("", timeout=HANG_GUARD)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL the agent and reap it, so its pid is gone for good."""
        os.kill(self.pid, signal.SIGKILL)
        _, self.stderr = self.process.communicate(timeout=HANG_GUARD)

    def log_lines(self) -> list[str]:
        """Lines the agent's logging printed for logger ``tcc_otel``."""
        return [line for line in self.stderr.splitlines() if line.startswith("tcc_otel ")]

    def _stderr_now(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        _, err = self.process.communicate(timeout=HANG_GUARD)
        return err


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    """Agents a test starts; any still running in teardown is killed (by its pid) and reaped."""
    started: list[Agent] = []
    yield started
    for agent in started:
        if agent.process.poll() is None:
            agent.process.kill()
            agent.process.communicate(timeout=HANG_GUARD)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback OTLP/HTTP receiver on a free port, stopped in teardown."""
    with Receiver("127.0.0.1", 0) as running:
        yield running


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    """An empty spool directory."""
    directory = tmp_path / "spool"
    directory.mkdir()
    return directory


def spool_files(directory: Path) -> list[str]:
    """Names of the batches in ``directory``, sorted."""
    return sorted(name for name in os.listdir(directory) if name.endswith(SUFFIX))


def spooled_ids(directory: Path) -> list[SpanId]:
    """Ids of the spans in the spool files of ``directory``, sorted; duplicates stay."""
    found: list[SpanId] = []
    for name in spool_files(directory):
        try:
            body = gzip.decompress((directory / name).read_bytes())
        except FileNotFoundError:
            continue  # sent (or adopted) meanwhile
        request = ExportTraceServiceRequest.FromString(body)
        found.extend(
            (bytes(span.trace_id).hex(), bytes(span.span_id).hex())
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        )
    return sorted(found)


def received_ids(receiver: Receiver) -> list[SpanId]:
    """Ids of every span the receiver accepted, sorted; duplicates stay."""
    return sorted((span.trace_id, span.span_id) for span in receiver.spans)


def down_env(spool: Path) -> dict[str, str]:
    """Environment of an agent whose endpoint is down (nothing listens on the port)."""
    return {
        "TCC_BASE_URL": f"http://127.0.0.1:{closed_port()}",
        "TCC_SPOOL_DIR": str(spool),
        "TCC_SHUTDOWN_TIMEOUT": "1",
    }


def live_env(receiver: Receiver, spool: Path) -> dict[str, str]:
    """Environment of an agent that sends to ``receiver``."""
    return {"TCC_BASE_URL": receiver.url, "TCC_SPOOL_DIR": str(spool)}


class TestInProcess:
    """A spool in the process that sends: files live exactly until acknowledged."""

    @pytest.fixture
    def client(self) -> Iterator[Client]:
        """A fresh default client, shut down in teardown."""
        with fresh_client() as fresh:
            yield fresh

    def test_file_until_acknowledged(self, client: Client, spool: Path) -> None:
        """While the endpoint holds the request, the run's batch is on disk and counted as
        spooled; once acknowledged, the file is gone and each span was delivered once."""
        answer = threading.Event()
        with FaultServer([Reply(hold=answer)]) as slow:
            tcc.configure(base_url=slow.url, api_key=KEY, spool_dir=str(spool))
            ended = record_run()
            assert slow.wait_for_requests(1, HANG_GUARD)
            on_disk = spooled_ids(spool)
            during = tcc.stats()
            answer.set()
            assert tcc.flush(HANG_GUARD)
            received = accepted_ids(slow.requests)
        assert on_disk == received == sorted(ended)
        assert during == counters(recorded=6, queued=6, spooled=6)
        assert tcc.stats() == counters(recorded=6, exported=6)
        assert spool_files(spool) == []


class TestSigkill:
    """A process killed while its endpoint is down; the next one delivers for it."""

    def first_agent_killed(self, agents: list[Agent], spool: Path) -> Agent:
        """Start an agent with the endpoint down, wait until its spool holds every span it
        recorded, then SIGKILL it."""
        first = Agent(down_env(spool), "--runs", str(RUNS), "--steps", "2", "--wait")
        agents.append(first)
        first.read_report()
        assert len(first.spans) == SPANS
        assert wait_until(lambda: spooled_ids(spool) == first.spans)
        first.kill()
        assert first.process.returncode == -signal.SIGKILL
        return first

    def test_next_process_with_a_run(
        self, agents: list[Agent], spool: Path, receiver: Receiver
    ) -> None:
        """The next process, recording one run of its own, delivers the killed process's spans
        and its own, each exactly once, and leaves the spool empty."""
        first = self.first_agent_killed(agents, spool)
        second = Agent(live_env(receiver, spool), "--flush")
        agents.append(second)
        report = second.read_report()
        assert (second.finish(), second.stderr) == (0, "")
        assert received_ids(receiver) == sorted(first.spans + second.spans)
        assert spool_files(spool) == []
        assert report["flushed"] is True
        assert report["stats"] == counters(recorded=3, exported=SPANS + 3, recovered=SPANS)

    def test_next_process_without_runs(
        self, agents: list[Agent], spool: Path, receiver: Receiver
    ) -> None:
        """The next process that configures tcc_otel with the same spool directory delivers the
        killed process's spans, although it records nothing itself."""
        first = self.first_agent_killed(agents, spool)
        second = Agent(live_env(receiver, spool), "--runs", "0", "--configure", "--flush")
        agents.append(second)
        report = second.read_report()
        assert (second.finish(), second.stderr) == (0, "")
        assert received_ids(receiver) == first.spans
        assert spool_files(spool) == []
        assert report["stats"] == counters(exported=SPANS, recovered=SPANS)


class TestExitEndpointDown:
    """A process that exits normally while its endpoint is down."""

    def test_files_stay_and_next_process_delivers(
        self, agents: list[Agent], spool: Path, receiver: Receiver
    ) -> None:
        """The exit keeps every undelivered batch on disk and says in one line how many spans
        are kept; the next process delivers them once and leaves the spool empty."""
        first = Agent(down_env(spool), "--runs", str(RUNS), "--steps", "2", "--pause", "0.1")
        agents.append(first)
        first.read_report()
        assert first.finish() == 0
        assert "Traceback" not in first.stderr
        assert spooled_ids(spool) == first.spans
        second = Agent(live_env(receiver, spool), "--flush")
        agents.append(second)
        second.read_report()
        assert (second.finish(), second.stderr) == (0, "")
        assert received_ids(receiver) == sorted(first.spans + second.spans)
        assert spool_files(spool) == []
        kept = [
            line
            for line in first.log_lines()
            if re.search(rf"\b{SPANS} spans\b.*\b(kept|spool)", line)
        ]
        assert len(kept) == 1, first.log_lines()


class TestSharedDirectory:
    """Two live processes with one spool directory."""

    def test_live_processes_keep_to_their_own_files(
        self, agents: list[Agent], spool: Path, receiver: Receiver
    ) -> None:
        """A process with a live endpoint sends only its own spans while another live process
        has batches waiting in the same directory; those stay there, untouched."""
        stuck = Agent(down_env(spool), "--runs", str(RUNS), "--steps", "2", "--wait")
        agents.append(stuck)
        stuck.read_report()
        assert wait_until(lambda: spooled_ids(spool) == stuck.spans)
        files = spool_files(spool)
        other = Agent(live_env(receiver, spool), "--flush")
        agents.append(other)
        report = other.read_report()
        assert (other.finish(), other.stderr) == (0, "")
        assert received_ids(receiver) == other.spans
        assert spool_files(spool) == files
        assert spooled_ids(spool) == stuck.spans
        assert report["stats"] == counters(recorded=3, exported=3)
        assert stuck.process.poll() is None  # still alive: its files were never adoptable
