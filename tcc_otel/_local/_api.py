"""The JSON API of ``tcc-otel dev``: ``GET /api/runs`` and ``GET /api/runs/{run_id}``."""

from __future__ import annotations

import json
from typing import Any, Final
from urllib.parse import parse_qs, unquote

from tcc_otel._config import is_loopback_host
from tcc_otel._local import _ui
from tcc_otel._local._server import HttpReply
from tcc_otel._local._store import MAX_LIMIT, RUN_STATUSES, Store

API_PREFIX: Final = "/api/"
"""Every API path starts with this; other paths are left to the receiver (or the web page)."""
RUNS_PATH: Final = "/api/runs"
"""Lists runs; ``/api/runs/{run_id}`` shows one."""
DEFAULT_LIMIT: Final = 100
"""Runs listed when ``limit`` is not given."""

_JSON: Final = "application/json"
_FILTERS: Final = ("status", "session", "agent", "limit")


class Api:
    """Answers the receiver's GET requests under ``/api/`` from a ``Store``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __call__(self, path: str, query: str, headers: dict[str, str]) -> HttpReply | None:
        """Answer ``GET path?query``; ``None`` for paths outside ``/api/`` and the web page.

        A Host header that is not a loopback name is refused (403), so a web page that
        rebinds its own domain to 127.0.0.1 cannot read the stored prompts.
        """
        is_page = _ui.is_ui_path(path)
        if not is_page and not (path + "/").startswith(API_PREFIX):
            return None
        if not is_loopback_host(_host_name(headers.get("host", ""))):
            return _error(403, "the API answers only requests addressed to a loopback host")
        if is_page:
            return _ui.serve(path)
        if path in (RUNS_PATH, RUNS_PATH + "/"):
            return self._list(query)
        if path.startswith(RUNS_PATH + "/"):
            run_id = unquote(path[len(RUNS_PATH) + 1 :])
            found = self._store.run(run_id)
            if found is None:
                return _error(404, f"no run {run_id!r}")
            return _reply(200, found)
        return _error(404, f"no such path {path}; the API has {RUNS_PATH} and {RUNS_PATH}/ID")

    def _list(self, query: str) -> HttpReply:
        try:
            values = parse_qs(query, strict_parsing=False)
        except ValueError:
            return _error(400, "the query string could not be read")
        unknown = sorted(set(values) - set(_FILTERS))
        if unknown:
            return _error(400, f"unknown parameter {unknown[0]!r}; use {', '.join(_FILTERS)}")
        given = {name: items[-1] for name, items in values.items() if items[-1] != ""}
        status = given.get("status")
        if status is not None and status not in RUN_STATUSES:
            return _error(400, f"status must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
        limit_text = given.get("limit", str(DEFAULT_LIMIT))
        try:
            limit = int(limit_text)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            return _error(400, f"limit must be a whole number 1-{MAX_LIMIT}, got {limit_text!r}")
        runs = self._store.runs(
            status=status, session=given.get("session"), agent=given.get("agent"), limit=limit
        )
        return _reply(200, {"runs": runs})


def _host_name(host: str) -> str:
    """The name in a Host header, without port or IPv6 brackets: ``[::1]:80`` -> ``::1``."""
    name = host.strip()
    if name.startswith("["):
        return name[1 : name.find("]")] if "]" in name else ""
    return name.partition(":")[0] if name.count(":") == 1 else name


def _reply(status: int, document: Any) -> HttpReply:
    body = json.dumps(document, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return HttpReply(status, _JSON, body)


def _error(status: int, message: str) -> HttpReply:
    return _reply(status, {"error": message})
