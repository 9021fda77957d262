"""``tcc-otel spool``: what waits in the spool directory, per destination, and ``--send``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.clients import fresh_client
from helpers.delivery import HANG_GUARD, SPANS_PER_RUN, FlakyReceiver, flaky_receiver, record_run

import tcc_otel as tcc
from tcc_otel._cli import main

KEY = "test-key-123"
SPANS = 2 * SPANS_PER_RUN
"""Spans the ``spool`` fixture leaves on disk."""


@pytest.fixture
def endpoint() -> Iterator[FlakyReceiver]:
    """Down until ``come_back()``, then a loopback receiver on the same port."""
    with flaky_receiver(up=False) as flaky:
        yield flaky


@pytest.fixture
def spool(tmp_path: Path, endpoint: FlakyReceiver, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A spool directory holding two runs' spans that a shut-down client could not deliver
    (its endpoint was down) and let go of; the environment points at that endpoint."""
    directory = tmp_path / "spool"
    with fresh_client():
        tcc.configure(
            base_url=endpoint.url, api_key=KEY, spool_dir=str(directory), shutdown_timeout=0.5
        )
        record_run(0)
        record_run(1)
        tcc.shutdown()
    monkeypatch.setenv("TCC_BASE_URL", endpoint.url)
    monkeypatch.setenv("TCC_API_KEY", KEY)
    return directory


def run_command(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``tcc-otel spool ARGS`` in this process: exit code and standard output."""
    code = main(["spool", *args])
    return code, capsys.readouterr().out


class TestShow:
    """Without --send the command only reads the directory."""

    def test_text(
        self, spool: Path, endpoint: FlakyReceiver, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """It names the directory and the destination (marked as this configuration's), with
        what waits there and who owns it, and suggests --send; nothing is sent."""
        endpoint.come_back()
        code, out = run_command(capsys, "--dir", str(spool))
        lines = out.splitlines()
        assert code == 0
        assert lines[:2] == [
            f"tcc-otel spool: {spool}",
            f"  {endpoint.url}/v1/traces  (this configuration)",
        ]
        assert lines[2].startswith(
            f"    1 file, {SPANS} spans ({SPANS} no running process owns); oldest "
        )
        assert lines[2].endswith("files by owner: released: 1")
        assert lines[3:] == ["send them now with: tcc-otel spool --send"]
        assert endpoint.accepted_ids() == []

    def test_json(
        self, spool: Path, endpoint: FlakyReceiver, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--json gives the same facts as one object."""
        code, out = run_command(capsys, "--dir", str(spool), "--json")
        report = json.loads(out)
        [folder] = report["destinations"]
        assert code == 0
        assert (report["directory"], report["sent"]) == (str(spool), None)
        assert {k: v for k, v in folder.items() if k not in ("id", "oldest_age_s")} == {
            "url": f"{endpoint.url}/v1/traces",
            "this_configuration": True,
            "files": 1,
            "spans": SPANS,
            "sendable_spans": SPANS,
            "owners": {"released": 1},
        }

    def test_no_directory(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without --dir or TCC_SPOOL_DIR it says what to do and exits 2."""
        monkeypatch.delenv("TCC_SPOOL_DIR", raising=False)
        assert run_command(
            capsys,
        ) == (
            2,
            "tcc-otel spool: no spool directory: pass --dir or set TCC_SPOOL_DIR\n",
        )

    def test_command_does_not_send_at_import(self, spool: Path, endpoint: FlakyReceiver) -> None:
        """The installed command, with TCC_SPOOL_DIR set, leaves the spool alone: an
        application importing tcc_otel would send it, the command only shows it."""
        endpoint.come_back()
        command = Path(sys.executable).parent / "tcc-otel"
        completed = subprocess.run(
            [str(command), "spool"],
            env={**os.environ, "TCC_SPOOL_DIR": str(spool)},
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        assert "send them now with: tcc-otel spool --send" in completed.stdout
        assert endpoint.accepted_ids() == []


class TestSend:
    """--send delivers what no running process owns, with the current configuration."""

    def test_delivers_everything_once(
        self, spool: Path, endpoint: FlakyReceiver, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With the endpoint back, every spooled span is delivered once and the folder is
        empty; exit code 0."""
        endpoint.come_back()
        code, out = run_command(capsys, "--dir", str(spool), "--send")
        assert code == 0
        assert len(set(endpoint.accepted_ids())) == len(endpoint.accepted_ids()) == SPANS
        assert out.splitlines()[2:] == [
            "    nothing waiting",
            f"sent: {SPANS} of {SPANS} spans delivered; 0 still waiting for a later attempt",
        ]

    def test_endpoint_still_down(
        self, spool: Path, endpoint: FlakyReceiver, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With the endpoint still down, nothing is lost: the spans stay for a later attempt
        and the exit code is 1."""
        code, out = run_command(capsys, "--dir", str(spool), "--send", "--timeout", "1")
        assert code == 1
        assert out.splitlines()[-1] == (
            f"sent: 0 of {SPANS} spans delivered; {SPANS} still waiting for a later attempt"
        )
        endpoint.come_back()
        assert run_command(capsys, "--dir", str(spool), "--send")[0] == 0
        assert len(set(endpoint.accepted_ids())) == len(endpoint.accepted_ids()) == SPANS
