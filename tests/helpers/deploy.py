"""What the deployment suites share: subprocesses with a clean environment, each leading its own
process group that teardown kills; waits bounded by hang guards; the ledger the scripts write;
exactly-once counting of what a loopback receiver kept (duplicates included)."""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers.delivery import wait_until
from tcc_otel._local._model import ReceivedSpan
from tcc_otel._local._server import Receiver

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
"""tests/scripts: the deployment scripts, importable by every subprocess (``PYTHONPATH``)."""
HANG_GUARD = 60.0
"""Seconds after which a process or a wait that should end is considered hung; never a bound."""
LEDGER_ENV = "DEPLOY_LEDGER"
"""Tells a script where its ledger goes (tests/scripts/deploy_ledger.py)."""
RUN_ID = "tcc.runId"
"""The attribute naming a span's run."""

SpanId = tuple[str, str]
"""``(trace_id, span_id)`` in lower-case hex, as ``ReceivedSpan`` spells them."""


# --- subprocesses ---------------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ``TCC_*``/``OTEL_*`` name (so neither outside
    configuration nor ``TCC_OTEL_RAISE_INTERNAL_ERRORS`` leaks in), unbuffered, with the scripts
    directory importable and faulthandler on (a hung process shows its stacks), plus ``extra``."""
    env = {
        name: value for name, value in os.environ.items() if not name.startswith(("TCC_", "OTEL_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SCRIPTS), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@dataclass
class Started:
    """A subprocess (the leader of its own process group) and the files its output goes to."""

    name: str
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        """Its pid, which is also its process group id."""
        return self.proc.pid

    def stdout(self) -> str:
        """What it wrote on stdout so far."""
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        """What it wrote on stderr so far."""
        return self.err.read_text(errors="replace")

    def describe(self) -> str:
        """Its name, pid, exit status and the end of its stderr, for a failure message."""
        tail = "\n".join(self.stderr().splitlines()[-30:])
        return (
            f"{self.name} (pid {self.pid}, returncode {self.proc.returncode}); stderr ends:\n{tail}"
        )


class Processes:
    """The subprocesses of one test; ``kill_all()`` SIGKILLs every process group still alive,
    so the workers and forked children of a process go with it."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._started: list[Started] = []

    def start(
        self, name: str, args: list[str], env: dict[str, str], *, cwd: Path | None = None
    ) -> Started:
        """Start ``args`` in a new session, stdout and stderr going to files named after it."""
        out = self._directory / f"{name}.out"
        err = self._directory / f"{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                args,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        started = Started(name, proc, out, err)
        self._started.append(started)
        return started

    def python(self, name: str, script: str, *args: str, env: dict[str, str]) -> Started:
        """Start ``tests/scripts/<script>`` with this interpreter."""
        return self.start(name, [sys.executable, str(SCRIPTS / script), *args], env)

    def kill_all(self) -> None:
        """SIGKILL every group started, and reap the leaders."""
        for started in self._started:
            kill_group(started.pid)
            with suppress(subprocess.TimeoutExpired):  # SIGKILL cannot be ignored: only a guard
                started.proc.wait(timeout=10.0)


@contextmanager
def processes(directory: Path) -> Iterator[Processes]:
    """``Processes`` whose groups are all killed on exit, passed or failed."""
    running = Processes(directory)
    try:
        yield running
    finally:
        running.kill_all()


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A loopback OTLP/HTTP receiver on a free port that keeps every span, duplicates too."""
    with Receiver("127.0.0.1", 0) as receiver:
        yield receiver


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to a process group; nothing if the group is gone."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def finish(started: Started, guard: float = HANG_GUARD) -> int:
    """Wait for ``started`` to exit and return its returncode; fail if it hangs past ``guard``,
    showing where each process of its group is stuck."""
    __tracebackhide__ = True
    try:
        return started.proc.wait(timeout=guard)
    except subprocess.TimeoutExpired:
        pass
    pytest.fail(f"HANG: {started.name} still running {guard:.0f} s later\n{hang_report(started)}")


def hang_report(started: Started) -> str:
    """Make every live process of ``started``'s group print its Python stacks (SIGABRT, which
    faulthandler reports: ``child_env`` turns it on), kill the group, and return what they are
    and their stderr."""
    alive = group_members(started.pid)
    lines = [f"{pid}: {_cmdline(pid)}" for pid in alive]
    for pid in alive:  # one at a time, so the stacks do not interleave
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGABRT)
        wait_until(functools.partial(_gone, pid, started.pid), 5.0)
    kill_group(started.pid)
    with suppress(subprocess.TimeoutExpired):
        started.proc.wait(timeout=10.0)
    tail = "\n".join(started.stderr().splitlines()[-200:])
    return "\n".join(["live processes (killed):", *lines, f"stderr of {started.name} ends:", tail])


def _gone(pid: int, pgid: int) -> bool:
    return pid not in group_members(pgid)


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "(gone)"


def group_members(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes of the process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def wait_group_gone(started: Started, guard: float = HANG_GUARD) -> None:
    """Wait until no process of ``started``'s group is alive; fail showing those left."""
    __tracebackhide__ = True
    if not wait_until(lambda: not group_members(started.pid), guard):
        pytest.fail(
            f"HANG: {started.name} exited but its group is alive {guard:.0f} s later\n"
            f"{hang_report(started)}"
        )


def wait_for(
    condition: Callable[[], bool], what: str, started: Started, guard: float = HANG_GUARD
) -> None:
    """Wait until ``condition`` holds while ``started`` runs; fail at once if it exits first,
    and as hung after ``guard`` seconds."""
    __tracebackhide__ = True

    def done() -> bool:
        return condition() or started.proc.poll() is not None

    if not wait_until(done, guard):
        pytest.fail(f"hung: {what} not within {guard:.0f} s: {started.describe()}")
    if not condition():
        pytest.fail(f"{started.name} exited before {what}: {started.describe()}")


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except OSError:
        return False
    return True


# --- the ledger -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerRun:
    """One ended run, as the process that recorded it wrote it down."""

    run_id: str
    index: int
    pid: int
    spans: tuple[SpanId, ...]
    """Its span ids, the run's span last."""
    ended: float
    """``time.monotonic()`` in that process right after the run ended."""


def read_ledger(directory: Path) -> list[LedgerRun]:
    """Every run of every ``<pid>.jsonl`` ledger file in ``directory``, in the order ended."""
    runs = [
        LedgerRun(
            line["run_id"],
            line["index"],
            line["pid"],
            tuple((trace_id, span_id) for trace_id, span_id in line["spans"]),
            line["ended"],
        )
        for path in directory.glob("*.jsonl")
        for line in map(json.loads, path.read_text().splitlines())
    ]
    return sorted(runs, key=lambda run: run.ended)


def read_json(path: Path) -> Any:
    """The JSON value a script wrote to ``path``."""
    return json.loads(path.read_text())


def spans_of(runs: Iterable[LedgerRun]) -> dict[SpanId, str]:
    """Span id to run id, for every span of ``runs``; fails if two runs share a span id."""
    expected: dict[SpanId, str] = {}
    for run in runs:
        for ids in run.spans:
            assert ids not in expected, f"span {ids} listed by {expected[ids]} and {run.run_id}"
            expected[ids] = run.run_id
    return expected


# --- exactly once ---------------------------------------------------------------------------


def run_id_of(span: ReceivedSpan) -> str:
    """The span's ``tcc.runId``; empty if it has none."""
    return str(span.attributes.get(RUN_ID, ""))


def delivery_problems(
    received: Iterable[ReceivedSpan],
    required: Mapping[SpanId, str],
    *,
    tolerated: Callable[[ReceivedSpan], bool] = lambda span: False,
) -> list[str]:
    """What is wrong with ``received`` against ``required`` (span id to run id): every required
    span exactly once, any other span only where ``tolerated`` and at most once, nothing else.
    An empty list means delivered exactly once."""
    spans = list(received)
    counts = Counter((span.trace_id, span.span_id) for span in spans)
    run_of = {(span.trace_id, span.span_id): run_id_of(span) for span in spans}
    problems: list[str] = []
    duplicated = {ids: n for ids, n in counts.items() if n > 1}
    if duplicated:
        runs = {run_of[ids] for ids in duplicated}
        problems.append(
            f"DUPLICATES: {len(duplicated)} spans arrived more than once "
            f"({sum(duplicated.values()) - len(duplicated)} extra copies, up to "
            f"{max(duplicated.values())} of one), from {len(runs)} runs: {_sample(runs)}"
        )
    missing = [ids for ids in required if ids not in counts]
    if missing:
        runs = {required[ids] for ids in missing}
        problems.append(
            f"MISSING: {len(missing)} of {len(required)} spans never arrived, from {len(runs)} "
            f"runs: {_sample(runs)}"
        )
    unexpected = [
        span
        for ids, span in {(s.trace_id, s.span_id): s for s in spans}.items()
        if ids not in required and not tolerated(span)
    ]
    if unexpected:
        runs = {run_id_of(span) for span in unexpected}
        problems.append(
            f"UNEXPECTED: {len(unexpected)} spans nobody expected, from runs {_sample(runs)}"
        )
    if problems:
        problems.insert(0, f"{len(spans)} spans received ({len(counts)} distinct)")
    return problems


def assert_exactly_once(
    received: Iterable[ReceivedSpan],
    required: Mapping[SpanId, str],
    *,
    tolerated: Callable[[ReceivedSpan], bool] = lambda span: False,
) -> None:
    """Fail unless ``received`` holds each ``required`` span once and nothing else (but spans
    ``tolerated``, each at most once)."""
    __tracebackhide__ = True
    problems = delivery_problems(received, required, tolerated=tolerated)
    if problems:
        pytest.fail("\n".join(problems))


def _sample(run_ids: Iterable[str], limit: int = 8) -> str:
    """The first ``limit`` run ids in natural order (``run-2`` before ``run-10``)."""
    ordered = sorted(
        run_ids,
        key=lambda run_id: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", run_id)],
    )
    shown = ", ".join(ordered[:limit])
    return shown + (f", ... ({len(ordered) - limit} more)" if len(ordered) > limit else "")
