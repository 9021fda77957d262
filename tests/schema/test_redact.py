"""Redaction of status messages (README section 1): each secret shape the contract lists is
replaced, and short lookalikes are left alone."""

from __future__ import annotations

import pytest
from opentelemetry.trace import StatusCode

import tcc_otel as tcc
from tcc_otel._schema._redact import REDACTED, redact_text
from tcc_otel.testing import CapturedSpans

SECRETS = [
    pytest.param(
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVU",
        f"Authorization: Bearer {REDACTED}",
        id="bearer",
    ),
    pytest.param("bearer abc123", f"bearer {REDACTED}", id="bearer-lowercase"),
    pytest.param(
        "Authorization: Basic dXNlcjpwYXNzd29yZA==",
        f"Authorization: Basic {REDACTED}",
        id="basic",
    ),
    pytest.param(
        "call failed: api_key=abc123 rejected",
        f"call failed: api_key={REDACTED} rejected",
        id="api_key",
    ),
    pytest.param("x-api-key: abc123", f"x-api-key: {REDACTED}", id="api-key-header"),
    pytest.param("APIKEY = abc123", f"APIKEY = {REDACTED}", id="apikey-spaced"),
    pytest.param("GET /v1?token=abc123&page=2", f"GET /v1?token={REDACTED}&page=2", id="token"),
    pytest.param("access_token: 'abc123'", f"access_token: '{REDACTED}'", id="access_token"),
    pytest.param("client_secret=s3cr3t", f"client_secret={REDACTED}", id="secret"),
    pytest.param('password="hunter2"', f'password="{REDACTED}"', id="password-quoted"),
    pytest.param("password=p@ss:w0rd!", f"password={REDACTED}", id="password-symbols"),
    pytest.param(
        'password="correct horse battery staple"',
        f'password="{REDACTED}"',
        id="password-quoted-with-spaces",
    ),
    pytest.param(
        '{"user": "bob", "password": "hunter2"}',
        f'{{"user": "bob", "password": "{REDACTED}"}}',
        id="password-json",
    ),
    pytest.param(
        "connect https://bob:pw@db.example/x failed",
        f"connect https://{REDACTED}@db.example/x failed",
        id="url-userinfo",
    ),
    pytest.param(
        "postgres://admin:s3cret@db:5432/app",
        f"postgres://{REDACTED}@db:5432/app",
        id="url-userinfo-postgres",
    ),
    pytest.param("key sk-abcdefghijklmnop1234 revoked", f"key {REDACTED} revoked", id="sk"),
    pytest.param(
        "key sk-proj-AbCdEfGhIjKlMnOpQrSt was revoked", f"key {REDACTED} was revoked", id="sk-proj"
    ),
    pytest.param("slack xoxb-123456789012-abcdefghij", f"slack {REDACTED}", id="xoxb"),
    pytest.param("slack xoxp-1234-5678-abcdefghijkl", f"slack {REDACTED}", id="xoxp"),
    pytest.param("slack xoxe-1-abcdefghijklmnopqrst", f"slack {REDACTED}", id="xoxe"),
    pytest.param("github ghp_abcdefghijklmnopqrstuvwxyz0123456789", f"github {REDACTED}", id="ghp"),
    pytest.param("github gho_16charactersABCD", f"github {REDACTED}", id="gho"),
    pytest.param("github ghs_abcdefghijklmnop", f"github {REDACTED}", id="ghs"),
    pytest.param("svc service_abcdefghijklmnop", f"svc {REDACTED}", id="service"),
    pytest.param(
        "two: Bearer abc and sk-abcdefghijklmnop1234",
        f"two: Bearer {REDACTED} and {REDACTED}",
        id="several",
    ),
]
"""(message, message as stored) for every secret shape of the contract."""

LOOKALIKES = [
    pytest.param("model sk-abc123 not found", id="short-sk"),
    pytest.param("risk-assessment-framework-v2 failed", id="sk-inside-a-word"),
    pytest.param("xoxb-123 is not a token", id="short-xox"),
    pytest.param("branch ghp_abc is gone", id="short-gh"),
    pytest.param("service_name and service_account are required", id="short-service"),
    pytest.param("see https://example.com/docs?page=2#top", id="url-without-userinfo"),
    pytest.param("mail bob@example.com bounced", id="email"),
    pytest.param("tokenizer failed on input", id="token-word"),
    pytest.param("HTTP 401: invalid credentials", id="no-secret"),
]
"""Messages that look a little like secrets but hold none; stored unchanged."""


class TestRedactText:
    @pytest.mark.parametrize(("message", "stored"), SECRETS)
    def test_secret_is_replaced(self, message: str, stored: str) -> None:
        """Each secret shape of the contract is replaced by the redaction marker."""
        assert redact_text(message) == stored

    @pytest.mark.parametrize("message", LOOKALIKES)
    def test_lookalike_is_kept(self, message: str) -> None:
        """Short or partial lookalikes of secrets are left as they are."""
        assert redact_text(message) == message

    def test_explicit_secret_is_replaced(self) -> None:
        """A secret passed explicitly is replaced wherever it appears."""
        assert redact_text("key k3y-value sent; k3y-value refused", "k3y-value") == (
            f"key {REDACTED} sent; {REDACTED} refused"
        )


class TestStoredStatusMessages:
    @pytest.mark.parametrize(("message", "stored"), SECRETS)
    def test_error_message_is_redacted(
        self, captured: CapturedSpans, message: str, stored: str
    ) -> None:
        """A secret in ``run.error()``'s message never reaches the span's status."""
        tcc.run().error(message)
        assert [(s.status.status_code, s.status.description) for s in captured.spans] == [
            (StatusCode.ERROR, stored)
        ]

    @pytest.mark.parametrize("message", LOOKALIKES)
    def test_lookalike_message_is_kept(self, captured: CapturedSpans, message: str) -> None:
        """A status message without secrets is stored as given."""
        tcc.run().error(message)
        assert [s.status.description for s in captured.spans] == [message]

    def test_every_way_of_failing_is_redacted(self, captured: CapturedSpans) -> None:
        """Step, tool call and ``status(2)`` messages and caught exceptions are redacted too."""
        r = tcc.run().prompt("hi")
        r.step().error("Bearer abc123")
        r.tool_call("search").error("token=abc123")
        with pytest.raises(ConnectionError), r.tool_call("fetch"):
            raise ConnectionError("https://bob:pw@api.example refused")
        r.status(2, "password=hunter2").end()
        assert [(s.name, s.status.description) for s in captured.spans] == [
            ("chat", f"Bearer {REDACTED}"),
            ("execute_tool search", f"token={REDACTED}"),
            ("execute_tool fetch", f"ConnectionError: https://{REDACTED}@api.example refused"),
            ("invoke_agent", f"password={REDACTED}"),
        ]
