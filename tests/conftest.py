"""Shared fixtures: a clean environment, in-memory capture, a loopback OTLP receiver, the
application's own tracing."""

from __future__ import annotations

import os

# Before tcc_otel is imported: our own bugs must fail tests, and no outside config may leak in.
os.environ["TCC_OTEL_RAISE_INTERNAL_ERRORS"] = "1"
for _name in list(os.environ):
    if _name.startswith(("TCC_", "OTEL_")) and _name != "TCC_OTEL_RAISE_INTERNAL_ERRORS":
        del os.environ[_name]

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from helpers.clients import fresh_client  # noqa: E402
from helpers.team import TeamTracing, global_team  # noqa: E402
from helpers.tracing import UserTracing  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402

from tcc_otel._client import Client  # noqa: E402
from tcc_otel._local._server import Receiver  # noqa: E402
from tcc_otel.testing import CapturedSpans, capture  # noqa: E402


@pytest.fixture
def captured() -> Iterator[CapturedSpans]:
    """tcc_otel's module functions record into memory for the test's duration."""
    with capture() as spans:
        yield spans


@pytest.fixture
def client() -> Iterator[Client]:
    """A fresh default client behind ``tcc_otel``'s functions, shut down in teardown."""
    with fresh_client() as fresh:
        yield fresh


@pytest.fixture
def user() -> Iterator[UserTracing]:
    """The user's own TracerProvider, never installed globally."""
    tracing = UserTracing()
    yield tracing
    tracing.provider.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback OTLP receiver that keeps every span it gets, duplicates included."""
    with Receiver(port=0) as running:
        yield running


@pytest.fixture
def team() -> Iterator[TeamTracing]:
    """The team's own tracing, set as the global tracer provider for the test."""
    with global_team() as tracing:
        yield tracing


@pytest.fixture(params=["default", "tracer_provider"])
def provider(request: pytest.FixtureRequest) -> Iterator[TracerProvider | None]:
    """``None`` for the default mode (tcc_otel owns the export), else the user's provider."""
    if request.param == "default":
        yield None
        return
    user_provider = TracerProvider()
    yield user_provider
    user_provider.shutdown()


@pytest.fixture(autouse=True)
def _cost_extra(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as without the ``tcc-otel[cost]`` extra, except those marked ``cost_extra``:
    the schema tests describe the base schema, tests/schema/test_cost.py what the extra adds."""
    from tcc_otel._schema import _cost as _cost

    if request.node.get_closest_marker("cost_extra") is None:
        monkeypatch.setattr(_cost, "_prices", None)
    _cost.estimate.cache_clear()
