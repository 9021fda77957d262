"""Tests for tcc_otel._cli._probe: how ``tcc-otel doctor`` explains what became of its test span
(the doctor tests, cli/test_doctor.py, send it for real)."""

from __future__ import annotations

import pytest

from tcc_otel._cli import _probe
from tcc_otel._export._exporter import Outcome
from tcc_otel._export._http import HttpTransport
from tcc_otel._export._stats import Stats


class TestExplain:
    @pytest.mark.parametrize(
        ("error", "problem"),
        [
            ("ConnectionRefusedError", "connection_refused"),
            ("gaierror", "dns"),
            ("timeout", "timeout"),
            ("TimeoutError", "timeout"),
            ("SSLCertVerificationError", "tls"),
            ("RemoteDisconnected", "unreachable"),
            ("SSLError", "tls"),
            ("HTTP2ProtocolError", "not_grpc"),
        ],
    )
    def test_connection_errors_are_named(self, error: str, problem: str) -> None:
        """Each connection error the exporter reports maps to a plain problem code."""
        probe = _probe.ProbeExporter(HttpTransport("http://127.0.0.1:9/v1/traces"), stats=Stats())
        probe.attempts, probe.last_error = 1, error
        result = _probe.explain(Outcome.DROPPED, probe, "http://h/v1/traces", "tcc")
        assert (result.sent, result.accepted, result.problem) == (True, False, problem)
