"""Strips credentials and secret-looking text from status messages, log lines and URLs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[REDACTED]"
"""What replaces a secret."""

_PATTERNS = (
    # Authorization header values: "Bearer abc", "Basic dXNlcjpwYXNz" (Basic needs 8+
    # characters, so that prose such as "the Basic plan" stays readable).
    (re.compile(r"\b(Bearer)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1 " + REDACTED),
    (re.compile(r"\b(Basic)\s+[A-Za-z0-9+/=]{8,}", re.IGNORECASE), r"\1 " + REDACTED),
    # key=value, key: value, "key": "value" where the key ends in a secret's name; the value
    # is a quoted string (spaces allowed) or a bare word. "max_tokens=4096" is not a secret.
    (
        re.compile(
            r"""(?ix)
            \b([a-z0-9_.-]*(?:api[_-]?key|apikey|token|secret|password|passwd|pwd))
            (["']?\s*[=:]\s*)
            (?:(")[^"]*"|(')[^']*'|[^\s"'&,;]+)
            """
        ),
        lambda m: m[1] + m[2] + _quoted(m[3] or m[4] or ""),
    ),
    # user:password@ in URLs.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1" + REDACTED + "@"),
    # Well-known token shapes, 16+ characters after the prefix.
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), REDACTED),
    (re.compile(r"\bxox[a-z]-[A-Za-z0-9-]{16,}"), REDACTED),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{16,}"), REDACTED),
    (re.compile(r"\bservice_[A-Za-z0-9_-]{16,}"), REDACTED),
)


def _quoted(quote: str) -> str:
    return quote + REDACTED + quote


def redact_text(text: str, *secrets: str) -> str:
    """Return ``text`` with credentials, secret-looking tokens and each of ``secrets`` replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_url(url: str) -> str:
    """Return ``url`` without user info, query or fragment, safe to put in a log line."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return REDACTED
