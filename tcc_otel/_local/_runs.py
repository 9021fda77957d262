"""Which run a span belongs to: its own ``tcc.runId``, else its nearest ancestor's run.

The one place this rule lives; the tree, the printer and the store all resolve through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, Protocol

from tcc_otel._local._model import ReceivedSpan, SpanKey
from tcc_otel._schema._kinds import run_id_of


class Known(Protocol):
    """What a caller filed before: the runs of earlier spans, and the spans still waiting."""

    def run_of(self, key: SpanKey) -> str | None:
        """The run of an earlier span; ``None`` when that span is unknown or has no run yet."""

    def waiting_under(self, key: SpanKey) -> Iterable[SpanKey]:
        """Earlier spans without a run whose parent is ``key``."""


class _NothingKnown:
    def run_of(self, key: SpanKey) -> str | None:
        return None

    def waiting_under(self, key: SpanKey) -> Iterable[SpanKey]:
        return ()


NOTHING_KNOWN: Final[Known] = _NothingKnown()
"""For spans resolved on their own, with no earlier spans."""


def resolve(spans: Iterable[ReceivedSpan], known: Known = NOTHING_KNOWN) -> dict[SpanKey, str]:
    """The runs of ``spans``, and of earlier spans that were waiting for one of them.

    A span belongs to the run of its ``tcc.runId``; a span without one belongs to the run of
    its nearest ancestor that has one (a span the user opened inside a step). Until such an
    ancestor has arrived the span has no run and is left out; ``known.waiting_under`` hands it
    back once the ancestor comes.

    Returns:
        ``(trace_id, span_id)`` -> run id, for every span this call places.
    """
    found: dict[SpanKey, str] = {}
    waiting: dict[SpanKey, list[SpanKey]] = {}
    placed: list[SpanKey] = []
    for span in spans:
        run_id = run_id_of(span.attributes)
        parent = span.parent_key
        if run_id is None and parent is not None:
            run_id = known.run_of(parent)
            if run_id is None:  # the parent is in this batch, still waiting, or not here yet
                waiting.setdefault(parent, []).append(span.key)
        if run_id is not None and span.key not in found:
            found[span.key] = run_id
            placed.append(span.key)
    while placed:  # hand each placed span's run down to the spans waiting under it
        key = placed.pop()
        for child in (*waiting.get(key, ()), *known.waiting_under(key)):
            if child not in found:
                found[child] = found[key]
                placed.append(child)
    return found


def group_runs(spans: Sequence[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
    """Group spans by run, in order of first arrival; a span outside any run by its trace id.

    Returns:
        Run id (or trace id) -> that group's spans, in the order given.
    """
    found = resolve(spans)
    groups: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        groups.setdefault(found.get(span.key, span.trace_id), []).append(span)
    return groups
