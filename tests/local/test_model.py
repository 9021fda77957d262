"""Tests for tcc_otel._local._model: the received-span model."""

from __future__ import annotations

from dataclasses import replace

from helpers.received import RUN_SPAN, STEP, TRACE


class TestReceivedSpan:
    def test_keys(self) -> None:
        """A span is named by (trace id, span id); its parent likewise, a root has none."""
        assert (STEP.key, STEP.parent_key) == ((TRACE, STEP.span_id), (TRACE, RUN_SPAN.span_id))
        assert RUN_SPAN.parent_key is None

    def test_duration(self) -> None:
        """duration_ms is end minus start in milliseconds."""
        assert STEP.duration_ms == 800.0
        assert replace(STEP, end_ns=STEP.start_ns + 1500).duration_ms == 0.0015

    def test_equality(self) -> None:
        """Whole spans compare by value, attributes and events included."""
        assert replace(STEP) == STEP
        assert replace(STEP, attributes={**STEP.attributes, "x": 1}) != STEP
