"""The runs of this process (tcc_otel/_registry.py): open runs held weakly, and the span contexts
and routes of the runs that ended most recently."""

from __future__ import annotations

import gc
import threading

from helpers.delivery import HANG_GUARD
from opentelemetry.trace import SpanContext

from tcc_otel._records._road import Road
from tcc_otel._records._run import Run
from tcc_otel._registry import ENDED_RUNS_KEPT, Registry, Route

ROUTE: Route = ("other-key", "http://127.0.0.1:9")


def context(n: int) -> SpanContext:
    """A valid span context, distinct for each ``n``."""
    return SpanContext(trace_id=n + 1, span_id=n + 1, is_remote=False)


def seen(registry: Registry[Run], run_id: str) -> tuple[object, object, bool, object]:
    """All the registry knows of ``run_id``: open run, ended context, local, route."""
    return (
        registry.open_run(run_id),
        registry.ended_context(run_id),
        registry.is_local(run_id),
        registry.route_of(run_id),
    )


class TestOpenRuns:
    def test_open_run(self) -> None:
        """An open run is found by its id and is local; without a route of its own it goes
        to the default destination."""
        registry: Registry[Run] = Registry()
        run = Run(Road(), run_id="run-1")
        registry.opened("run-1", run, None)
        assert seen(registry, "run-1") == (run, None, True, None)

    def test_route_of_an_open_run(self) -> None:
        """A run with its own key or URL has that route while open."""
        registry: Registry[Run] = Registry()
        run = Run(Road(), run_id="run-1")
        registry.opened("run-1", run, ROUTE)
        assert seen(registry, "run-1") == (run, None, True, ROUTE)

    def test_held_weakly(self) -> None:
        """An open run nobody holds any more is forgotten: the registry never keeps it
        alive."""
        registry: Registry[Run] = Registry()
        registry.opened("run-1", Run(Road(), run_id="run-1"), None)
        gc.collect()
        assert seen(registry, "run-1") == (None, None, False, None)

    def test_unknown_run(self) -> None:
        """A run id this process never saw is not local and has no context or route."""
        registry: Registry[Run] = Registry()
        assert seen(registry, "elsewhere") == (None, None, False, None)


class TestEndedRuns:
    def test_context_and_route_kept(self) -> None:
        """A run that ended is no longer open, but its span context and route are kept for
        late children, and it is still local."""
        registry: Registry[Run] = Registry()
        run = Run(Road(), run_id="run-1")
        registry.opened("run-1", run, ROUTE)
        registry.ended("run-1", context(1))
        assert seen(registry, "run-1") == (None, context(1), True, ROUTE)

    def test_newest_kept(self) -> None:
        """Past ``ENDED_RUNS_KEPT`` ended runs, the oldest is forgotten, context and route."""
        registry: Registry[Run] = Registry()
        runs = [Run(Road(), run_id=f"run-{n}") for n in range(ENDED_RUNS_KEPT + 1)]
        for n, run in enumerate(runs):
            registry.opened(run.run_id, run, ROUTE)
            registry.ended(run.run_id, context(n))
        last = ENDED_RUNS_KEPT
        assert [
            seen(registry, "run-0"),
            seen(registry, "run-1"),
            seen(registry, f"run-{last}"),
        ] == [
            (None, None, False, None),
            (None, context(1), True, ROUTE),
            (None, context(last), True, ROUTE),
        ]


class TestFork:
    def test_fresh_lock_after_fork(self) -> None:
        """After a fork the registry takes a fresh lock, so a lock another thread of the parent
        held does not stop the child from ending a run."""
        registry: Registry[Run] = Registry()
        run = Run(Road(), run_id="run-1")
        registry.opened("run-1", run, None)
        held = registry._lock  # as if another thread held it at the fork
        held.acquire()
        try:
            registry.after_fork()
            ending = threading.Thread(target=registry.ended, args=("run-1", context(1)))
            ending.start()
            ending.join(HANG_GUARD)
            assert (ending.is_alive(), seen(registry, "run-1")) == (
                False,
                (None, context(1), True, None),
            )
        finally:
            held.release()
