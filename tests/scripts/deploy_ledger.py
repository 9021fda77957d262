"""The ledger the deployment scripts keep, and the standard run they record.

Every process appends one JSON line per ended run to ``$DEPLOY_LEDGER/<pid>.jsonl`` with one
unbuffered ``os.write`` on an ``O_APPEND`` descriptor: the line is in the file as soon as its run
ended (a SIGKILL right after cannot lose it), and a forked child writes a file of its own. A line
is ``{"run_id", "index", "pid", "spans", "ended"}``: ``spans`` as ``[trace_id, span_id]`` in
lower-case hex, the run's span last; ``ended`` is ``time.monotonic()`` read after the run ended.

tcc_otel is imported only when a run is recorded, so a script can register its own exit
handlers, or install signal handlers, before tcc_otel is ever imported.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import tcc_otel as tcc

    Record = Union[tcc.Run, tcc.Step, tcc.ToolCall]

LEDGER_ENV = "DEPLOY_LEDGER"
"""Names the directory the ledger files go to."""

_fd: tuple[int, int] | None = None
"""``(pid, descriptor)`` of this process's ledger file; a forked child opens its own."""


def directory() -> str:
    """The ledger directory, from ``$DEPLOY_LEDGER``."""
    return os.environ[LEDGER_ENV]


def ids(record: Record) -> list[str]:
    """``[trace_id, span_id]`` of a record's span, in lower-case hex."""
    context = record.span.get_span_context()
    return [f"{context.trace_id:032x}", f"{context.span_id:016x}"]


def record_run(run_id: str, *, tool_call: bool = False, content: str = "") -> list[list[str]]:
    """Record one run (a step, and a tool call if asked) with ``with`` blocks; return the span
    ids, the run's last. ``content`` is appended to the run's and the step's prompt."""
    import tcc_otel as tcc

    spans: list[list[str]] = []
    with tcc.run(run_id=run_id) as r:
        r.prompt(f"question of {run_id}{content}")
        with r.step() as s:
            s.prompt(f"plan of {run_id}{content}").response("call lookup")
        spans.append(ids(s))
        if tool_call:
            with r.tool_call("lookup") as t:
                t.args({"run": run_id}).result("found")
            spans.append(ids(t))
        r.response(f"answer of {run_id}")
    spans.append(ids(r))
    return spans


def append(run_id: str, index: int, spans: list[list[str]]) -> None:
    """Add one ended run to this process's ledger file."""
    global _fd
    pid = os.getpid()
    if _fd is None or _fd[0] != pid:
        path = os.path.join(directory(), f"{pid}.jsonl")
        _fd = (pid, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
    line = {"run_id": run_id, "index": index, "pid": pid, "spans": spans, "ended": time.monotonic()}
    os.write(_fd[1], (json.dumps(line) + "\n").encode())


def write_json(name: str, value: Any) -> None:
    """Write ``value`` as the file ``name`` of the ledger directory, whole or not at all."""
    path = os.path.join(directory(), name)
    with open(f"{path}.{os.getpid()}.tmp", "w", encoding="utf-8") as f:
        json.dump(value, f)
    os.replace(f"{path}.{os.getpid()}.tmp", path)


def hang_report(pid: int) -> None:
    """Have a hung child print every thread's stack on stderr, then kill and reap it."""
    os.kill(pid, signal.SIGUSR1)
    time.sleep(0.5)  # the dump is written from a C signal handler, even with every lock held
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
