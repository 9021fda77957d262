"""Encoding helper processes (``TCC_ENCODE_PROCESS=on``) where applications are deployed:
SIGTERM to the process or to its whole process group, SIGKILL, a fork pool whose parent started
helpers first, gunicorn ``--preload -w 2``. The helpers really encode spans, every run that ended
reaches the receiver exactly once, no helper ever fails, and none outlives its application.

The applications (``APP``, ``WSGI``) are written from this module into the test's directory;
they read their helpers from the default pipeline (tcc_otel internals) and report them. The
spans a loopback receiver kept (duplicates included) are compared with the ledger of runs the
processes wrote down as they ended (tests/scripts/deploy_ledger.py).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helpers.delivery import wait_until
from helpers.deploy import (
    HANG_GUARD,
    LEDGER_ENV,
    Processes,
    Started,
    assert_exactly_once,
    child_env,
    delivery_problems,
    finish,
    free_port,
    group_members,
    port_open,
    read_json,
    read_ledger,
    run_id_of,
    spans_of,
    wait_for,
    wait_group_gone,
)

from tcc_otel._local._server import Receiver

LOOP_RUNS = 3000
"""Runs the tight loop has ended when it gets its signal."""
ORPHAN_GUARD = 10.0
"""Seconds the helpers of a killed application may take to end; they end as soon as their
input closes: only a hang guard."""
POOL_WORKERS = 2
POOL_TASKS = 4
TASK_RUNS = 100
"""Runs each pool task records at least (more until its worker's helpers encoded some)."""
REQUESTS = 200
CONCURRENCY = 4
HELPER_MARK = "tcc_otel._export._offload_serve"
"""In the command line of every helper process (its boot program imports that module)."""
TROUBLE = ("encoding helper process failed", "could not start tcc_otel's encoding helper")
"""What tcc_otel logs (stderr, by logging's last resort) when a helper fails or cannot start."""

REPORT = '''
def offload() -> Any:
    """The encoding helpers of this process's default pipeline."""
    import tcc_otel

    return tcc_otel._client.pipeline().sink._offload  # type: ignore[union-attr]


def pipes(pid: object) -> list[str]:
    """The pipes ``pid`` holds open, as ``pipe:[<inode>]``: either end of one."""
    found = []
    with contextlib.suppress(OSError):  # gone meanwhile
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):  # closed meanwhile
                found.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return sorted(link for link in found if link.startswith("pipe:"))


def helpers(since: int = 0) -> dict[str, Any]:
    """This process and its helpers: ``{"pid", "pids": those up and ready, "processes": how
    many it starts, "frames": frames sent to them since ``since``, "failures", "pipes": those
    the helpers hold (their input and output), "held": those this process holds}``."""
    helping = offload()
    pids = sorted(helping.pids)
    return {
        "pid": os.getpid(),
        "pids": pids,
        "processes": helping._count,
        "frames": helping._turn - since,
        "failures": helping._failures,
        "pipes": [link for pid in pids for link in pipes(pid)],
        "held": pipes("self"),
    }


def used(state: dict[str, Any]) -> bool:
    """Whether ``helpers()`` shows them all up, having encoded spans."""
    return bool(len(state["pids"]) == state["processes"] and state["frames"] > 0)


def record_until_used(prefix: str, since: int, least: int, deadline: float) -> int:
    """Record ``<prefix>-<i>`` (run + step + tool call) until at least ``least`` ended and the
    helpers are ``used`` (or failed, or ``deadline`` passed); return how many ended."""
    index = 0
    while time.monotonic() < deadline:
        state = helpers(since)
        if index >= least and (state["failures"] or used(state)):
            break
        run_id = f"{prefix}-{index}"
        append(run_id, index, record_run(run_id, tool_call=True))
        index += 1
    return index
'''

APP = f'''"""The application of tests/deploy/test_deploy_helpers.py (``TCC_ENCODE_PROCESS=on``).

``loop``: records ``loop-<i>`` (run + step) in a tight loop until a signal ends it; once its
helpers encoded spans it writes ``helpers.json`` (``helpers()``) to the ledger directory.

``pool``: records ``parent-<i>`` until its helpers encoded spans, then a fork ``Pool(2)`` runs 4
tasks, each waiting for another (so both workers run tasks); task ``t`` records ``task-<t>-<i>``,
at least {TASK_RUNS}, until its worker's own helpers encoded spans. After ``close()`` and
``join()`` it records ``after-<i>`` until its helpers encoded more, writes ``report.json`` and
exits 0. Nothing runs longer than ``--guard`` seconds (then exit 3).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sys
import time
from typing import Any

from deploy_ledger import append, record_run, write_json

since = 0
"""In a pool worker: frames the parent had sent before the fork (the counter is inherited)."""
barrier: Any = None

{REPORT}

def loop(deadline: float) -> int:
    index, reported = 0, False
    while time.monotonic() < deadline:
        run_id = f"loop-{{index}}"
        append(run_id, index, record_run(run_id))
        index += 1
        if not reported and index % 64 == 0:
            state = helpers()
            if used(state):
                write_json("helpers.json", state)
                reported = True
    return 3


def start_worker(waiting: Any) -> None:
    global since, barrier
    since, barrier = offload()._turn, waiting


def task(number: int) -> dict[str, Any]:
    barrier.wait({HANG_GUARD})
    deadline = time.monotonic() + {HANG_GUARD}
    runs = record_until_used(f"task-{{number}}", since, {TASK_RUNS}, deadline)
    return {{"task": number, "runs": runs, **helpers(since)}}


def pool(deadline: float) -> int:
    parent_runs = record_until_used("parent", 0, 1, deadline)
    before = helpers()
    context = multiprocessing.get_context("fork")
    workers = context.Pool({POOL_WORKERS}, start_worker, (context.Barrier({POOL_WORKERS}),))
    tasks = workers.map(task, range({POOL_TASKS}), chunksize=1)
    workers.close()
    workers.join()
    sent = offload()._turn
    after_runs = record_until_used("after", sent, 1, deadline)
    write_json(
        "report.json",
        {{
            "parent_runs": parent_runs,
            "before": before,
            "tasks": tasks,
            "after_runs": after_runs,
            "after": helpers(sent),
        }},
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["loop", "pool"])
    parser.add_argument("--guard", type=float, default={HANG_GUARD})
    args = parser.parse_args()
    deadline = time.monotonic() + args.guard
    return loop(deadline) if args.mode == "loop" else pool(deadline)


if __name__ == "__main__":
    sys.exit(main())
'''

WSGI = f'''"""The application of tests/deploy/test_deploy_helpers.py for ``gunicorn --preload``.

At import (in the master) it records ``import-<i>`` until its helpers encoded spans, flushes,
and writes ``master.json`` (``helpers()``). ``GET /run/<n>`` records ``request-<n>``; ``GET
/use/<n>`` records ``use-<n>-<i>`` until the worker's own helpers encoded spans. Both answer
``{{"runs", **helpers()}}`` as JSON (``frames`` counted from the worker's first request).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable
from typing import Any, Callable

import tcc_otel as tcc
from deploy_ledger import append, record_run, write_json

{REPORT}

_since: dict[int, int] = {{}}


def baseline() -> int:
    """Frames sent before this process first recorded: a worker inherits the master's count."""
    return _since.setdefault(os.getpid(), offload()._turn)


master_runs = record_until_used("import", baseline(), 1, time.monotonic() + {HANG_GUARD})
tcc.flush()
write_json("master.json", {{"runs": master_runs, **helpers(baseline())}})


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``/run/<n>`` and ``/use/<n>``, as above."""
    since = baseline()
    parts = str(environ.get("PATH_INFO", "")).strip("/").split("/")
    if len(parts) != 2 or parts[0] not in ("run", "use") or not parts[1].isdigit():
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    index = int(parts[1])
    if parts[0] == "run":
        append(f"request-{{index}}", index, record_run(f"request-{{index}}", tool_call=True))
        runs = 1
    else:
        runs = record_until_used(f"use-{{index}}", since, 1, time.monotonic() + {HANG_GUARD})
    body = json.dumps({{"runs": runs, **helpers(since)}}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
'''


# --- local helpers --------------------------------------------------------------------------


def write_script(directory: Path, name: str, text: str) -> Path:
    """Write ``text`` as the module ``name`` in ``directory``; return its path."""
    path = directory / f"{name}.py"
    path.write_text(text)
    return path


def ledger_lines(ledger: Path) -> int:
    """Runs written to the ledger so far."""
    return sum(path.read_bytes().count(b"\n") for path in ledger.glob("*.jsonl"))


def command_line(pid: int) -> str:
    """The command line of ``pid``; empty once it is gone."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def group_helpers(pgid: int) -> set[int]:
    """Live helper processes of the process group ``pgid``."""
    return {pid for pid in group_members(pgid) if HELPER_MARK in command_line(pid)}


def ignored(pid: int) -> set[int]:
    """The signals ``pid`` ignores (``SigIgn`` of /proc/<pid>/status)."""
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            mask = int(line.split()[1], 16)
            return {number for number in range(1, 65) if mask >> (number - 1) & 1}
    return set()


def wait_helpers_gone(started: Started, pids: Iterable[int], guard: float = HANG_GUARD) -> None:
    """Wait until none of the helpers ``pids`` of ``started``'s group is alive; fail naming
    those left (then killed with the group in teardown)."""
    __tracebackhide__ = True
    wanted = set(pids)
    if not wait_until(lambda: not wanted & set(group_members(started.pid)), guard):
        left = sorted(wanted & set(group_members(started.pid)))
        pytest.fail(
            f"ORPHANS: helpers {left} of {started.name} still alive {guard:.0f} s later: "
            + "; ".join(f"{pid}: {command_line(pid)[:60]}" for pid in left)
        )


def assert_no_trouble(started: Started, *, interrupted: bool = False) -> None:
    """Fail if ``started`` logged a helper's failure or a traceback (``interrupted``: but the
    one of the ``KeyboardInterrupt`` that ended it)."""
    __tracebackhide__ = True
    err = started.stderr()
    if interrupted and err.count("Traceback") == 1 and err.rstrip().endswith("KeyboardInterrupt"):
        err = err[: err.index("Traceback")]
    found = [mark for mark in (*TROUBLE, "Traceback") if mark in err]
    assert not found, f"{found} logged: {started.describe()}"


def used(state: dict[str, Any]) -> bool:
    """Whether a ``helpers()`` report shows all the helpers up, having encoded spans, none
    failed, and their pipes (input and output: two each at least)."""
    return bool(
        len(state["pids"]) == state["processes"] > 0
        and state["frames"] > 0
        and state["failures"] == 0
        and len(set(state["pipes"])) >= 2 * len(state["pids"])
    )


def start_app(
    procs: Processes, name: str, mode: str, receiver: Receiver, ledger: Path, tmp_path: Path
) -> Started:
    """Start ``APP`` in ``mode`` with its helpers on."""
    script = write_script(tmp_path, "deploy_helpers_app", APP)
    return procs.start(
        name,
        [sys.executable, str(script), mode, "--guard", f"{HANG_GUARD:g}"],
        child_env(TCC_BASE_URL=receiver.url, TCC_ENCODE_PROCESS="on", **{LEDGER_ENV: str(ledger)}),
    )


def looping(
    procs: Processes, name: str, receiver: Receiver, ledger: Path, tmp_path: Path
) -> tuple[Started, set[int]]:
    """Start the tight loop; wait until its helpers encoded spans and ``LOOP_RUNS`` runs
    ended; return it and its helpers' pids, checked to be helpers of its group."""
    app = start_app(procs, name, "loop", receiver, ledger, tmp_path)
    report = ledger / "helpers.json"
    wait_for(report.exists, "helpers.json (helpers encoded spans)", app)
    wait_for(lambda: ledger_lines(ledger) >= LOOP_RUNS, f"{LOOP_RUNS} runs ended", app)
    state = read_json(report)
    assert used(state), state
    pids = set(state["pids"])
    assert group_helpers(app.pid) == pids
    return app, pids


def loop_problems(receiver: Receiver, ledger: Path) -> tuple[int, list[str]]:
    """Runs the loop ended (``loop-0`` ...), and what is wrong with their delivery: each once,
    the run in progress at the signal at most once."""
    runs = read_ledger(ledger)
    assert [run.run_id for run in runs] == [f"loop-{i}" for i in range(len(runs))]
    in_progress = f"loop-{len(runs)}"
    return len(runs), delivery_problems(
        receiver.spans, spans_of(runs), tolerated=lambda span: run_id_of(span) == in_progress
    )


def get_json(url: str) -> dict[str, Any]:
    """GET ``url`` and decode its JSON body (the hang guard bounds the wait)."""
    with urllib.request.urlopen(url, timeout=HANG_GUARD) as response:
        value = json.loads(response.read())
    assert isinstance(value, dict)
    return value


def children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid``."""
    found = set()
    for member in group_members(pid):
        try:
            stat = (Path("/proc") / str(member) / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(member)
    return found


def workers_of(master: Started) -> set[int]:
    """The gunicorn master's workers: its children other than its helpers."""
    return children(master.pid) - group_helpers(master.pid)


# --- the tests ------------------------------------------------------------------------------


def test_sigterm_to_a_tight_loop(
    receiver: Receiver, procs: Processes, ledger: Path, tmp_path: Path
) -> None:
    """SIGTERM to a loop whose helpers encode its spans: it ends by SIGTERM, every run it ended
    arrives once (the run in progress at most once), and its helpers are gone."""
    app, pids = looping(procs, "loop", receiver, ledger, tmp_path)
    app.proc.send_signal(signal.SIGTERM)
    returncode = finish(app)
    ended, problems = loop_problems(receiver, ledger)
    if returncode != -signal.SIGTERM:
        problems.append(f"EXIT: returncode {returncode}, not -SIGTERM: {app.describe()}")
    if problems:
        pytest.fail("\n".join([f"{ended} runs ended before SIGTERM", *problems]))
    assert_no_trouble(app)
    wait_helpers_gone(app, pids)
    wait_group_gone(app)


def test_sigkill_leaves_no_helper(
    receiver: Receiver, procs: Processes, ledger: Path, tmp_path: Path
) -> None:
    """SIGKILL of a loop whose helpers encode its spans: their input closes and they end by
    themselves, no orphan left."""
    app, pids = looping(procs, "loop", receiver, ledger, tmp_path)
    app.proc.kill()  # the application only: its group (the helpers) is left alone
    assert finish(app) == -signal.SIGKILL, app.describe()
    wait_helpers_gone(app, pids, ORPHAN_GUARD)
    wait_group_gone(app, ORPHAN_GUARD)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_signal_to_the_process_group(
    sig: signal.Signals, receiver: Receiver, procs: Processes, ledger: Path, tmp_path: Path
) -> None:
    """A signal to the whole group (``kill -TERM -<pgid>``, a terminal's Ctrl-C): the helpers
    ignore it and keep encoding while the application delivers; it ends by the signal, every
    run it ended arrives once, no helper failed, and they are gone."""
    app, pids = looping(procs, "group", receiver, ledger, tmp_path)
    for pid in pids:
        assert sig in ignored(pid), f"helper {pid} does not ignore {sig.name}"
    os.killpg(app.pid, sig)
    returncode = finish(app)
    ended, problems = loop_problems(receiver, ledger)
    if returncode != -sig:
        problems.append(f"EXIT: returncode {returncode}, not -{sig.name}: {app.describe()}")
    if problems:
        pytest.fail("\n".join([f"{ended} runs ended before {sig.name}", *problems]))
    assert_no_trouble(app, interrupted=sig == signal.SIGINT)
    wait_helpers_gone(app, pids)
    wait_group_gone(app)


def test_fork_pool_after_the_parent_started_helpers(
    receiver: Receiver, procs: Processes, ledger: Path, tmp_path: Path
) -> None:
    """A fork Pool(2) whose parent's helpers encoded spans before it forked: each worker holds
    none of their pipes and its runs are encoded by helpers of its own, the parent's same
    helpers encode its runs after the pool, every run arrives once, and no helper remains."""
    app = start_app(procs, "pool", "pool", receiver, ledger, tmp_path)
    assert finish(app) == 0, app.describe()
    wait_group_gone(app)
    assert_no_trouble(app)
    report = read_json(ledger / "report.json")
    before, after, tasks = report["before"], report["after"], report["tasks"]
    assert used(before), before
    assert used(after), after
    assert after["pids"] == before["pids"], "the parent's helpers changed across the pool"
    assert [task["task"] for task in tasks] == list(range(POOL_TASKS))
    assert len({task["pid"] for task in tasks}) == POOL_WORKERS, tasks
    for task in tasks:
        assert used(task), task
        assert task["pid"] != before["pid"], task
        assert not set(task["pids"]) & set(before["pids"]), f"a worker used the parent's: {task}"
        assert not set(task["held"]) & set(before["pipes"]), f"a worker holds the parent's: {task}"

    runs = read_ledger(ledger)
    expected_ids = [f"parent-{i}" for i in range(report["parent_runs"])]
    expected_ids += [f"after-{i}" for i in range(report["after_runs"])]
    for task in tasks:
        expected_ids += [f"task-{task['task']}-{i}" for i in range(task["runs"])]
    assert sorted(run.run_id for run in runs) == sorted(expected_ids)
    expected = spans_of(runs)
    assert len(expected) == len(runs) * 3
    assert_exactly_once(receiver.spans, expected)


def test_gunicorn_preload_workers(
    receiver: Receiver, procs: Processes, ledger: Path, tmp_path: Path
) -> None:
    """gunicorn ``--preload -w 2`` whose master's helpers encoded spans at import: each worker
    holds none of their pipes and its runs are encoded by helpers of its own, every run arrives
    once by the time the master exits after SIGTERM, and no helper process remains."""
    write_script(tmp_path, "deploy_helpers_wsgi", WSGI)
    env = child_env(TCC_BASE_URL=receiver.url, TCC_ENCODE_PROCESS="on", **{LEDGER_ENV: str(ledger)})
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    port = free_port()
    master = procs.start(
        "gunicorn",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--preload",
            "-w",
            str(POOL_WORKERS),
            "-b",
            f"127.0.0.1:{port}",
            "--control-socket",
            str(tmp_path / "gunicorn.ctl"),  # not the shared default under $HOME
            "deploy_helpers_wsgi:app",
        ],
        env,
        cwd=tmp_path,
    )
    wait_for(lambda: port_open(port), f"gunicorn listening on port {port}", master)
    imported = read_json(ledger / "master.json")
    assert imported["pid"] == master.pid
    assert used(imported), imported

    base = f"http://127.0.0.1:{port}"
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(get_json, [f"{base}/run/{n}" for n in range(REQUESTS)]))
    wait_for(lambda: len(workers_of(master)) == POOL_WORKERS, "both workers forked", master)
    workers = workers_of(master)
    latest: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + HANG_GUARD
    while workers - set(latest):  # each worker answers /use once its own helpers encoded
        assert time.monotonic() < deadline, f"HANG: workers {workers} never all answered /use"
        first = len(answers)
        with ThreadPoolExecutor(POOL_WORKERS) as pool:
            answers += pool.map(get_json, [f"{base}/use/{n}" for n in range(first, first + 2)])
        latest.update({answer["pid"]: answer for answer in answers[first:]})
    for answer in latest.values():
        assert used(answer), answer
        assert not set(answer["pids"]) & set(imported["pids"]), answer
        assert not set(answer["held"]) & set(imported["pipes"]), f"holds the master's: {answer}"
    helpers = set(imported["pids"]).union(*(answer["pids"] for answer in latest.values()))
    assert group_helpers(master.pid) == helpers

    master.proc.send_signal(signal.SIGTERM)
    assert finish(master) == 0, master.describe()
    wait_helpers_gone(master, helpers)
    wait_group_gone(master)
    assert_no_trouble(master)

    runs = read_ledger(ledger)
    expected_ids = [f"import-{i}" for i in range(imported["runs"])]
    expected_ids += [f"request-{n}" for n in range(REQUESTS)]
    for n, answer in enumerate(answers[REQUESTS:], REQUESTS):
        expected_ids += [f"use-{n}-{i}" for i in range(answer["runs"])]
    assert sorted(run.run_id for run in runs) == sorted(expected_ids)
    expected = spans_of(runs)
    assert len(expected) == len(runs) * 3
    assert_exactly_once(receiver.spans, expected)
