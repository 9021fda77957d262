"""Fixtures of the deployment suites: a receiver that keeps duplicates, subprocesses killed in
teardown, and the directory their ledgers go to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.deploy import Processes, processes, receiving

from tcc_otel._local._server import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback receiver keeping every span, duplicates included."""
    with receiving() as running:
        yield running


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """Subprocesses of the test; every process group is killed in teardown."""
    with processes(tmp_path) as running:
        yield running


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """The directory the scripts write their ledgers and reports to."""
    directory = tmp_path / "ledger"
    directory.mkdir()
    return directory
