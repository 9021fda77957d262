"""The runs of this process: open ones (held weakly), and the span contexts and routes of
recently ended ones, so a late ``tcc.step(run_id=...)`` still nests and goes where its run
went."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Generic, Optional, TypeVar

from opentelemetry.trace import SpanContext

Route = tuple[Optional[str], str]
"""(API key, base URL) of a run that overrides the configured destination."""
ENDED_RUNS_KEPT = 4096
"""Ended runs remembered, newest kept."""

R = TypeVar("R")


class Registry(Generic[R]):
    """Open runs by id and what is kept of ended ones; safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: weakref.WeakValueDictionary[str, R] = weakref.WeakValueDictionary()
        self._ended: OrderedDict[str, SpanContext] = OrderedDict()
        self._routes: dict[str, Route] = {}  # open runs with their own key or URL
        self._ended_routes: OrderedDict[str, Route] = OrderedDict()

    def opened(self, run_id: str, run: R, route: Route | None) -> None:
        """A run started (``route``: its own destination, if any)."""
        self._open[run_id] = run
        if route is not None:
            self._routes[run_id] = route

    def ended(self, run_id: str, context: SpanContext) -> None:
        """A run ended: forget it, keeping its span context (and route) for late children."""
        with self._lock:
            self._open.pop(run_id, None)
            _keep(self._ended, run_id, context)
            route = self._routes.pop(run_id, None)
            if route is not None:
                _keep(self._ended_routes, run_id, route)

    def open_run(self, run_id: str) -> R | None:
        """The open run with that id."""
        return self._open.get(run_id)

    def ended_context(self, run_id: str) -> SpanContext | None:
        """The span context of a run that ended not long ago."""
        return self._ended.get(run_id)

    def is_local(self, run_id: str) -> bool:
        """Whether ``run_id`` is a run of this process (open, or ended not long ago)."""
        return run_id in self._open or run_id in self._ended

    def route_of(self, run_id: str) -> Route | None:
        """The destination of a run that overrode its key or URL; ``None`` for the default."""
        route = self._routes.get(run_id)
        if route is None and self._ended_routes:
            route = self._ended_routes.get(run_id)
        return route

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (another thread of the parent may have held it)."""
        self._lock = threading.Lock()


V = TypeVar("V")


def _keep(kept: OrderedDict[str, V], key: str, value: V) -> None:
    kept[key] = value
    if len(kept) > ENDED_RUNS_KEPT:
        kept.popitem(last=False)
