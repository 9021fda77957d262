"""Spans of other instrumentations followed while open inside a run (``_export._inside``)."""

from __future__ import annotations

from tcc_otel._export._inside import EVENTS_PER_SPAN, Inside
from tcc_otel._schema._calls import Event

EVENT = Event("gen_ai.user.message", {"content": "Hi"}, {})


def test_events_of_a_followed_span_until_it_ends() -> None:
    inside = Inside()
    record = object()
    inside.started(7, record)
    assert inside.logged(7, EVENT)
    assert not inside.logged(8, EVENT)  # not followed: the caller leaves it alone
    opened = inside.ended(7)
    assert opened is not None
    assert (opened.record, opened.events) == (record, [EVENT])
    assert inside.ended(7) is None


def test_a_second_start_keeps_what_the_first_gathered() -> None:
    """Each of our processors on one provider sees the start: the first one counts."""
    inside = Inside()
    inside.started(1, "step")
    inside.logged(1, EVENT)
    inside.started(1, None)
    opened = inside.ended(1)
    assert opened is not None
    assert (opened.record, len(opened.events)) == ("step", 1)


def test_bounded() -> None:
    """Spans that never end cannot grow it: past the bound the oldest is forgotten (counted)."""
    counted: list[str] = []
    inside = Inside(limit=3, count=lambda name, n: counted.extend([name] * n))
    for span_id in range(5):
        inside.started(span_id, None)
    assert [inside.ended(i) is not None for i in range(5)] == [False, False, True, True, True]
    assert counted == ["followed_spans_forgotten"] * 2


def test_events_per_span_bounded() -> None:
    counted: list[str] = []
    inside = Inside(count=lambda name, n: counted.extend([name] * n))
    inside.started(1, None)
    for _ in range(EVENTS_PER_SPAN + 10):
        inside.logged(1, EVENT)
    opened = inside.ended(1)
    assert opened is not None
    assert len(opened.events) == EVENTS_PER_SPAN
    assert counted == ["content_events_dropped"] * 10


def test_clear() -> None:
    inside = Inside()
    inside.started(1, None)
    inside.clear()
    assert inside.ended(1) is None
