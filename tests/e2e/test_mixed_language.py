"""Mixed-language, one trace: examples/mixed-language run for real, as three processes.

A Node front (its own OpenTelemetry SDK) calls the Python agent (tcc_otel) over HTTP; the
agent's run continues the front's trace and calls a Node tool service with ``tcc.inject()``
headers. All three export OTLP/HTTP to one loopback receiver, and the spans must form one trace
with the right parent links across the processes and ``tcc.runId`` on every span of the run.

Needs ``node`` and ``npm`` (``npm ci`` runs once when node_modules is missing or stale); the
module is skipped, saying so, only when they are not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Optional

import pytest

from tcc_otel._local._model import ReceivedSpan
from tcc_otel._local._server import Receiver

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mixed-language"
NODE = shutil.which("node")
NPM = shutil.which("npm")

pytestmark = pytest.mark.skipif(
    NODE is None or NPM is None,
    reason="node and npm are not installed: the mixed-language example needs Node 20+ and npm",
)

# Hang guards only: each is far above what the step takes, and none is asserted on.
NPM_CI_TIMEOUT = 240.0
LISTEN_TIMEOUT = 20.0
FRONT_TIMEOUT = 60.0
SPANS_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

SPANS = 6
"""front: POST /chat; agent: the run, two steps, the tool call; tool: GET /weather."""
MESSAGE = "What is the weather in Paris?"
_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:(\d+))")

Label = Optional[tuple[str, str]]
"""(service.name, span name) of a span, or ``None`` for no span."""


def ensure_node_modules() -> None:
    """Run ``npm ci`` in the example unless node_modules matches package-lock.json already."""
    installed = EXAMPLE / "node_modules" / ".package-lock.json"  # npm writes it on install
    lock = EXAMPLE / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    assert NPM is not None
    result = subprocess.run(
        [NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=NPM_CI_TIMEOUT,
        env={**os.environ, "npm_config_update_notifier": "false"},
    )
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"


class Service:
    """A server of the example as a subprocess on 127.0.0.1: started, waited for, stopped.

    Output goes to files, not pipes, so a chatty process can never block on a full pipe.
    """

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self._stdout_path = logs / f"{name}.stdout"
        self._stderr_path = logs / f"{name}.stderr"
        self._stdout: IO[bytes] = self._stdout_path.open("wb")
        self._stderr: IO[bytes] = self._stderr_path.open("wb")
        self.process = subprocess.Popen(
            argv, cwd=EXAMPLE, env=env, stdout=self._stdout, stderr=self._stderr
        )

    def wait_listening(self, timeout: float = LISTEN_TIMEOUT) -> str:
        """The base URL the service printed once it listens; fails if it exits or hangs."""
        deadline = time.monotonic() + timeout
        while True:
            found = _LISTENING.search(self._stdout_path.read_text(errors="replace"))
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited ({self.process.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} did not listen within {timeout} s:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        """What the process wrote so far, for failure messages."""
        out = self._stdout_path.read_text(errors="replace")
        err = self._stderr_path.read_text(errors="replace")
        return f"--- {self.name} stdout\n{out}--- {self.name} stderr\n{err}"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        self._stdout.close()
        self._stderr.close()


class Outcome:
    """What one request through the three processes produced."""

    def __init__(self, answer: dict[str, str], spans: list[ReceivedSpan]) -> None:
        self.answer = answer
        self.run_id = answer["run_id"]
        self.spans = spans
        self._by_id = {span.span_id: span for span in spans}

    def label(self, span: ReceivedSpan) -> tuple[str, str]:
        """(service.name, name) of ``span``."""
        return str(span.resource.get("service.name")), span.name

    def parent(self, span: ReceivedSpan) -> Label | str:
        """The parent's label, ``None`` for a root, or a note that the parent never arrived."""
        if span.parent_span_id is None:
            return None
        found = self._by_id.get(span.parent_span_id)
        return f"missing span {span.parent_span_id}" if found is None else self.label(found)

    def one(self, service: str, name: str) -> ReceivedSpan:
        """The only span named ``name`` sent by ``service``."""
        found = [span for span in self.spans if self.label(span) == (service, name)]
        assert len(found) == 1, f"expected one {service} {name!r} span, got {len(found)}"
        return found[0]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    """Start the tool service and the agent, send one chat through front.js, collect spans."""
    assert NODE is not None
    ensure_node_modules()
    logs = tmp_path_factory.mktemp("mixed-language")
    services: list[Service] = []
    with Receiver(port=0) as receiver:
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1,localhost"]))
        env = {
            **os.environ,
            "TCC_BASE_URL": receiver.url,  # the agent (loopback: no key needed)
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,  # the Node services
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }
        env.pop("TCC_API_KEY", None)
        try:
            tool = Service("tool", [NODE, "tool.js"], {**env, "TOOL_PORT": "0"}, logs)
            services.append(tool)
            tool_url = tool.wait_listening()
            agent_argv = [sys.executable, "agent_server.py", "--port", "0"]
            agent_argv += ["--tool-url", f"{tool_url}/weather"]
            agent = Service("agent", agent_argv, env, logs)
            services.append(agent)
            agent_url = agent.wait_listening()
            front = subprocess.run(
                [NODE, "front.js", MESSAGE],
                cwd=EXAMPLE,
                env={**env, "AGENT_URL": f"{agent_url}/chat"},
                capture_output=True,
                text=True,
                timeout=FRONT_TIMEOUT,
            )
            outputs = "".join(service.output() for service in services)
            assert front.returncode == 0, f"front.js failed:\n{front.stderr}\n{outputs}"
            # Each process delivers its spans before it answers (or exits), so they are here
            # already; the wait only guards against a hang.
            arrived = receiver.wait_for_spans(SPANS, timeout=SPANS_TIMEOUT)
            assert arrived, f"{len(receiver.spans)} of {SPANS} spans arrived:\n{outputs}"
            yield Outcome(json.loads(front.stdout), receiver.spans)
        finally:
            for service in reversed(services):
                service.stop()


class TestMixedLanguage:
    def test_one_trace(self, outcome: Outcome) -> None:
        """Every span of the three processes carries the front's trace id."""
        front = outcome.one("front", "POST /chat")
        assert {span.trace_id for span in outcome.spans} == {front.trace_id}

    def test_parent_links_cross_processes(self, outcome: Outcome) -> None:
        """The run nests under the front's request span, the run's steps and tool call under
        the run, and the tool service's request span under the tool call that made it."""
        tree = sorted(
            (outcome.label(span), span.kind, outcome.parent(span)) for span in outcome.spans
        )
        run = ("agent", "invoke_agent weather")
        assert tree == [
            (("agent", "chat gpt-4o"), "CLIENT", run),
            (("agent", "chat gpt-4o"), "CLIENT", run),
            (("agent", "execute_tool get_weather"), "INTERNAL", run),
            (run, "INTERNAL", ("front", "POST /chat")),
            (("front", "POST /chat"), "SERVER", None),
            (("tool", "GET /weather"), "SERVER", ("agent", "execute_tool get_weather")),
        ]

    def test_run_id_on_every_span_of_the_run(self, outcome: Outcome) -> None:
        """``tcc.runId`` is the answered run id on the agent's records and on the Node tool
        span (from the baggage), and absent on the front's span, which is outside the run."""
        stamped = sorted(
            (*outcome.label(span), span.attributes.get("tcc.runId")) for span in outcome.spans
        )
        run_id = outcome.run_id
        assert stamped == [
            ("agent", "chat gpt-4o", run_id),
            ("agent", "chat gpt-4o", run_id),
            ("agent", "execute_tool get_weather", run_id),
            ("agent", "invoke_agent weather", run_id),
            ("front", "POST /chat", None),
            ("tool", "GET /weather", run_id),
        ]

    def test_tool_span_attributes(self, outcome: Outcome) -> None:
        """The tool service's span has its HTTP attributes and the run id, nothing else."""
        tool = outcome.one("tool", "GET /weather")
        assert tool.attributes == {
            "http.request.method": "GET",
            "url.path": "/weather",
            "http.response.status_code": 200,
            "tcc.runId": outcome.run_id,
        }

    def test_tool_result_reaches_the_run(self, outcome: Outcome) -> None:
        """The agent records the tool service's answer on the tool call and in its reply."""
        call = outcome.one("agent", "execute_tool get_weather")
        result = {"city": "Paris", "temperature_c": 18, "conditions": "sunny"}
        assert json.loads(call.attributes["tcc.tool_call.result"]) == result
        assert outcome.answer["answer"] == "It is 18 °C and sunny in Paris."

    def test_services_named(self, outcome: Outcome) -> None:
        """Each process reports its own service.name: front, agent and tool."""
        names = sorted(str(span.resource.get("service.name")) for span in outcome.spans)
        assert names == ["agent", "agent", "agent", "agent", "front", "tool"]
