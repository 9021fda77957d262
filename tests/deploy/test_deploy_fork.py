"""Processes that fork while tcc_otel is busy: children never hang, and every span of the
parent and of each child reaches the receiver exactly once.

Each test runs a script of tests/scripts in a fresh interpreter, configured by the environment
only, and compares what a loopback receiver kept (duplicates included) with the ledger of runs
the processes wrote down as they ended.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.deploy import (
    HANG_GUARD,
    LEDGER_ENV,
    Processes,
    assert_exactly_once,
    child_env,
    delivery_problems,
    finish,
    read_json,
    read_ledger,
    spans_of,
    wait_group_gone,
)

from tcc_otel._local._server import Receiver

CHILDREN = 100
CHILD_RUNS = 50
BURST_CHILDREN = 4


def test_forks_beside_a_recording_thread(
    receiver: Receiver, procs: Processes, ledger: Path
) -> None:
    """100 children forked while another thread records runs each exit 0 and deliver their run
    once, and the parent's thread's runs arrive once too."""
    parent = procs.python(
        "parent",
        "deploy_fork_thread.py",
        "--children",
        str(CHILDREN),
        "--guard",
        str(HANG_GUARD),
        env=child_env(TCC_BASE_URL=receiver.url, **{LEDGER_ENV: str(ledger)}),
    )
    assert finish(parent, 2 * HANG_GUARD) == 0, parent.describe()
    wait_group_gone(parent)
    report = read_json(ledger / "report.json")
    assert report["hung"] == [], (
        f"HANG: children {report['hung']} were still alive {HANG_GUARD:.0f} s after their fork "
        f"(killed; their stacks: stderr of {parent.err})"
    )
    assert sorted(map(int, report["exit_codes"])) == list(range(CHILDREN))
    failed = {index: code for index, code in report["exit_codes"].items() if code != 0}
    assert failed == {}, parent.describe()
    runs = read_ledger(ledger)
    assert sorted(run.run_id for run in runs if run.run_id.startswith("child-")) == sorted(
        f"child-{i}" for i in range(CHILDREN)
    )
    assert sorted(run.run_id for run in runs if not run.run_id.startswith("child-")) == sorted(
        f"parent-{n}" for n in range(report["parent_runs"])
    )
    assert_exactly_once(receiver.spans, spans_of(runs))


def test_children_of_a_parent_that_exported(
    receiver: Receiver, procs: Processes, ledger: Path
) -> None:
    """Four children forked after the parent exported (its connection open) deliver their 50
    runs of 20 KB prompts once each, with no request refused and nothing counted as dropped."""
    parent = procs.python(
        "parent",
        "deploy_fork_burst.py",
        "--children",
        str(BURST_CHILDREN),
        "--runs",
        str(CHILD_RUNS),
        "--guard",
        str(HANG_GUARD),
        env=child_env(TCC_BASE_URL=receiver.url, **{LEDGER_ENV: str(ledger)}),
    )
    assert finish(parent, 2 * HANG_GUARD) == 0, parent.describe()
    wait_group_gone(parent)
    report = read_json(ledger / "report.json")
    assert report == {
        "exit_codes": {str(c): 0 for c in range(BURST_CHILDREN)},
        "hung": [],
    }
    runs = read_ledger(ledger)
    assert sorted(run.run_id for run in runs) == sorted(
        ["parent"] + [f"child-{c}-{i}" for c in range(BURST_CHILDREN) for i in range(CHILD_RUNS)]
    )
    expected = spans_of(runs)
    assert len(expected) == 3 + BURST_CHILDREN * CHILD_RUNS * 3
    stats = {path.stem[6:]: read_json(path) for path in ledger.glob("stats-*.json")}
    assert sorted(stats) == sorted(["parent"] + [f"child-{c}" for c in range(BURST_CHILDREN)])
    problems = delivery_problems(receiver.spans, expected)
    refused = [request.status for request in receiver.requests if not 200 <= request.status < 300]
    if refused:
        problems.append(f"REFUSED: {len(refused)} requests answered HTTP {sorted(set(refused))}")
    dropped = {who: value["dropped_by_reason"] for who, value in stats.items() if value["dropped"]}
    if dropped:
        problems.append(f"DROPPED counted by tcc.stats(): {dropped}")
    if problems:
        pytest.fail("\n".join(problems))
