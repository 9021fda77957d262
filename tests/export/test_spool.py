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
from _fault_server import FaultServer, Reply
from helpers.clients import fresh_client
from helpers.delivery import (
    HANG_GUARD,
    FlakyReceiver,
    SpanId,
    accepted_ids,
    counters,
    flaky_receiver,
    record_run,
    wait_until,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel._local._server import Receiver

AGENT = Path(__file__).resolve().parents[1] / "scripts" / "spool_agent.py"
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
def endpoint() -> Iterator[FlakyReceiver]:
    """The endpoint of a test's agents: down (connections refused) until ``come_back()``,
    then a loopback OTLP/HTTP receiver on the same port; stopped in teardown."""
    with flaky_receiver(up=False) as flaky:
        yield flaky


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    """An empty spool directory."""
    directory = tmp_path / "spool"
    directory.mkdir()
    return directory


def spool_files(directory: Path) -> list[str]:
    """Paths (relative to ``directory``: destination folder and name) of the batches in the
    spool ``directory``, sorted."""
    return sorted(str(path.relative_to(directory)) for path in directory.glob(f"*/*{SUFFIX}"))


def spooled_ids(directory: Path) -> list[SpanId]:
    """Ids of the spans in the spool files of ``directory``, sorted; duplicates stay."""
    return sorted(
        span for folder in directory.iterdir() if folder.is_dir() for span in spooled_ids_in(folder)
    )


def spooled_ids_in(folder: Path) -> list[SpanId]:
    """Ids of the spans in one destination folder's files, sorted; duplicates stay."""
    found: list[SpanId] = []
    for name in sorted(path.name for path in folder.glob(f"*{SUFFIX}")):
        try:
            body = gzip.decompress((folder / name).read_bytes())
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


def down_env(url: str, spool: Path) -> dict[str, str]:
    """Environment of an agent whose endpoint ``url`` is down (or never answers)."""
    return {"TCC_BASE_URL": url, "TCC_SPOOL_DIR": str(spool), "TCC_SHUTDOWN_TIMEOUT": "1"}


def live_env(url: str, spool: Path) -> dict[str, str]:
    """Environment of an agent that sends to ``url``."""
    return {"TCC_BASE_URL": url, "TCC_SPOOL_DIR": str(spool)}


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

    def first_agent_killed(self, agents: list[Agent], spool: Path, url: str) -> Agent:
        """Start an agent with the endpoint down, wait until its spool holds every span it
        recorded, then SIGKILL it."""
        first = Agent(down_env(url, spool), "--runs", str(RUNS), "--steps", "2", "--wait")
        agents.append(first)
        first.read_report()
        assert len(first.spans) == SPANS
        assert wait_until(lambda: spooled_ids(spool) == first.spans)
        first.kill()
        assert first.process.returncode == -signal.SIGKILL
        return first

    def test_next_process_with_a_run(
        self, agents: list[Agent], spool: Path, endpoint: FlakyReceiver
    ) -> None:
        """The next process, recording one run of its own, delivers the killed process's spans
        and its own, each exactly once, and leaves the spool empty."""
        first = self.first_agent_killed(agents, spool, endpoint.url)
        endpoint.come_back()
        second = Agent(live_env(endpoint.url, spool), "--flush")
        agents.append(second)
        report = second.read_report()
        assert (second.finish(), second.stderr) == (0, "")
        assert endpoint.accepted_ids() == sorted(first.spans + second.spans)
        assert spool_files(spool) == []
        assert report["flushed"] is True
        assert report["stats"] == counters(recorded=3, exported=SPANS + 3, recovered=SPANS)

    def test_next_process_without_runs(
        self, agents: list[Agent], spool: Path, endpoint: FlakyReceiver
    ) -> None:
        """The next process that configures tcc_otel with the same spool directory delivers the
        killed process's spans, although it records nothing itself."""
        first = self.first_agent_killed(agents, spool, endpoint.url)
        endpoint.come_back()
        second = Agent(live_env(endpoint.url, spool), "--runs", "0", "--configure", "--flush")
        agents.append(second)
        report = second.read_report()
        assert (second.finish(), second.stderr) == (0, "")
        assert endpoint.accepted_ids() == first.spans
        assert spool_files(spool) == []
        assert report["stats"] == counters(exported=SPANS, recovered=SPANS)


class TestExitEndpointDown:
    """A process that exits normally while its endpoint is down."""

    def test_files_stay_and_next_process_delivers(
        self, agents: list[Agent], spool: Path, endpoint: FlakyReceiver
    ) -> None:
        """The exit keeps every undelivered batch on disk and says in one line how many spans
        are kept; the next process delivers them once and leaves the spool empty."""
        first = Agent(
            down_env(endpoint.url, spool), "--runs", str(RUNS), "--steps", "2", "--pause", "0.1"
        )
        agents.append(first)
        first.read_report()
        assert first.finish() == 0
        assert "Traceback" not in first.stderr
        assert spooled_ids(spool) == first.spans
        endpoint.come_back()
        second = Agent(live_env(endpoint.url, spool), "--flush")
        agents.append(second)
        second.read_report()
        assert (second.finish(), second.stderr) == (0, "")
        assert endpoint.accepted_ids() == sorted(first.spans + second.spans)
        assert spool_files(spool) == []
        kept = [
            line
            for line in first.log_lines()
            if re.search(rf"\b{SPANS} spans\b.*\b(kept|spool)", line)
        ]
        assert len(kept) == 1, first.log_lines()


class TestSharedDirectory:
    """Two live processes with one spool directory."""

    def test_live_processes_keep_to_their_own_files(self, agents: list[Agent], spool: Path) -> None:
        """A process sends only its own spans while another live process with the same
        endpoint has batches waiting in the same directory; those stay there, untouched."""
        with FaultServer([Reply(hang=True)]) as server:  # the first request never answered
            stuck = Agent(
                down_env(server.url, spool), "--runs", str(RUNS), "--steps", "2", "--wait"
            )
            agents.append(stuck)
            stuck.read_report()
            assert wait_until(lambda: spooled_ids(spool) == stuck.spans)
            assert server.wait_for_requests(1, HANG_GUARD)
            files = spool_files(spool)
            other = Agent(live_env(server.url, spool), "--flush")
            agents.append(other)
            report = other.read_report()
            assert (other.finish(), other.stderr) == (0, "")
            assert accepted_ids(server.requests) == other.spans
        assert spool_files(spool) == files
        assert spooled_ids(spool) == stuck.spans
        assert report["stats"] == counters(recorded=3, exported=3)
        assert stuck.process.poll() is None  # still alive: its files were never adoptable


class TestCheckpoints:
    """Spans waiting for their run are on disk within about a second, and never twice."""

    def test_open_run_survives_sigkill(
        self, agents: list[Agent], spool: Path, endpoint: FlakyReceiver
    ) -> None:
        """A process killed while a run is open, after its runs were delivered, loses neither
        the open run's ended steps (checkpointed) nor sends anything twice: the next process,
        which only imports tcc_otel, delivers exactly those steps."""
        endpoint.come_back()
        first = Agent(
            live_env(endpoint.url, spool),
            *("--runs", "2", "--steps", "2", "--open-for", "1.2", "--leave-open", "--wait"),
        )
        agents.append(first)
        report = first.read_report()
        opened = sorted((trace_id, span_id) for trace_id, span_id in report["open"])
        assert wait_until(lambda: endpoint.accepted_ids() == first.spans)
        assert wait_until(lambda: spooled_ids(spool) == opened)
        first.kill()
        second = Agent(live_env(endpoint.url, spool), "--runs", "0")  # imports, records nothing
        agents.append(second)
        second.read_report()
        assert (second.finish(), second.stderr) == (0, "")
        assert endpoint.accepted_ids() == sorted(first.spans + opened)
        assert spool_files(spool) == []

    def test_checkpoints_give_way_to_batches(
        self, agents: list[Agent], spool: Path, endpoint: FlakyReceiver
    ) -> None:
        """With the endpoint down, runs that were checkpointed while open end up in batch
        files; their checkpoints are removed, so the spool holds each span exactly once and
        the next process delivers each once."""
        first = Agent(
            down_env(endpoint.url, spool),
            *("--runs", "3", "--steps", "2", "--open-for", "1.2", "--wait"),
        )
        agents.append(first)
        first.read_report()
        assert wait_until(lambda: spooled_ids(spool) == first.spans)
        first.kill()
        endpoint.come_back()
        second = Agent(live_env(endpoint.url, spool), "--runs", "0", "--flush")
        agents.append(second)
        report = second.read_report()
        assert (second.finish(), second.stderr) == (0, "")
        assert endpoint.accepted_ids() == first.spans
        assert report["stats"] == counters(exported=len(first.spans), recovered=len(first.spans))
        assert spool_files(spool) == []


class TestDestinations:
    """Each destination (URL and key) has its own folder; a batch only goes where it was meant."""

    def test_folders_per_destination(self, spool: Path) -> None:
        """A run sent with its own key and URL is spooled apart from the default destination's,
        and each folder names its URL, never the key."""
        default = FaultServer(default=Reply(hang=True)).start()
        other = FaultServer(default=Reply(hang=True)).start()
        try:
            with fresh_client():
                tcc.configure(
                    base_url=default.url, api_key=KEY, spool_dir=str(spool), shutdown_timeout=0.5
                )
                record_run()
                with tcc.run(api_key="other-key-456", tcc_url=other.url) as r:
                    r.prompt("to the other destination")
                assert wait_until(lambda: len(spooled_ids(spool)) == 7)
        finally:
            default.stop()
            other.stop()
        assert {
            (folder / "destination").read_text(): len(spooled_ids_in(folder))
            for folder in spool.iterdir()
        } == {f"{default.url}/v1/traces\n": 6, f"{other.url}/v1/traces\n": 1}
        assert not any(
            KEY in path.read_text(errors="replace") or "other-key-456" in path.name
            for path in spool.rglob("*")
            if path.is_file() and not path.name.endswith(SUFFIX)
        )

    def test_released_at_shutdown_and_adopted_again(
        self, spool: Path, endpoint: FlakyReceiver
    ) -> None:
        """What a pipeline could not deliver by shutdown is let go of, and the next
        configuration of the same process (same destination) delivers it once."""
        with fresh_client():
            tcc.configure(
                base_url=endpoint.url, api_key=KEY, spool_dir=str(spool), shutdown_timeout=0.5
            )
            ended = record_run()
            tcc.shutdown()
            assert spooled_ids(spool) == sorted(ended)
            endpoint.come_back()
            tcc.configure(base_url=endpoint.url, api_key=KEY, spool_dir=str(spool))
            assert tcc.flush(HANG_GUARD)
            assert endpoint.accepted_ids() == sorted(ended)
            assert spool_files(spool) == []


class TestRecoveryAtImport:
    """Importing tcc_otel sends what the spool holds, and still reads the configuration at
    first use."""

    def test_configuration_read_after_import(self, spool: Path, endpoint: FlakyReceiver) -> None:
        """A process whose environment at import points at the spool's destination sends the
        spooled spans there; a TCC_BASE_URL it sets after the import (as load_dotenv() would)
        still decides where its own runs go."""
        with fresh_client():
            tcc.configure(
                base_url=endpoint.url, api_key=KEY, spool_dir=str(spool), shutdown_timeout=0.5
            )
            spooled = record_run()
            tcc.shutdown()
        endpoint.come_back()
        code = (
            "import os, sys, tcc_otel as tcc\n"
            "os.environ['TCC_BASE_URL'] = sys.argv[1]\n"
            "with tcc.run(run_id='after-import') as r:\n"
            "    r.prompt('hello')\n"
            "sys.exit(0 if tcc.flush(10) else 3)\n"
        )
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("TCC_", "OTEL_"))}
        with Receiver("127.0.0.1", 0) as later:
            done = subprocess.run(
                [sys.executable, "-c", code, later.url],
                env={
                    **clean,
                    "TCC_BASE_URL": endpoint.url,
                    "TCC_API_KEY": KEY,
                    "TCC_SPOOL_DIR": str(spool),
                },
                capture_output=True,
                text=True,
                timeout=HANG_GUARD,
                check=False,
            )
            assert (done.returncode, done.stderr) == (0, "")
            assert [span.attributes["tcc.runId"] for span in later.spans] == ["after-import"]
        assert endpoint.accepted_ids() == sorted(spooled)
        assert spool_files(spool) == []

    def test_unreadable_spool_directory(self, tmp_path: Path) -> None:
        """TCC_SPOOL_DIR naming a file (or anything unreadable) never breaks the import: the
        application runs; tcc_otel logs what it cannot do."""
        not_a_directory = tmp_path / "spool"
        not_a_directory.write_text("oops")
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("TCC_", "OTEL_"))}
        done = subprocess.run(
            [sys.executable, "-c", "import tcc_otel; print('imported')"],
            env={**clean, "TCC_SPOOL_DIR": str(not_a_directory)},
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
            check=False,
        )
        assert (done.returncode, done.stdout) == (0, "imported\n")

    def test_unusable_spool_directory_at_first_run(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A spool directory that cannot be made costs one error line: the run is recorded and
        sent without a spool, nothing is raised."""
        not_a_directory = tmp_path / "spool"
        not_a_directory.write_text("oops")
        with Receiver("127.0.0.1", 0) as receiver, fresh_client():
            tcc.configure(base_url=receiver.url, spool_dir=str(not_a_directory))
            ended = record_run()
            assert tcc.flush(HANG_GUARD)
            received = sorted((span.trace_id, span.span_id) for span in receiver.spans)
        assert received == sorted(ended)
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1
        assert errors[0].startswith(f"TCC_SPOOL_DIR {not_a_directory} cannot be used")
