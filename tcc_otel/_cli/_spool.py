"""``tcc-otel spool``: show the batches waiting in a spool directory, and send them on request."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from tcc_otel._client import Client
from tcc_otel._config import resolve
from tcc_otel._export._spool import RELEASED, Folder, adoptable, alive, destination_id, inventory
from tcc_otel._schema._redact import redact_url


def run(
    directory: str | None,
    *,
    send: bool,
    timeout: float,
    as_json: bool,
    write: Callable[[str], None],
) -> int:
    """Describe the spool (and with ``send`` deliver what no live process owns).

    Returns:
        0 when nothing that could be sent is left waiting, 1 otherwise; 2 without a directory.
    """
    root = directory or os.environ.get("TCC_SPOOL_DIR", "").strip()
    if not root:
        write("tcc-otel spool: no spool directory: pass --dir or set TCC_SPOOL_DIR\n")
        return 2
    config = resolve(spool_dir=root)
    url, key = config.destination
    mine = destination_id(url, key)
    sent: dict[str, Any] | None = None
    if send:
        sent = _send(root, timeout)
    destinations = [_folder(folder, folder.id == mine) for folder in inventory(root)]
    report: dict[str, Any] = {"directory": root, "destinations": destinations, "sent": sent}
    waiting = sum(f["sendable_spans"] for f in destinations if f["this_configuration"])
    if sent is not None:
        sent["still_waiting"] = waiting
    write(json.dumps(report, indent=2) + "\n" if as_json else _render(report))
    return 1 if send and waiting else 0


def _send(root: str, timeout: float) -> dict[str, Any]:
    """Adopt and deliver what this configuration's folder holds; what fails stays there."""
    client = Client()
    started = time.monotonic()
    client.configure(spool_dir=root)  # adopts and starts sending
    delivered = client.flush(timeout)
    client.shutdown(max(0.0, timeout - (time.monotonic() - started)))
    stats = client.snapshot()
    return {
        "recovered": stats.get("recovered", 0),
        "exported": stats["exported"],
        "kept": stats.get("kept", 0),
        "dropped": stats["dropped"],
        "dropped_by_reason": stats["dropped_by_reason"],
        "complete": delivered,
    }


def _folder(folder: Folder, this: bool) -> dict[str, Any]:
    owners: dict[str, int] = {}
    sendable = 0
    for found in folder.files:
        if found.pid == RELEASED:
            owner = "released"
        elif alive(found.pid) and found.pid != os.getpid():
            owner = f"pid {found.pid} (running)"
        else:
            owner = "gone"
        owners[owner] = owners.get(owner, 0) + 1
        if adoptable(found):
            sendable += found.spans
    oldest = min((found.created_ns for found in folder.files), default=None)
    return {
        "id": folder.id,
        "url": None if folder.url is None else redact_url(folder.url),
        "this_configuration": this,
        "files": len(folder.files),
        "spans": sum(found.spans for found in folder.files),
        "sendable_spans": sendable,
        "owners": owners,
        "oldest_age_s": None if oldest is None else round((time.time_ns() - oldest) / 1e9, 1),
    }


def _render(report: dict[str, Any]) -> str:
    lines = [f"tcc-otel spool: {report['directory']}"]
    destinations = report["destinations"]
    for folder in destinations:
        mark = "  (this configuration)" if folder["this_configuration"] else ""
        lines.append(f"  {folder['url'] or 'unknown destination ' + folder['id']}{mark}")
        if not folder["files"]:
            lines.append("    nothing waiting")
            continue
        owners = ", ".join(f"{owner}: {n}" for owner, n in sorted(folder["owners"].items()))
        lines.append(
            f"    {_count(folder['files'], 'file')}, {_count(folder['spans'], 'span')} "
            f"({folder['sendable_spans']} no running process owns); oldest "
            f"{_age(folder['oldest_age_s'])} ago; files by owner: {owners}"
        )
    if not destinations:
        lines.append("  nothing waiting")
    sent = report["sent"]
    if sent is not None:
        dropped = (
            f", {sent['dropped']} dropped {sent['dropped_by_reason']}" if sent["dropped"] else ""
        )
        lines.append(
            f"sent: {sent['exported']} of {sent['recovered']} spans delivered{dropped}; "
            f"{sent['still_waiting']} still waiting for a later attempt"
        )
    elif any(f["sendable_spans"] for f in destinations if f["this_configuration"]):
        lines.append("send them now with: tcc-otel spool --send")
    return "\n".join(lines) + "\n"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
