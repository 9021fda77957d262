"""Configuration (README section 3): base and feedback URL resolution, URL safety in the
environment and in code, ``OTEL_SDK_DISABLED``, and the table of settings: each read from code or
its environment variables, where it came from, and the ``configure()`` keywords."""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel._config import KEYWORDS, SETTINGS, Config, ConfigureOptions, resolve
from tcc_otel._env import DEFAULT, IN_CODE
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


# --- the table of settings -----------------------------------------------------------------------

ENV_SAMPLES: dict[str, tuple[str, object]] = {
    "api_key": ("tcc_live_0123456789", "tcc_live_0123456789"),
    "base_url": ("http://localhost:4318/v1/traces", "http://localhost:4318"),
    "feedback_url": ("http://localhost:9/feedback", "http://localhost:9/feedback"),
    "allow_unsafe_base_url": ("yes", True),
    "capture_content": ("OFF", False),
    "content_once": ("yes", True),
    "debug": ("1", True),
    "sdk_disabled": ("true", True),
    "shutdown_timeout": ("2.5", 2.5),
    "export_timeout": ("3", 3.0),
    "exporter": (" NONE ", "none"),
    "max_queue_spans": ("10", 10),
    "max_queue_bytes": ("1e3", 1000),
    "spool_dir": ("/tmp/spool", "/tmp/spool"),
    "otlp_endpoint": ("http://collector:4318/custom", "http://collector:4318/custom"),
    "otlp_headers": ("X-Team=a%20b", {"x-team": "a b"}),
    "otlp_protocol": ("http/protobuf", "http/protobuf"),
    "otlp_compression": ("NONE", "none"),
    "otlp_insecure": ("on", True),
    "max_content_bytes": ("100", 100),
    "max_data_url_bytes": ("200", 200),
    "handle_sigterm": ("false", False),
    "share_spans": ("off", False),
    "encode_process": (" Off ", "off"),
}
"""For each setting read from the environment: a text for its first variable, and the value."""

CODE_SAMPLES: ConfigureOptions = {
    "api_key": "dev_0123456789",
    "base_url": "http://localhost:4318",
    "feedback_url": "http://127.0.0.1:9/feedback",
    "allow_unsafe_base_url": True,
    "capture_content": False,
    "content_once": True,
    "debug": True,
    "service_name": "agent",
    "shutdown_timeout": 0.5,
    "export_timeout": 2.0,
    "tracer_provider": TracerProvider(),
    "exporter": "none",
    "max_queue_spans": 7,
    "max_queue_bytes": 4096,
    "spool_dir": "/tmp/spool",
    "otlp_protocol": "http/protobuf",
    "max_content_bytes": 10,
    "max_data_url_bytes": 20,
    "handle_sigterm": False,
    "share_spans": False,
    "encode_process": "on",
}
"""For each ``configure()`` keyword: a value that is used as given."""


def _type_text(annotation: object) -> str:
    """An annotation as written (they are strings under ``from __future__ import annotations``)."""
    return str(getattr(annotation, "__forward_arg__", annotation))


class TestSettings:
    def test_samples_cover_every_setting(self) -> None:
        """The samples below name every setting read from the environment or code, so a new
        setting cannot go untested."""
        assert (
            set(ENV_SAMPLES),
            set(CODE_SAMPLES),
        ) == (
            {name for name, how in SETTINGS.items() if how.env},
            set(KEYWORDS),
        )

    @pytest.mark.parametrize("name", sorted(ENV_SAMPLES))
    def test_from_the_environment(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        """Each setting is read from its first environment variable, which is its source."""
        var = SETTINGS[name].env[0]
        text, value = ENV_SAMPLES[name]
        monkeypatch.setenv(var, text)
        config = resolve()
        assert (getattr(config, name), config.sources[name], config.refused) == (value, var, {})

    @pytest.mark.parametrize(
        ("name", "var"),
        [(name, var) for name, how in SETTINGS.items() for var in how.env[1:]],
    )
    def test_later_variables(self, monkeypatch: pytest.MonkeyPatch, name: str, var: str) -> None:
        """A later variable is read when the earlier ones are unset or blank, and loses to
        them when they are set."""
        first = SETTINGS[name].env[0]
        text, _ = ENV_SAMPLES[name]
        monkeypatch.setenv(first, " ")
        monkeypatch.setenv(var, text)
        alone = resolve().sources[name]
        monkeypatch.setenv(first, text)
        assert (alone, resolve().sources[name]) == (var, first)

    @pytest.mark.parametrize("name", sorted(CODE_SAMPLES))
    def test_from_code(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        """A keyword wins over the environment and is reported as given in code."""
        for var in SETTINGS[name].env:
            monkeypatch.setenv(var, ENV_SAMPLES[name][0])
        value = dict(CODE_SAMPLES)[name]
        given: dict[str, Any] = {name: value}
        config = resolve(**given)
        assert (getattr(config, name), config.sources[name]) == (value, IN_CODE)

    def test_defaults(self) -> None:
        """With nothing given every setting has the default its field declares."""
        config = resolve()
        assert {name: getattr(config, name) for name in SETTINGS} == {
            name: getattr(Config(), name) for name in SETTINGS
        }
        assert (set(config.sources.values()), config.env_texts, config.refused) == (
            {DEFAULT},
            {},
            {},
        )

    def test_env_texts_mask_secrets(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The text of each variable read is kept as given; the key and headers only masked."""
        monkeypatch.setenv("TCC_API_KEY", SECRET_KEY)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer secret-token")
        monkeypatch.setenv("TCC_SPOOL_DIR", " /tmp/spool ")
        assert resolve().env_texts == {
            "api_key": "tcc_li…",
            "otlp_headers": "author…",
            "spool_dir": "/tmp/spool",
        }

    @pytest.mark.parametrize(
        ("var", "text"),
        [
            ("TCC_CAPTURE_CONTENT", "maybe"),
            ("TCC_SHUTDOWN_TIMEOUT", "-1"),
            ("TCC_EXPORT_TIMEOUT", "nan"),
            ("TCC_MAX_QUEUE_SPANS", "inf"),
            ("TCC_MAX_CONTENT_BYTES", "many"),
        ],
    )
    def test_text_not_understood_is_ignored(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, var: str, text: str
    ) -> None:
        """A flag or number that is not understood counts as unset: the default, no log."""
        caplog.set_level(logging.DEBUG, logger="tcc_otel")
        monkeypatch.setenv(var, text)
        config = resolve()
        name = next(name for name, how in SETTINGS.items() if var in how.env)
        assert (getattr(config, name), config.sources[name], caplog.records) == (
            getattr(Config(), name),
            DEFAULT,
            [],
        )

    def test_ignored_text_lets_the_next_variable_count(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An ignored traces-specific flag leaves the general one in force; an understood one
        wins over it."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "maybe")
        ignored = resolve()
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "false")
        understood = resolve()
        assert [
            (config.otlp_insecure, config.sources["otlp_insecure"])
            for config in (ignored, understood)
        ] == [(True, "OTEL_EXPORTER_OTLP_INSECURE"), (False, "OTEL_EXPORTER_OTLP_TRACES_INSECURE")]

    def test_unknown_compression_is_warned(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An unknown compression is logged once and gzip used."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "br")
        config = resolve(exporter="otlp")
        assert (config.otlp_compression, config.sources["otlp_compression"]) == ("gzip", DEFAULT)
        assert logged(caplog, logging.WARNING) == [
            "OTEL_EXPORTER_OTLP_COMPRESSION='br' is not known (gzip, none); gzip is used"
        ]

    def test_empty_keywords(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``0`` or ``""`` for a limit, URL or directory falls back to the environment, as
        ``None`` does; ``False`` and ``""`` elsewhere are used as given."""
        monkeypatch.setenv("TCC_MAX_QUEUE_SPANS", "5")
        monkeypatch.setenv("TCC_SPOOL_DIR", "/tmp/spool")
        monkeypatch.setenv("TCC_BASE_URL", "http://localhost:1")
        monkeypatch.setenv("TCC_CAPTURE_CONTENT", "true")
        monkeypatch.setenv("TCC_API_KEY", "from-env")
        config = resolve(
            max_queue_spans=0, spool_dir="", base_url="", capture_content=False, api_key=""
        )
        names = ("max_queue_spans", "spool_dir", "base_url", "capture_content", "api_key")
        assert [(getattr(config, n), config.sources[n]) for n in names] == [
            (5, "TCC_MAX_QUEUE_SPANS"),
            ("/tmp/spool", "TCC_SPOOL_DIR"),
            ("http://localhost:1", "TCC_BASE_URL"),
            (False, IN_CODE),
            ("", IN_CODE),
        ]

    def test_refused_value_keeps_its_source(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An exporter the environment names wrongly is refused: nothing is sent, and the
        variable stays its source, with the text and the reason kept."""
        monkeypatch.setenv("TCC_API_KEY", SECRET_KEY)
        monkeypatch.setenv("TCC_EXPORTER", "Bogus")
        config = resolve()
        assert (
            config.exporter,
            config.api_key,
            config.sources["exporter"],
            config.env_texts["exporter"],
            config.refused,
        ) == (
            "none",
            None,
            "TCC_EXPORTER",
            "Bogus",
            {
                "exporter": "TCC_EXPORTER: exporter 'bogus' is not known; use one of: none, "
                "otlp, tcc."
            },
        )

    def test_protocol_outside_collector_mode(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Outside collector mode the protocol variable is neither used nor checked, but still
        named as where the protocol was given."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        config = resolve()
        assert (config.otlp_protocol, config.sources["otlp_protocol"], config.refused) == (
            "http/protobuf",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            {},
        )

    @pytest.mark.parametrize(
        ("env", "name", "source"),
        [
            ({}, None, DEFAULT),
            (
                {"OTEL_RESOURCE_ATTRIBUTES": "service.name=billing"},
                "billing",
                "OTEL_RESOURCE_ATTRIBUTES",
            ),
            ({"OTEL_SERVICE_NAME": "billing"}, "billing", "OTEL_SERVICE_NAME"),
        ],
    )
    def test_service_name_source(
        self, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], name: str | None, source: str
    ) -> None:
        """Without ``service_name`` the source is where the SDK's resource takes the name."""
        for var, text in env.items():
            monkeypatch.setenv(var, text)
        config = resolve()
        shown = config.resource().attributes.get("service.name") if name else None
        assert (shown, config.sources["service_name"]) == (name, source)

    def test_unknown_keyword_raises(self) -> None:
        """A keyword that is not a setting is a TypeError, as for any function."""
        with pytest.raises(TypeError, match="unexpected keyword argument 'capture_contents'"):
            resolve(capture_contents=False)  # type: ignore[call-arg]


class TestConfigureKeywords:
    def test_public_configure_takes_exactly_the_settings(self) -> None:
        """``tcc.configure()``, ``ConfigureOptions`` and ``KEYWORDS`` name the same keywords in
        the same order, all keyword-only, with each field's type or ``None``."""
        params = inspect.signature(tcc.configure).parameters
        fields = {one.name: _type_text(one.type) for one in dataclasses.fields(Config)}
        expected = {
            name: fields[name] if fields[name].endswith("| None") else fields[name] + " | None"
            for name in KEYWORDS
        }
        assert (
            {name: _type_text(p.annotation) for name, p in params.items()},
            {name: _type_text(t) for name, t in ConfigureOptions.__annotations__.items()},
            {p.kind for p in params.values()},
            {p.default for p in params.values()},
        ) == (expected, expected, {inspect.Parameter.KEYWORD_ONLY}, {None})
        assert list(params) == list(ConfigureOptions.__annotations__) == list(KEYWORDS)

    def test_public_configure_documents_every_keyword(self) -> None:
        """Each keyword of ``tcc.configure()`` has an ``Args`` entry naming its variable."""
        doc = tcc.configure.__doc__ or ""
        args = doc.split("Args:")[1].split("Raises:")[0]
        entries = {
            line.strip().split(":")[0]: line
            for line in args.splitlines()
            if line.startswith(" " * 8) and not line.startswith(" " * 12)
        }
        assert list(entries) == list(KEYWORDS)
        assert [
            name for name in KEYWORDS if SETTINGS[name].env and SETTINGS[name].env[0] not in doc
        ] == []

    def test_client_configure_passes_every_keyword(self, clients: list[Client]) -> None:
        """``Client.configure()`` hands each keyword to ``resolve()``."""
        client = fresh(clients)
        options: ConfigureOptions = {**CODE_SAMPLES, "debug": False}  # debug would stay on
        client.configure(**options)
        config = client.config
        assert {name: config.sources[name] for name in KEYWORDS} == dict.fromkeys(KEYWORDS, IN_CODE)
