"""Configuration (README section 3): base and feedback URL resolution, URL safety in the
environment and in code, and ``OTEL_SDK_DISABLED``."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel.testing import CapturedSpans, capture

PROD = "https://api.thecontext.company"
DEV = "https://dev.thecontext.company"
SECRET_KEY = "tcc_live_0123456789abcdef0123"

UNSAFE_URLS = [
    "https://evil.example",
    "http://api.thecontext.company",
    "http://dev.thecontext.company",
    "https://api.thecontext.company.evil.example",
    "https://evil.example/api.thecontext.company",
    "http://localhost.evil.example:4318",
    "http://127.0.0.1@evil.example",
    "https://api.thecontext.company@evil.example",
]
"""Origins that are neither TCC's two endpoints nor this machine."""

LOOPBACK_URLS = [
    ("http://localhost:4318", "http://localhost:4318"),
    ("http://127.0.0.1:4318/", "http://127.0.0.1:4318"),
    ("http://[::1]:4318", "http://[::1]:4318"),
    ("https://localhost", "https://localhost"),
]
"""Loopback URLs as given, and the base URL each resolves to."""


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    """Fresh clients made by the test, shut down afterwards."""
    made: list[Client] = []
    yield made
    for client in made:
        client.shutdown(timeout=1.0)


def fresh(clients: list[Client]) -> Client:
    """A new Client; it reads the environment when its config is first used."""
    client = Client()
    clients.append(client)
    return client


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    """Messages logged on ``tcc_otel`` at exactly ``level``."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "tcc_otel" and record.levelno == level
    ]


class TestBaseUrl:
    def test_production_by_default(self, clients: list[Client]) -> None:
        """With no key and no URL the base is TCC's production endpoint."""
        config = fresh(clients).config
        assert (config.base_url, config.traces_url) == (PROD, PROD + "/v1/traces")

    def test_production_key(self, monkeypatch: pytest.MonkeyPatch, clients: list[Client]) -> None:
        """A key without the ``dev_`` prefix goes to production."""
        monkeypatch.setenv("TCC_API_KEY", "tcc_live_abc")
        assert fresh(clients).config.base_url == PROD

    def test_dev_key(self, monkeypatch: pytest.MonkeyPatch, clients: list[Client]) -> None:
        """A ``dev_`` key from the environment goes to TCC's dev endpoint."""
        monkeypatch.setenv("TCC_API_KEY", "dev_abc")
        config = fresh(clients).config
        assert (config.base_url, config.traces_url) == (DEV, DEV + "/v1/traces")

    def test_dev_key_in_code(self, clients: list[Client]) -> None:
        """A ``dev_`` key passed to ``configure`` goes to TCC's dev endpoint."""
        client = fresh(clients)
        client.configure(api_key="dev_abc", exporter="none")
        assert client.config.base_url == DEV

    def test_env_base_url_wins(
        self, monkeypatch: pytest.MonkeyPatch, clients: list[Client]
    ) -> None:
        """``TCC_BASE_URL`` overrides the key's default; a trailing ``/v1/traces`` or slash is
        dropped from the base."""
        monkeypatch.setenv("TCC_API_KEY", "dev_abc")
        monkeypatch.setenv("TCC_BASE_URL", "http://localhost:4318/v1/traces")
        config = fresh(clients).config
        assert (config.base_url, config.traces_url, config.feedback_url) == (
            "http://localhost:4318",
            "http://localhost:4318/v1/traces",
            "http://localhost:4318/v1/feedback",
        )

    def test_env_is_read_lazily(
        self, monkeypatch: pytest.MonkeyPatch, clients: list[Client]
    ) -> None:
        """A client reads the environment when first used, not when it is created."""
        client = fresh(clients)
        monkeypatch.setenv("TCC_BASE_URL", "https://dev.thecontext.company/")
        assert client.config.base_url == DEV


class TestFeedbackUrl:
    def test_default(self, clients: list[Client]) -> None:
        """The feedback URL defaults to ``{base}/v1/feedback``."""
        assert fresh(clients).config.feedback_url == PROD + "/v1/feedback"

    def test_follows_dev_key(self, monkeypatch: pytest.MonkeyPatch, clients: list[Client]) -> None:
        """With a ``dev_`` key the feedback URL is on the dev endpoint."""
        monkeypatch.setenv("TCC_API_KEY", "dev_abc")
        assert fresh(clients).config.feedback_url == DEV + "/v1/feedback"

    def test_env_override(self, monkeypatch: pytest.MonkeyPatch, clients: list[Client]) -> None:
        """``TCC_FEEDBACK_URL`` replaces the default and leaves the base alone."""
        monkeypatch.setenv("TCC_FEEDBACK_URL", "http://127.0.0.1:9000/feedback")
        config = fresh(clients).config
        assert (config.base_url, config.feedback_url) == (PROD, "http://127.0.0.1:9000/feedback")

    def test_unsafe_in_code_raises(self, clients: list[Client]) -> None:
        """A feedback URL on another origin passed in code raises ValueError."""
        with pytest.raises(ValueError, match="is not The Context Company's endpoint"):
            fresh(clients).configure(feedback_url="https://evil.example/v1/feedback")


class TestUrlSafetyInCode:
    @pytest.mark.parametrize("url", UNSAFE_URLS)
    def test_configure_refuses(self, captured: CapturedSpans, url: str) -> None:
        """``tcc.configure(base_url=...)`` with another origin raises ValueError and leaves the
        configuration in force unchanged."""
        with pytest.raises(ValueError, match="is not The Context Company's endpoint nor this"):
            tcc.configure(base_url=url)
        tcc.run(run_id="still-recorded").prompt("hi").end()
        assert [(span.attributes or {}).get("tcc.runId") for span in captured.spans] == [
            "still-recorded"
        ]

    @pytest.mark.parametrize("url", UNSAFE_URLS)
    def test_run_refuses(self, captured: CapturedSpans, url: str) -> None:
        """``tcc.run(tcc_url=...)`` with another origin raises ValueError and records nothing."""
        with pytest.raises(ValueError, match="is not The Context Company's endpoint nor this"):
            tcc.run(api_key="k", tcc_url=url)
        assert captured.spans == []

    @pytest.mark.parametrize(("url", "base"), LOOPBACK_URLS)
    def test_loopback_allowed_in_configure(
        self, clients: list[Client], url: str, base: str
    ) -> None:
        """``localhost``, ``127.0.0.1`` and ``[::1]`` are accepted by ``configure``."""
        client = fresh(clients)
        client.configure(base_url=url, exporter="none")
        assert client.config.base_url == base

    @pytest.mark.parametrize(("url", "base"), LOOPBACK_URLS)
    def test_loopback_allowed_per_run(self, clients: list[Client], url: str, base: str) -> None:
        """``localhost``, ``127.0.0.1`` and ``[::1]`` are accepted as a run's ``tcc_url``."""
        assert fresh(clients).pipeline_for(None, url).base_url == base

    @pytest.mark.parametrize("url", [PROD, DEV, PROD + "/", DEV + "/v1/traces"])
    def test_tcc_endpoints_allowed(self, clients: list[Client], url: str) -> None:
        """TCC's production and dev endpoints are accepted."""
        client = fresh(clients)
        client.configure(base_url=url, exporter="none")
        assert client.config.base_url == url.replace("/v1/traces", "").rstrip("/")

    def test_allow_unsafe_in_code(self, clients: list[Client]) -> None:
        """``allow_unsafe_base_url=True`` accepts another origin."""
        client = fresh(clients)
        client.configure(
            base_url="https://collector.example:4318", allow_unsafe_base_url=True, exporter="none"
        )
        assert client.config.base_url == "https://collector.example:4318"

    def test_allow_unsafe_env_in_code(
        self, monkeypatch: pytest.MonkeyPatch, clients: list[Client]
    ) -> None:
        """``TCC_ALLOW_UNSAFE_BASE_URL=1`` accepts another origin passed in code, for runs too."""
        monkeypatch.setenv("TCC_ALLOW_UNSAFE_BASE_URL", "1")
        client = fresh(clients)
        client.configure(base_url="https://collector.example", exporter="none")
        assert (
            client.config.base_url,
            client.pipeline_for("k", "https://other.example/").base_url,
        ) == ("https://collector.example", "https://other.example")


class TestUrlSafetyInEnv:
    def test_unsafe_env_url_logs_and_sends_nothing(
        self,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        clients: list[Client],
    ) -> None:
        """An unsafe ``TCC_BASE_URL`` does not raise: one error is logged, without the key, and
        nothing is sent (no export, no feedback)."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        monkeypatch.setenv("TCC_API_KEY", SECRET_KEY)
        monkeypatch.setenv("TCC_BASE_URL", "https://evil.example")
        client = fresh(clients)
        run = client.start_run(None, None, None, None, None)
        run.prompt("hi").end()
        errors = logged(caplog, logging.ERROR)
        assert (
            len(errors),
            "'https://evil.example'" in errors[0],
            "Nothing will be sent" in errors[0],
            SECRET_KEY in caplog.text,
        ) == (1, True, True, False)
        assert (client.config.api_key or None, client.pipeline().processor) == (None, None)
        assert client.submit_feedback(run.run_id, "thumbs_up", None) is False

    def test_unsafe_env_feedback_url_sends_nothing(
        self,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        clients: list[Client],
    ) -> None:
        """An unsafe ``TCC_FEEDBACK_URL`` does not raise: an error is logged and the key is not
        used."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        monkeypatch.setenv("TCC_API_KEY", SECRET_KEY)
        monkeypatch.setenv("TCC_FEEDBACK_URL", "https://evil.example/v1/feedback")
        client = fresh(clients)
        config = client.config
        assert (
            len(logged(caplog, logging.ERROR)),
            config.api_key or None,
            "evil.example" in config.feedback_url,
            SECRET_KEY in caplog.text,
        ) == (1, None, False, False)

    def test_unsafe_env_url_does_not_break_configure(
        self,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        clients: list[Client],
    ) -> None:
        """With an unsafe ``TCC_BASE_URL`` in the environment, ``configure()`` with other options
        does not raise: it logs one error and sends nothing, as on first use."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        monkeypatch.setenv("TCC_API_KEY", SECRET_KEY)
        monkeypatch.setenv("TCC_BASE_URL", "https://evil.example")
        client = fresh(clients)
        client.configure(service_name="agent")
        errors = logged(caplog, logging.ERROR)
        assert (
            len(errors),
            "'https://evil.example'" in errors[0],
            client.config.api_key or None,
            SECRET_KEY in caplog.text,
        ) == (1, True, None, False)

    @pytest.mark.parametrize("flag", ["1", "true"])
    def test_allow_unsafe_env(
        self, monkeypatch: pytest.MonkeyPatch, clients: list[Client], flag: str
    ) -> None:
        """``TCC_ALLOW_UNSAFE_BASE_URL`` accepts another origin from the environment."""
        monkeypatch.setenv("TCC_ALLOW_UNSAFE_BASE_URL", flag)
        monkeypatch.setenv("TCC_BASE_URL", "https://collector.example/")
        config = fresh(clients).config
        assert (config.base_url, config.allow_unsafe_base_url) == (
            "https://collector.example",
            True,
        )

    @pytest.mark.parametrize(("url", "base"), LOOPBACK_URLS)
    def test_loopback_env(
        self,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        clients: list[Client],
        url: str,
        base: str,
    ) -> None:
        """A loopback ``TCC_BASE_URL`` is accepted without any error logged."""
        monkeypatch.setenv("TCC_BASE_URL", url)
        assert (fresh(clients).config.base_url, logged(caplog, logging.ERROR)) == (base, [])


class TestSdkDisabled:
    def test_nothing_recorded(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``OTEL_SDK_DISABLED=true`` records nothing, and the API keeps working."""
        monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
        with capture() as spans:
            with tcc.run() as r:
                r.prompt("hi").response("bye")
                with r.step() as s:
                    s.prompt("p").response("r").tokens(1, 2, 3)
                    s.tool_call("search").end()
            tcc.step(r.run_id).prompt("p").response("r").end()
            recorded = spans.spans
        assert (recorded, r.ended, r.span.is_recording()) == ([], True, False)
