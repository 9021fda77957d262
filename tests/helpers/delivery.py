"""What the pipeline, fault and spool tests share: span ids as a receiver reports them, the spans
a scripted server received, the whole ``tcc.stats()`` expected, a standard run, quick pipeline
timings, and a receiver that can go down and come back on the same port."""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import pytest
from _fault_server import Recorded, closed_port
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import Span

import tcc_otel as tcc
from tcc_otel._export._batcher import Limits
from tcc_otel._local._server import Receiver

SpanId = tuple[str, str]
"""``(trace_id, span_id)`` in lower-case hex, as ``ReceivedSpan`` spells them."""
HANG_GUARD = 20.0
"""Seconds after which a wait that should end is considered hung (a guard, never a bound)."""
SPANS_PER_RUN = 6
"""Spans of ``record_run``: the run, three steps and two tool calls."""


class Sent(NamedTuple):
    """One span of a request, decoded."""

    trace_id: str
    span_id: str
    name: str
    run_id: str
    """Its ``tcc.runId`` attribute; empty if it has none."""

    @property
    def ids(self) -> SpanId:
        """``(trace_id, span_id)``."""
        return (self.trace_id, self.span_id)


def span_id(span: Span) -> SpanId:
    """``(trace_id, span_id)`` of a record's span (``record.span``)."""
    context = span.get_span_context()
    return (f"{context.trace_id:032x}", f"{context.span_id:016x}")


def sent_spans(request: Recorded) -> list[Sent]:
    """The spans one request to the scripted server carried, in order."""
    decoded = ExportTraceServiceRequest.FromString(request.body)
    found: list[Sent] = []
    for resource_spans in decoded.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                run_id = next(
                    (str(kv.value.string_value) for kv in span.attributes if kv.key == "tcc.runId"),
                    "",
                )
                found.append(
                    Sent(bytes(span.trace_id).hex(), bytes(span.span_id).hex(), span.name, run_id)
                )
    return found


def request_ids(request: Recorded) -> list[SpanId]:
    """``(trace_id, span_id)`` of each span of one request, in order."""
    return [span.ids for span in sent_spans(request)]


def accepted_ids(requests: list[Recorded]) -> list[SpanId]:
    """Ids of every span the server accepted (answered 2xx), sorted; duplicates stay."""
    return sorted(
        ids
        for request in requests
        if request.status is not None and 200 <= request.status < 300
        for ids in request_ids(request)
    )


def stats_snapshot(
    recorded: int = 0, exported: int = 0, retried: int = 0, dropped: dict[str, int] | None = None
) -> dict[str, object]:
    """The whole ``Stats.snapshot()`` expected of a pipeline or exporter used alone."""
    by_reason = dropped or {}
    return {
        "recorded": recorded,
        "exported": exported,
        "retried": retried,
        "dropped": sum(by_reason.values()),
        "dropped_by_reason": by_reason,
    }


def counters(
    recorded: int = 0,
    exported: int = 0,
    retried: int = 0,
    dropped: dict[str, int] | None = None,
    queued: int = 0,
    spooled: int = 0,
    **more: int,
) -> dict[str, object]:
    """The whole ``tcc.stats()`` expected; ``more`` adds counters such as ``kept``."""
    expected = stats_snapshot(recorded, exported, retried, dropped)
    expected.update(queued=queued, spooled=spooled, **more)
    return expected


def record_run(index: int = 0, *, content: str = "") -> list[SpanId]:
    """Record one run with three steps and two tool calls, some in ``with`` blocks and some
    ended by hand; return its span ids in the order the spans ended (the run last)."""
    ended: list[SpanId] = []
    with tcc.run() as r:
        r.prompt(f"question {index}{content}")
        with r.step() as first:
            first.prompt(f"plan {index}{content}").response("call search")
            search = first.tool_call("search").args({"q": index}).result("found")
            search.end()
            ended.append(span_id(search.span))
        ended.append(span_id(first.span))
        second = r.step().prompt(f"read {index}{content}").response("call lookup")
        second.end()
        ended.append(span_id(second.span))
        with r.tool_call("lookup") as lookup:
            lookup.args({"id": index}).result("row")
        ended.append(span_id(lookup.span))
        third = tcc.step(run_id=r.run_id).prompt(f"answer {index}{content}").response("done")
        third.end()
        ended.append(span_id(third.span))
        r.response(f"answer {index}")
    ended.append(span_id(r.span))
    return ended


def use_limits(monkeypatch: pytest.MonkeyPatch, **timings: Any) -> None:
    """Make clients built from now on use pipelines with these ``Limits`` keywords (``grace``,
    ``batch_delay``, ``max_hold``, ``batch_bytes``), so a test need not wait for defaults."""
    module = importlib.import_module("tcc_otel._export._destination")
    monkeypatch.setattr(module, "Limits", functools.partial(Limits, **timings))


def wait_until(condition: Callable[[], bool], guard: float = HANG_GUARD) -> bool:
    """Poll ``condition`` every 20 ms; ``False`` if ``guard`` seconds passed first."""
    end = time.monotonic() + guard
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


class FlakyReceiver:
    """A loopback OTLP receiver on one port that goes down (connections refused) and comes back
    on the same port; what every incarnation accepted is kept."""

    def __init__(self, *, up: bool = True) -> None:
        """Listen on a free port now, or (``up=False``) pick a closed port to come up on later."""
        self._done: list[Receiver] = []
        self._current: Receiver | None = None
        if up:
            self._current = Receiver("127.0.0.1", 0)
            self._current.start()
            self.port = self._current.port
        else:
            self.port = closed_port()

    @property
    def url(self) -> str:
        """Base URL to configure."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def receivers(self) -> list[Receiver]:
        """Every incarnation, oldest first."""
        return self._done + ([] if self._current is None else [self._current])

    def accepted_ids(self) -> list[SpanId]:
        """Ids of every span accepted so far, sorted; duplicates stay."""
        return sorted(
            (span.trace_id, span.span_id) for receiver in self.receivers for span in receiver.spans
        )

    def refused(self) -> int:
        """Requests answered with a refusal so far."""
        return sum(
            1
            for receiver in self.receivers
            for request in receiver.requests
            if request.status >= 300
        )

    def go_down(self) -> bool:
        """Answer 503 until one request was refused, then stop listening.

        Every request answered 200 before the refusal was fully answered (the exporter sends
        one request at a time), so stopping cannot cut an acknowledgement short and cause a
        duplicate. Needs a client sending meanwhile; ``False`` if none came within the guard.
        """
        receiver = self._current
        assert receiver is not None, "FlakyReceiver.go_down() called while it is down"
        before = self.refused()
        receiver.response_status = 503
        refused = wait_until(lambda: self.refused() > before)
        receiver.stop()
        self._done.append(receiver)
        self._current = None
        return refused

    def come_back(self) -> None:
        """Listen again on the same port (SO_REUSEADDR), accepting everything."""
        assert self._current is None, "FlakyReceiver.come_back() called while it is up"
        receiver = Receiver("127.0.0.1", self.port)
        receiver.start()
        self._current = receiver

    def stop(self) -> None:
        """Stop for good."""
        if self._current is not None:
            self._current.stop()
            self._done.append(self._current)
            self._current = None


@contextmanager
def flaky_receiver(*, up: bool = True) -> Iterator[FlakyReceiver]:
    """A ``FlakyReceiver`` (down at first if not ``up``), stopped on exit."""
    receiver = FlakyReceiver(up=up)
    try:
        yield receiver
    finally:
        receiver.stop()
