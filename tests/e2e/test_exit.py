"""A user's program at exit: pending spans are delivered, and a bad endpoint never breaks exit.

Each test runs tests/scripts/agent.py in a fresh interpreter, configured by the environment only,
and looks at its exit code, its output and what the loopback endpoint received.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _fault_server import FaultServer, Reply, closed_port

from tcc_otel._local._server import Receiver

AGENT = Path(__file__).resolve().parents[1] / "scripts" / "agent.py"
HANG_GUARD = 20.0
"""Seconds after which the agent is considered hung (a guard, not a performance bound)."""
KEY = "tcc_live_4f9a8b7c6d5e4f3a2b1c"
"""An API key shaped so that no generic redaction pattern would hide it: only our care does."""
SPAN_NAMES = ["chat", "chat gpt-4o", "execute_tool get_weather", "invoke_agent"]
"""The spans of the agent's one run, sorted."""


class Agent:
    """The result of one run of the agent script."""

    def __init__(self, completed: subprocess.CompletedProcess[str]) -> None:
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr

    @property
    def run_id(self) -> str:
        """The run id the agent printed."""
        return str(json.loads(self.stdout.splitlines()[0])["run_id"])

    def log_lines(self) -> list[str]:
        """Lines the agent's logging printed for logger ``tcc_otel``."""
        return [line for line in self.stderr.splitlines() if line.startswith("tcc_otel ")]


def run_agent(env: dict[str, str], *args: str) -> Agent:
    """Run the agent with ``env`` added to a clean environment (no TCC_*/OTEL_* inherited).

    Raises:
        subprocess.TimeoutExpired: the agent ran past the hang guard.
    """
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TCC_", "OTEL_"))  # also drops TCC_OTEL_RAISE_INTERNAL_ERRORS
    }
    completed = subprocess.run(
        [sys.executable, str(AGENT), *args],
        env={**clean, "PYTHONUNBUFFERED": "1", **env},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    return Agent(completed)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback OTLP/HTTP receiver on a free port, stopped in teardown."""
    with Receiver("127.0.0.1", 0) as running:
        yield running


class TestExitFlush:
    """Spans pending when the program ends are sent without flush() or shutdown()."""

    def test_every_span_arrives(self, receiver: Receiver) -> None:
        """A program that never flushes still delivers its whole run before it exits."""
        agent = run_agent({"TCC_BASE_URL": receiver.url, "TCC_API_KEY": KEY})
        assert (agent.returncode, agent.stderr) == (0, "")
        spans = receiver.spans
        assert sorted(span.name for span in spans) == SPAN_NAMES
        assert {(span.attributes["tcc.runId"], span.trace_id) for span in spans} == {
            (agent.run_id, spans[0].trace_id)
        }
        assert {request.headers.get("authorization") for request in receiver.requests} == {
            f"Bearer {KEY}"
        }

    def test_after_a_crash(self, receiver: Receiver) -> None:
        """A program that dies of an uncaught exception still delivers its ended run."""
        agent = run_agent({"TCC_BASE_URL": receiver.url}, "--crash")
        assert agent.returncode == 1
        assert agent.stderr.count("Traceback") == 1
        assert "RuntimeError: the agent crashed after its run" in agent.stderr
        assert sorted(span.name for span in receiver.spans) == SPAN_NAMES

    def test_sdk_disabled(self, receiver: Receiver) -> None:
        """With OTEL_SDK_DISABLED=true nothing is sent and nothing is logged."""
        agent = run_agent(
            {"TCC_BASE_URL": receiver.url, "TCC_API_KEY": KEY, "OTEL_SDK_DISABLED": "true"}
        )
        assert (agent.returncode, agent.stderr, receiver.requests) == (0, "", [])


class TestBadEndpoint:
    """A dead, hanging or refusing endpoint costs a warning, never a traceback or a hang."""

    def test_dead_endpoint(self) -> None:
        """With nothing listening, the program exits 0 before the hang guard, with a warning
        from tcc_otel and no traceback."""
        agent = run_agent({"TCC_BASE_URL": f"http://127.0.0.1:{closed_port()}", "TCC_API_KEY": KEY})
        assert agent.returncode == 0
        assert "Traceback" not in agent.stderr
        lines = agent.log_lines()
        assert lines
        assert all(line.startswith("tcc_otel WARNING ") for line in lines)
        assert any("4 spans dropped" in line for line in lines)
        assert KEY not in agent.stderr

    def test_hanging_endpoint(self) -> None:
        """With an endpoint that never answers and TCC_SHUTDOWN_TIMEOUT=1, the program exits 0
        before the hang guard and logs how many spans were not delivered."""
        with FaultServer(default=Reply(hang=True)) as hanging:
            agent = run_agent(
                {"TCC_BASE_URL": hanging.url, "TCC_API_KEY": KEY, "TCC_SHUTDOWN_TIMEOUT": "1"}
            )
        assert agent.returncode == 0
        assert "Traceback" not in agent.stderr
        lines = agent.log_lines()
        assert any(
            re.search(r"\b4 spans (were not delivered|dropped)\b", line) for line in lines
        ), lines

    def test_no_key_default_url(self) -> None:
        """Without a key or base URL, the program exits 0 after one warning that nothing is
        sent, and opens no connection at all."""
        agent = run_agent({}, "--forbid-network")
        assert agent.returncode == 0
        assert "NETWORK USED" not in agent.stderr
        [line] = agent.stderr.splitlines()
        assert line.startswith(
            "tcc_otel WARNING TCC_API_KEY is not set: runs are recorded as spans but not sent to "
            "The Context Company."
        )

    @pytest.mark.parametrize("status", [401, 500])
    def test_key_never_printed(self, status: int) -> None:
        """With TCC_DEBUG=1 and an endpoint refusing spans and feedback, the failures are
        logged but the API key appears nowhere in the output."""
        with FaultServer(default=Reply(status)) as refusing:
            agent = run_agent(
                {"TCC_BASE_URL": refusing.url, "TCC_API_KEY": KEY, "TCC_DEBUG": "1"},
                "--feedback",
            )
        assert agent.returncode == 0
        assert sorted(request.path for request in refusing.requests) == [
            "/v1/feedback",
            "/v1/traces",
        ]
        assert {request.headers.get("authorization") for request in refusing.requests} == {
            f"Bearer {KEY}"
        }
        output = agent.stdout + agent.stderr
        assert KEY not in output
        assert "Traceback" not in output
        lines = agent.log_lines()
        assert any(f"HTTP {status}" in line and "/v1/traces" in line for line in lines), lines
        assert any(f"HTTP {status}" in line and "/v1/feedback" in line for line in lines), lines


class TestDebug:
    """``TCC_DEBUG=1`` in an application that configured logging itself."""

    def test_each_line_once(self) -> None:
        """Each tcc_otel message is printed once, through the application's own handler, as
        enable_debug() adds a handler only when the application set none."""
        with FaultServer(default=Reply(401)) as refusing:
            agent = run_agent({"TCC_BASE_URL": refusing.url, "TCC_API_KEY": KEY, "TCC_DEBUG": "1"})
        assert agent.returncode == 0
        refused = [line for line in agent.stderr.splitlines() if "refused 4 spans" in line]
        assert refused == [
            f"tcc_otel WARNING {refusing.url}/v1/traces refused 4 spans with HTTP 401 "
            "(check TCC_API_KEY); 4 spans dropped so far"
        ]
