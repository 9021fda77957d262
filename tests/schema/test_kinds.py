"""Which record a span carries (tcc_otel/_schema/_kinds.py), read from its attributes: whether it
is a run's own span, and which run it belongs to."""

from __future__ import annotations

from typing import Any

import pytest

from tcc_otel._schema._kinds import is_run, run_id_of


class TestIsRun:
    @pytest.mark.parametrize(
        ("attributes", "expected"),
        [
            pytest.param({"tcc.type": "run", "tcc.runId": "run-1"}, True, id="run"),
            pytest.param({"tcc.type": "step", "tcc.runId": "run-1"}, False, id="step"),
            pytest.param({"tcc.type": "tool_call", "tcc.runId": "run-1"}, False, id="tool_call"),
            pytest.param({"tcc.runId": "run-1"}, False, id="application-span-in-a-run"),
            pytest.param({"tcc.type": "RUN"}, False, id="other-case"),
            pytest.param({}, False, id="no-attributes"),
            pytest.param(None, False, id="none"),
        ],
    )
    def test_only_a_runs_own_span(self, attributes: dict[str, Any] | None, expected: bool) -> None:
        """Only a span whose ``tcc.type`` is ``run`` is a run's own span: not its steps and tool
        calls, nor an application's span inside it."""
        assert is_run(attributes) is expected


class TestRunIdOf:
    @pytest.mark.parametrize(
        ("attributes", "expected"),
        [
            pytest.param({"tcc.type": "run", "tcc.runId": "run-1"}, "run-1", id="run"),
            pytest.param({"tcc.type": "step", "tcc.runId": "run-1"}, "run-1", id="step"),
            pytest.param({"tcc.runId": "run-1", "http.method": "GET"}, "run-1", id="app-span"),
            pytest.param({"http.method": "GET"}, None, id="outside-any-run"),
            pytest.param({"tcc.runId": ""}, None, id="empty"),
            pytest.param({"tcc.runId": 7}, None, id="not-a-string"),
            pytest.param({"tcc.runId": ("run-1",)}, None, id="array"),
            pytest.param(None, None, id="none"),
        ],
    )
    def test_the_run_id_attribute(
        self, attributes: dict[str, Any] | None, expected: str | None
    ) -> None:
        """A span belongs to the run its ``tcc.runId`` names, if that is a non-empty string;
        else to none."""
        assert run_id_of(attributes) == expected
