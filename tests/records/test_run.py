"""Run (tcc_otel/_records/_run.py): every setter returns the record, and ``None``
passed to a setter changes nothing."""

from __future__ import annotations

import logging

import pytest
from helpers.records import attributes, only, run_attrs, typed, warnings_of
from opentelemetry.trace import StatusCode

import tcc_otel as tcc
from tcc_otel.testing import CapturedSpans


class TestChaining:
    def test_run_setters_return_the_run(self, captured: CapturedSpans) -> None:
        """Every Run setter returns the run itself."""
        r = tcc.run()
        assert [
            r.prompt("hi", system_prompt="sys") is r,
            r.response("bye") is r,
            r.metadata({"plan": "pro"}, seats=1) is r,
            r.status(0) is r,
        ] == [True, True, True, True]


class TestNoneIsIgnored:
    def test_run_setters(self, captured: CapturedSpans, caplog: pytest.LogCaptureFixture) -> None:
        """``None`` passed to any Run setter changes nothing and logs nothing."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        r = tcc.run(run_id="run-1", session_id=None, conversational=None).prompt("hi")
        r.prompt(None).response(None).metadata(None).status(None).end()
        assert (typed(attributes(only(captured))), only(captured).status.status_code) == (
            typed(run_attrs()),
            StatusCode.UNSET,
        )
        assert warnings_of(caplog) == []
