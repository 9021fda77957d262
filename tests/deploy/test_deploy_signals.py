"""Signals that end a process: SIGTERM (what Kubernetes, systemd and ``docker stop`` send) and
SIGKILL with a spool. What ended before the signal reaches the receiver exactly once, the exit
status stays the signal's (or the application handler's), and an application's own SIGTERM
handler is never replaced.

The spans a loopback receiver kept (duplicates included) are compared with the ledger of runs
the process wrote down as they ended (tests/scripts/deploy_signals.py, deploy_spool.py).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _fault_server import closed_port
from helpers.deploy import (
    LEDGER_ENV,
    LedgerRun,
    Processes,
    Started,
    assert_exactly_once,
    child_env,
    delivery_problems,
    finish,
    read_json,
    read_ledger,
    run_id_of,
    spans_of,
    wait_for,
)

from tcc_otel._local._server import Receiver

SHUTDOWN_TIMEOUT = 5.0
"""``TCC_SHUTDOWN_TIMEOUT`` of the SIGTERM tests."""
EXIT_BOUND = SHUTDOWN_TIMEOUT + 1.0
"""Issue 9: after SIGTERM the process is gone within TCC_SHUTDOWN_TIMEOUT + 1 s."""
LOOP_RUNS = 3000
"""Runs the tight loop has ended when it gets SIGTERM."""
RECORDING = 3.0
"""Seconds the paced recorder runs before SIGKILL."""
SAFE_AGE = 1.5
"""A run that ended this many seconds before SIGKILL must have been spooled."""


def ledger_lines(ledger: Path) -> int:
    """Runs written to the ledger so far."""
    return sum(path.read_bytes().count(b"\n") for path in ledger.glob("*.jsonl"))


def contiguous(runs: list[LedgerRun], prefix: str) -> None:
    """The ledger lists ``<prefix>0`` .. ``<prefix>N-1`` in order: the script's own sanity."""
    assert [run.run_id for run in runs] == [f"{prefix}{i}" for i in range(len(runs))]


def start_signals(
    procs: Processes, mode: str, receiver: Receiver, ledger: Path, **env: str
) -> Started:
    """Start tests/scripts/deploy_signals.py in ``mode``."""
    return procs.python(
        mode,
        "deploy_signals.py",
        mode,
        env=child_env(
            TCC_BASE_URL=receiver.url,
            TCC_SHUTDOWN_TIMEOUT=f"{SHUTDOWN_TIMEOUT:g}",
            **{LEDGER_ENV: str(ledger)},
            **env,
        ),
    )


def ready(started: Started, ledger: Path) -> str:
    """Wait for the script's ``ready.json``; return SIGTERM's disposition it reported."""
    path = ledger / "ready.json"
    wait_for(path.exists, "ready.json", started)
    return str(read_json(path)["disposition"])


def test_tight_loop_gets_sigterm(
    receiver: Receiver,
    procs: Processes,
    ledger: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """A loop that ended a few thousand runs when SIGTERM arrives still ends by SIGTERM, within
    TCC_SHUTDOWN_TIMEOUT + 1 s, and every run it ended arrives once (the run in progress may
    arrive too, once)."""
    loop = start_signals(procs, "loop", receiver, ledger)
    wait_for(lambda: ledger_lines(ledger) >= LOOP_RUNS, f"{LOOP_RUNS} runs ended", loop)
    signalled = time.monotonic()
    loop.proc.send_signal(signal.SIGTERM)
    returncode = finish(loop)
    took = time.monotonic() - signalled
    record_property("exit_seconds", round(took, 2))
    runs = read_ledger(ledger)
    contiguous(runs, "loop-")
    in_progress = f"loop-{len(runs)}"
    problems = delivery_problems(
        receiver.spans, spans_of(runs), tolerated=lambda span: run_id_of(span) == in_progress
    )
    if returncode != -signal.SIGTERM:
        problems.append(f"EXIT: returncode {returncode}, not -SIGTERM: {loop.describe()}")
    if took > EXIT_BOUND:
        problems.append(f"SLOW: exited {took:.2f} s after SIGTERM (bound {EXIT_BOUND} s)")
    if problems:
        pytest.fail("\n".join([f"{len(runs)} runs ended before SIGTERM", *problems]))


@pytest.mark.parametrize("installed", ["before", "after"])
def test_application_handler_runs(
    installed: str, receiver: Receiver, procs: Processes, ledger: Path
) -> None:
    """An application's SIGTERM handler, installed before or after tcc_otel started exporting,
    stays installed and runs once on SIGTERM (exit 7), and its runs arrive once at exit."""
    app = start_signals(procs, installed, receiver, ledger)
    assert ready(app, ledger) == "own"
    app.proc.send_signal(signal.SIGTERM)
    assert finish(app) == 7, app.describe()
    assert (ledger / "handled").read_text() == "handled\n"
    runs = read_ledger(ledger)
    contiguous(runs, "loop-")
    assert len(runs) == 5
    assert_exactly_once(receiver.spans, spans_of(runs))


def test_handle_sigterm_off(receiver: Receiver, procs: Processes, ledger: Path) -> None:
    """With TCC_HANDLE_SIGTERM=0, SIGTERM keeps the default disposition after tcc_otel started
    exporting, and ends the process by SIGTERM."""
    app = start_signals(procs, "report", receiver, ledger, TCC_HANDLE_SIGTERM="0")
    assert ready(app, ledger) == "SIG_DFL"
    app.proc.send_signal(signal.SIGTERM)
    assert finish(app) == -signal.SIGTERM, app.describe()
    assert_exactly_once(receiver.spans, spans_of(read_ledger(ledger)))  # flushed before


def test_default_disposition_gets_a_handler(
    receiver: Receiver, procs: Processes, ledger: Path
) -> None:
    """With SIGTERM at its default, tcc_otel installs a handler of its own once it exports from
    the main thread, and the process still ends by SIGTERM."""
    app = start_signals(procs, "report", receiver, ledger)
    disposition = ready(app, ledger)
    assert disposition.startswith("tcc_otel"), (
        f"SIGTERM's disposition after exporting: {disposition}"
    )
    app.proc.send_signal(signal.SIGTERM)
    assert finish(app) == -signal.SIGTERM, app.describe()
    assert_exactly_once(receiver.spans, spans_of(read_ledger(ledger)))


@pytest.mark.parametrize("second", ["flush", "configure", "import"])
def test_sigkill_with_spool(second: str, procs: Processes, ledger: Path, tmp_path: Path) -> None:
    """After SIGKILL, a process that only starts tcc_otel with the same TCC_SPOOL_DIR and
    endpoint (flush(), configure() or just the import) delivers every run that ended over 1.5 s
    before the kill, and no span twice."""
    port = closed_port()  # the endpoint is down while the recorder runs, then comes up
    env = child_env(TCC_BASE_URL=f"http://127.0.0.1:{port}", TCC_SPOOL_DIR=str(tmp_path / "spool"))
    recorder = procs.python(
        "recorder", "deploy_spool.py", "record", env={**env, LEDGER_ENV: str(ledger)}
    )
    wait_for(lambda: ledger_lines(ledger) > 0, "the first run ended", recorder)
    time.sleep(RECORDING)  # pacing: let it record, then kill it mid-flight
    killed = time.monotonic()
    recorder.proc.kill()
    assert finish(recorder) == -signal.SIGKILL

    with Receiver("127.0.0.1", port) as receiver:
        sender = procs.python("sender", "deploy_spool.py", second, env=env)
        assert finish(sender) == 0, sender.describe()
        received = receiver.spans

    runs = read_ledger(ledger)
    contiguous(runs, "paced-")
    old = [run for run in runs if run.ended < killed - SAFE_AGE]
    assert old, "no run ended long enough before the kill"
    recent = spans_of(run for run in runs if run.ended >= killed - SAFE_AGE)
    in_progress = f"paced-{len(runs)}"
    assert_exactly_once(
        received,
        spans_of(old),
        tolerated=lambda span: (
            (span.trace_id, span.span_id) in recent or run_id_of(span) == in_progress
        ),
    )
