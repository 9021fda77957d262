"""Tests for tcc_otel._cli._doctor: ``python -m tcc_otel doctor`` run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _fault_server import FaultServer, Reply, closed_port
from _grpc_server import Answer, GrpcCollector

from tcc_otel._export._offload import default_processes
from tcc_otel._local._server import Receiver

REPO = Path(__file__).resolve().parents[2]
KEY = "dev_abcdef0123456789secret"
"""A key long enough to show its prefix; no part after the prefix may reach the output."""
NAME = "invoke_agent tcc-otel doctor"
ENCODING = f"auto: up to {default_processes()} helper processes; gzip: isal"
"""The encoding row by default: the dev extras install isal (``tcc-otel[fast]``)."""
NO_NETWORK = """\
import os, socket, sys

def _refuse(*args, **kwargs):
    sys.stderr.write("doctor used the network\\n")
    os._exit(97)

socket.socket.connect = _refuse
socket.getaddrinfo = _refuse
"""
"""A ``sitecustomize`` that kills the process with code 97 on any connect or DNS lookup."""
NO_GRPCIO = """
sys.modules["grpc"] = None  # find_spec("grpc") is None and importing it fails
"""


def _doctor(
    env: dict[str, str], *args: str, no_network: Path | None = None, no_grpcio: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tcc_otel doctor`` with only ``env`` (plus the basics) set; with
    ``no_network`` (a directory for the ``sitecustomize``) any network use kills it, and with
    ``no_grpcio`` too, grpcio cannot be found, as where the grpc extra is not installed."""
    paths = [str(REPO)]
    if no_network is not None:
        (no_network / "sitecustomize.py").write_text(NO_NETWORK + (NO_GRPCIO if no_grpcio else ""))
        paths.insert(0, str(no_network))
    full = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(paths),
        "PYTHONIOENCODING": "utf-8",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "tcc_otel", "doctor", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert KEY not in done.stdout
    assert KEY[6:] not in done.stdout
    assert KEY not in done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def _config(endpoint: dict[str, Any], api_key: str | None) -> dict[str, Any]:
    """The ``config`` part for an otherwise default environment."""
    return {
        "endpoint": endpoint,
        "protocol": {"value": "http/protobuf", "source": "default"},
        "exporter": {"value": "tcc", "source": "default"},
        "api_key": {"value": api_key, "source": "TCC_API_KEY"},
        "capture_content": {"value": True, "source": "default"},
        "spool_dir": {"value": None, "source": "default", "pending_spans": None},
        "encoding": {"value": ENCODING, "source": "default"},
        "sdk_disabled": {"value": False, "source": "default"},
        "service_name": {"value": "unknown_service:python", "source": "default"},
    }


class TestAccepted:
    def test_live_receiver_gets_exactly_the_doctor_span(self, tmp_path: Path) -> None:
        """A loopback receiver accepts the one test span; the report says so and exits 0."""
        spool = tmp_path / "spool"
        (spool / "0123456789abcdef").mkdir(parents=True)  # one destination's folder
        (spool / "0123456789abcdef" / "1700000000000000000-4242-b1.0-3.otlp.gz").write_bytes(b"")
        with Receiver(port=0) as receiver:
            done = _doctor(
                {
                    "TCC_API_KEY": KEY,
                    "TCC_BASE_URL": receiver.url,
                    "TCC_CAPTURE_CONTENT": "false",
                    "TCC_SPOOL_DIR": str(spool),
                    "OTEL_SERVICE_NAME": "doctor-test",
                },
                "--json",
            )
            spans = receiver.spans
            headers = receiver.requests[0].headers
        out = _json(done)
        run_id = out["test_span"]["run_id"]
        assert run_id.startswith("doctor-")
        traces = f"{receiver.url}/v1/traces"
        assert out == {
            "config": {
                **_config({"value": traces, "source": "TCC_BASE_URL"}, "dev_ab…"),
                "capture_content": {"value": False, "source": "TCC_CAPTURE_CONTENT"},
                "spool_dir": {"value": str(spool), "source": "TCC_SPOOL_DIR", "pending_spans": 3},
                "service_name": {"value": "doctor-test", "source": "OTEL_SERVICE_NAME"},
            },
            "test_span": {
                "run_id": run_id,
                "name": NAME,
                "sent": True,
                "accepted": True,
                "problem": None,
                "status": 200,
                "attempts": 1,
                "message": f"{traces} accepted it (HTTP 200).",
            },
            "ok": True,
            "instrumentations": [],  # none in the dev venv
            "log": [],
        }
        assert done.returncode == 0
        assert [
            (
                s.name,
                s.kind,
                s.parent_span_id,
                s.status_code,
                s.attributes,
                s.resource["service.name"],
            )
            for s in spans
        ] == [
            (
                NAME,
                "INTERNAL",
                None,
                "OK",
                {
                    "tcc.type": "run",
                    "tcc.runId": run_id,
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": "tcc-otel doctor",
                },
                "doctor-test",
            )
        ]
        assert headers["authorization"] == f"Bearer {KEY}"

    def test_text_output_shows_the_configuration(self) -> None:
        """The text report lists each value with its source and ends with the verdict."""
        with Receiver(port=0) as receiver:
            done = _doctor({"TCC_API_KEY": KEY, "TCC_BASE_URL": receiver.url})
        traces = f"{receiver.url}/v1/traces"
        lines = done.stdout.splitlines()
        run_id = lines[-2].split("tcc.runId=")[1].split(")")[0]
        width = max(len(traces), len(ENCODING))
        assert lines == [
            lines[0],
            "",
            f"  endpoint           {traces:<{width}}  from TCC_BASE_URL",
            f"  protocol           {'http/protobuf':<{width}}  from default",
            f"  exporter           {'tcc':<{width}}  from default",
            f"  API key            {'dev_ab…':<{width}}  from TCC_API_KEY",
            f"  capture content    {'on':<{width}}  from default",
            f"  spool dir          {'not set':<{width}}  from default",
            f"  encoding           {ENCODING:<{width}}  from default",
            f"  OTEL_SDK_DISABLED  {'off':<{width}}  from default",
            f"  service name       {'unknown_service:python':<{width}}  from default",
            "",
            f"test span ({NAME}, tcc.runId={run_id}): ACCEPTED",
            f"  {traces} accepted it (HTTP 200).",
        ]
        assert lines[0].startswith("tcc-otel doctor (tcc-otel ")
        assert done.returncode == 0
        assert KEY not in done.stdout


class TestNotAccepted:
    def test_401_says_the_key_was_rejected(self) -> None:
        """A 401 is reported as a rejected key with the TCC_API_KEY hint, exit 1, key hidden."""
        with FaultServer(default=Reply(401)) as server:
            done = _doctor({"TCC_API_KEY": KEY, "TCC_BASE_URL": server.url}, "--json")
            text = _doctor({"TCC_API_KEY": KEY, "TCC_BASE_URL": server.url})
            span_names = [r.span_names for r in server.requests]
        out = _json(done)
        traces = f"{server.url}/v1/traces"
        message = (
            f"{traces} rejected the key (HTTP 401): check TCC_API_KEY "
            "(a dev_ key belongs to https://dev.thecontext.company)."
        )
        assert out == {
            "config": _config({"value": traces, "source": "TCC_BASE_URL"}, "dev_ab…"),
            "test_span": {
                "run_id": out["test_span"]["run_id"],
                "name": NAME,
                "sent": True,
                "accepted": False,
                "problem": "http_401",
                "status": 401,
                "attempts": 1,
                "message": message,
            },
            "ok": False,
            "instrumentations": [],  # none in the dev venv
            "log": [
                f"WARNING: {traces} refused 1 spans with HTTP 401 (check TCC_API_KEY); "
                "1 spans dropped so far"
            ],
        }
        assert done.returncode == 1
        assert span_names == [(NAME,), (NAME,)]
        assert text.stdout.splitlines()[-2:] == [
            f"test span ({NAME}, tcc.runId={text.stdout.split('tcc.runId=')[1].split(')')[0]})"
            ": NOT ACCEPTED",
            f"  {message}",
        ]
        assert text.returncode == 1
        assert KEY not in text.stdout
        assert KEY[6:] not in text.stdout

    def test_404_suggests_a_wrong_base_url(self) -> None:
        """A 404 is reported as a probably wrong base URL."""
        with FaultServer(default=Reply(404)) as server:
            out = _json(_doctor({"TCC_API_KEY": KEY, "TCC_BASE_URL": server.url}, "--json"))
        traces = f"{server.url}/v1/traces"
        assert (out["test_span"]["problem"], out["test_span"]["message"], out["ok"]) == (
            "http_404",
            f"{traces} answered HTTP 404: wrong base URL? It should be the address that serves "
            "/v1/traces (TCC_BASE_URL is the base, without /v1/traces).",
            False,
        )

    def test_closed_port_is_connection_refused(self) -> None:
        """Nothing listening on the port is reported as connection refused, exit 1."""
        url = f"http://127.0.0.1:{closed_port()}"
        done = _doctor({"TCC_API_KEY": KEY, "TCC_BASE_URL": url}, "--json", "--timeout", "1")
        out = _json(done)
        traces = f"{url}/v1/traces"
        attempts = out["test_span"]["attempts"]
        assert attempts >= 1
        assert {**out, "log": []} == {
            "config": _config({"value": traces, "source": "TCC_BASE_URL"}, "dev_ab…"),
            "test_span": {
                "run_id": out["test_span"]["run_id"],
                "name": NAME,
                "sent": True,
                "accepted": False,
                "problem": "connection_refused",
                "status": None,
                "attempts": attempts,
                "message": (
                    f"connection refused: nothing listens at {traces}. Is the receiver (or "
                    "collector) running, and is the port right?"
                ),
            },
            "ok": False,
            "instrumentations": [],  # none in the dev venv
            "log": [],
        }
        assert done.returncode == 1


class TestNotSent:
    def test_no_key_and_remote_url_sends_nothing(self, tmp_path: Path) -> None:
        """Without a key, the default remote endpoint gets nothing, the report says why, and no
        socket is opened."""
        done = _doctor({}, "--json", no_network=tmp_path)
        out = _json(done)
        traces = "https://api.thecontext.company/v1/traces"
        assert out == {
            "config": _config({"value": traces, "source": "default"}, None),
            "test_span": {
                "run_id": out["test_span"]["run_id"],
                "name": NAME,
                "sent": False,
                "accepted": False,
                "problem": "no_api_key",
                "status": None,
                "attempts": 0,
                "message": (
                    f"TCC_API_KEY is not set, and {traces} is not on this machine, so nothing "
                    "can be sent. Set TCC_API_KEY, or point TCC_BASE_URL at a local receiver "
                    "such as `tcc-otel dev`."
                ),
            },
            "ok": False,
            "instrumentations": [],  # none in the dev venv
            "log": [],
        }
        assert (done.returncode, done.stderr) == (1, "")

    def test_unsafe_base_url_is_refused(self, tmp_path: Path) -> None:
        """A base URL that is neither TCC's nor loopback is refused with how to allow it, and
        nothing is sent."""
        env = {"TCC_API_KEY": KEY, "TCC_BASE_URL": "https://collector.example.com"}
        done = _doctor(env, "--json", no_network=tmp_path)
        out = _json(done)
        refusal = (
            "TCC_BASE_URL 'https://collector.example.com' is not The Context Company's endpoint "
            "nor this machine, so the API key will not be sent there. Use "
            "https://api.thecontext.company, https://dev.thecontext.company or a localhost URL, "
            "or set TCC_ALLOW_UNSAFE_BASE_URL=1 (or configure(allow_unsafe_base_url=True)) if "
            "you trust that host."
        )
        assert out == {
            "config": _config(
                {
                    "value": "https://api.thecontext.company/v1/traces",
                    "source": "default",
                    "note": "TCC_BASE_URL/TCC_FEEDBACK_URL refused, see below",
                },
                "dev_ab…",
            ),
            "test_span": {
                "run_id": out["test_span"]["run_id"],
                "name": NAME,
                "sent": False,
                "accepted": False,
                "problem": "unsafe_url",
                "status": None,
                "attempts": 0,
                "message": refusal
                + " Because of this the API key is not used and nothing is sent.",
            },
            "ok": False,
            "instrumentations": [],  # none in the dev venv
            "log": [f"ERROR: {refusal} Nothing will be sent."],
        }
        assert (done.returncode, done.stderr) == (1, "")


@pytest.mark.parametrize(
    ("key", "shown"),
    [("dev_abcdefghij", "dev_ab…"), ("short_key", "set (too short to show a prefix)")],
)
def test_key_is_masked(key: str, shown: str, tmp_path: Path) -> None:
    """The key shows as its first six characters at most, and not at all when short."""
    env = {"TCC_API_KEY": key, "TCC_BASE_URL": "https://collector.example.com"}
    done = _doctor(env, "--json", no_network=tmp_path)
    assert json.loads(done.stdout)["config"]["api_key"] == {"value": shown, "source": "TCC_API_KEY"}
    assert key not in done.stdout


class TestOtherPaths:
    def test_hanging_endpoint_is_a_timeout(self) -> None:
        """An endpoint that never answers within the budget is reported as a timeout."""
        with FaultServer(default=Reply(hang=True), hang_limit=10.0) as server:
            env = {"TCC_API_KEY": KEY, "TCC_BASE_URL": server.url}
            done = _doctor(env, "--json", "--timeout", "0.5")
        out = _json(done)
        assert (out["test_span"]["sent"], out["test_span"]["problem"], done.returncode) == (
            True,
            "timeout",
            1,
        )

    def test_collector_mode_posts_to_the_otlp_endpoint(self) -> None:
        """With TCC_EXPORTER=otlp the span goes to OTEL_EXPORTER_OTLP_ENDPOINT, without the key."""
        with Receiver(port=0) as receiver:
            env = {
                "TCC_API_KEY": KEY,
                "TCC_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                "OTEL_EXPORTER_OTLP_HEADERS": "x-team=agents",
            }
            done = _doctor(env, "--json")
            names = [s.name for s in receiver.spans]
            headers = receiver.requests[0].headers
        out = _json(done)
        assert out["config"]["endpoint"] == {
            "value": f"{receiver.url}/v1/traces",
            "source": "OTEL_EXPORTER_OTLP_ENDPOINT",
            "note": "headers: x-team",
        }
        assert out["config"]["exporter"] == {"value": "otlp", "source": "TCC_EXPORTER"}
        assert (out["ok"], done.returncode, names) == (True, 0, [NAME])
        assert ("authorization" in headers, headers["x-team"]) == (False, "agents")

    def test_exporter_none_sends_nothing(self, tmp_path: Path) -> None:
        """TCC_EXPORTER=none means tcc_otel sends nothing itself; the report says so."""
        env = {"TCC_API_KEY": KEY, "TCC_EXPORTER": "none"}
        out = _json(_doctor(env, "--json", no_network=tmp_path))
        assert (out["test_span"]["sent"], out["test_span"]["problem"]) == (False, "exporter_none")


class TestGrpc:
    """Collector mode with ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``."""

    @staticmethod
    def _env(endpoint: str, **more: str) -> dict[str, str]:
        return {
            "TCC_API_KEY": KEY,
            "TCC_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            **more,
        }

    def test_accepted_over_grpc(self) -> None:
        """The test span goes over gRPC to the collector, with the headers as metadata and
        without the key; the report names the protocol and where it came from."""
        with GrpcCollector() as server:
            env = self._env(server.endpoint, OTEL_EXPORTER_OTLP_HEADERS="x-team=agents")
            done = _doctor(env, "--json")
            text = _doctor(env)
            calls = server.calls
        out = _json(done)
        run_id = out["test_span"]["run_id"]
        assert out == {
            "config": {
                **_config(
                    {
                        "value": server.endpoint,
                        "source": "OTEL_EXPORTER_OTLP_ENDPOINT",
                        "note": "headers: x-team",
                    },
                    "dev_ab…",
                ),
                "protocol": {"value": "grpc", "source": "OTEL_EXPORTER_OTLP_PROTOCOL"},
                "exporter": {"value": "otlp", "source": "TCC_EXPORTER"},
            },
            "test_span": {
                "run_id": run_id,
                "name": NAME,
                "sent": True,
                "accepted": True,
                "problem": None,
                "status": 0,
                "attempts": 1,
                "message": f"{server.endpoint} accepted it (gRPC OK).",
            },
            "ok": True,
            "instrumentations": [],  # none in the dev venv
            "log": [],
        }
        assert done.returncode == 0
        spans = [
            (one.name, {kv.key: kv.value.string_value for kv in one.attributes})
            for one in calls[0].request.resource_spans[0].scope_spans[0].spans
        ]
        assert spans == [
            (
                NAME,
                {
                    "tcc.type": "run",
                    "tcc.runId": run_id,
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": "tcc-otel doctor",
                },
            )
        ]
        assert [call.metadata.get("x-team") for call in calls] == ["agents", "agents"]
        assert all("authorization" not in call.metadata for call in calls)
        lines = text.stdout.splitlines()
        assert [line.split() for line in lines[2:5]] == [
            [
                "endpoint",
                server.endpoint,
                "from",
                "OTEL_EXPORTER_OTLP_ENDPOINT;",
                "headers:",
                "x-team",
            ],
            ["protocol", "grpc", "from", "OTEL_EXPORTER_OTLP_PROTOCOL"],
            ["exporter", "otlp", "from", "TCC_EXPORTER"],
        ]
        assert lines[-1] == f"  {server.endpoint} accepted it (gRPC OK)."

    @pytest.mark.parametrize(
        ("protocol", "no_grpcio", "refusal"),
        [
            (
                "http/json",
                False,
                "OTEL_EXPORTER_OTLP_PROTOCOL=http/json is not supported by tcc_otel; use "
                "http/protobuf (the default) or grpc.",
            ),
            (
                "grpc",
                True,
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs grpcio: pip install 'tcc-otel[grpc]' "
                "(or set http/protobuf and point the endpoint at the collector's HTTP port, "
                "usually 4318).",
            ),
        ],
    )
    def test_protocol_unsupported(
        self, tmp_path: Path, protocol: str, no_grpcio: bool, refusal: str
    ) -> None:
        """http/json, or grpc without grpcio, is reported as ``protocol_unsupported`` with the
        fix, and nothing is sent: no socket is opened."""
        env = self._env("http://127.0.0.1:4317", OTEL_EXPORTER_OTLP_PROTOCOL=protocol)
        done = _doctor(env, "--json", no_network=tmp_path, no_grpcio=no_grpcio)
        out = _json(done)
        assert out["config"] == {
            **_config(
                {"value": "http://127.0.0.1:4317", "source": "OTEL_EXPORTER_OTLP_ENDPOINT"},
                "dev_ab…",
            ),
            "protocol": {
                "value": protocol,
                "source": "OTEL_EXPORTER_OTLP_PROTOCOL",
                "note": "cannot be used, see below",
            },
            "exporter": {
                "value": "none",
                "source": "TCC_EXPORTER",
                "note": "'otlp', but the protocol cannot be used: nothing is sent",
            },
        }
        assert out["test_span"] == {
            "run_id": out["test_span"]["run_id"],
            "name": NAME,
            "sent": False,
            "accepted": False,
            "problem": "protocol_unsupported",
            "status": None,
            "attempts": 0,
            "message": f"{refusal} Until then tcc_otel sends nothing (never HTTP to what may be "
            "a gRPC port).",
        }
        assert out["log"] == [f"ERROR: {refusal} Nothing will be sent."]
        assert (done.returncode, done.stderr) == (1, "")

    def test_nothing_listening_is_connection_refused(self) -> None:
        """A closed gRPC port is reported as connection refused."""
        endpoint = f"http://127.0.0.1:{closed_port()}"
        out = _json(_doctor(self._env(endpoint), "--json", "--timeout", "1"))
        result = out["test_span"]
        assert (result["sent"], result["problem"], result["status"], result["message"]) == (
            True,
            "connection_refused",
            14,
            f"connection refused: nothing listens at {endpoint}. Is the receiver (or collector) "
            "running, and is the port right?",
        )

    def test_an_http_port_is_not_grpc(self) -> None:
        """gRPC sent to an OTLP/HTTP receiver is explained as the wrong port or protocol."""
        with Receiver(port=0) as receiver:
            out = _json(_doctor(self._env(receiver.url), "--json", "--timeout", "1"))
        assert (out["test_span"]["problem"], out["test_span"]["message"]) == (
            "not_grpc",
            f"{receiver.url} does not speak gRPC: is it the collector's OTLP/HTTP port "
            "(usually 4318)? Use its gRPC port (usually 4317), or set "
            "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf.",
        )

    def test_unauthenticated_points_at_the_headers(self) -> None:
        """UNAUTHENTICATED is reported with the headers to check, exit 1."""
        with GrpcCollector(default=Answer("UNAUTHENTICATED")) as server:
            done = _doctor(self._env(server.endpoint), "--json")
        out = _json(done)
        assert out["test_span"] | {"run_id": None} == {
            "run_id": None,
            "name": NAME,
            "sent": True,
            "accepted": False,
            "problem": "grpc_unauthenticated",
            "status": 16,
            "attempts": 1,
            "message": f"{server.endpoint} refused the credentials (gRPC UNAUTHENTICATED): "
            "check the headers in OTEL_EXPORTER_OTLP_HEADERS.",
        }
        assert out["log"] == [
            f"WARNING: {server.endpoint} refused 1 spans with gRPC UNAUTHENTICATED (check the "
            "headers in OTEL_EXPORTER_OTLP_HEADERS); 1 spans dropped so far"
        ]
        assert done.returncode == 1
