"""``tcc-otel doctor``: report the configuration resolved from the environment, with where each
value came from, and what became of one test span (``_probe``), as text or JSON."""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from opentelemetry.sdk.resources import SERVICE_NAME

from tcc_otel._cli._genai import Found, findings, installed
from tcc_otel._cli._probe import SPAN_NAME, URL_SETTINGS, Result, send
from tcc_otel._config import Config, resolve
from tcc_otel._env import DEFAULT, SHOWN_KEY_CHARS
from tcc_otel._export._batch import GZIP
from tcc_otel._export._offload import default_processes, supported
from tcc_otel._export._spool import inventory
from tcc_otel._schema._redact import redact_text, redact_url
from tcc_otel._version import __version__

DEFAULT_BUDGET = 5.0
"""Seconds the test span may take, retries included."""
_LABELS = {
    "endpoint": "endpoint",
    "protocol": "protocol",
    "exporter": "exporter",
    "api_key": "API key",
    "capture_content": "capture content",
    "spool_dir": "spool dir",
    "encoding": "encoding",
    "sdk_disabled": "OTEL_SDK_DISABLED",
    "service_name": "service name",
}
"""The rows of the report, in order, and their labels in the text."""


@dataclass
class Row:
    """One value of the report and where it came from (an env var name, or ``default``)."""

    value: Any
    source: str
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "source": self.source}
        if self.note is not None:
            out["note"] = self.note
        return out


@dataclass
class Report:
    """Everything ``doctor`` found; rendered as text or JSON."""

    rows: dict[str, Row]
    run_id: str
    result: Result
    pending_spans: int | None
    log: list[str] = field(default_factory=list)
    instrumentations: list[Found] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        config = {name: row.as_json() for name, row in self.rows.items()}
        config["spool_dir"]["pending_spans"] = self.pending_spans
        return {
            "config": config,
            "test_span": {
                "run_id": self.run_id,
                "name": SPAN_NAME,
                "sent": self.result.sent,
                "accepted": self.result.accepted,
                "problem": self.result.problem,
                "status": self.result.status,
                "attempts": self.result.attempts,
                "message": self.result.message,
            },
            "ok": self.result.accepted,
            "log": self.log,
            "instrumentations": [found._asdict() for found in self.instrumentations],
        }


class _Collect(logging.Handler):
    """Keeps the library's log lines during a doctor run, so they go into the report."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname}: {record.getMessage()}")


def run(*, as_json: bool, budget: float, write: Callable[[str], None]) -> int:
    """Diagnose the configuration from the environment and write the report.

    Args:
        as_json: Write one JSON object instead of text.
        budget: Seconds the test span may take, retries included.
        write: Where the output goes.

    Returns:
        0 when the test span was accepted, else 1.
    """
    collect = _Collect()
    library = logging.getLogger("tcc_otel")
    saved = library.propagate
    library.addHandler(collect)
    library.propagate = False  # the report explains failures; no second copy on stderr
    try:
        config = resolve()
        report = diagnose(config, budget=budget)
    finally:
        library.removeHandler(collect)
        library.propagate = saved
    report.log = [redact_text(line, config.api_key or "") for line in collect.lines]
    text = json.dumps(report.as_json(), indent=2) + "\n" if as_json else render(report)
    write(_scrub(text, config.api_key))
    return 0 if report.result.accepted else 1


def diagnose(config: Config, *, budget: float) -> Report:
    """Describe ``config`` and send the test span where it says spans go."""
    rows = _rows(config)
    run_id = f"doctor-{uuid.uuid4()}"
    pending = _pending_spans(config.spool_dir)
    found = findings(installed(), os.environ)
    return Report(rows, run_id, send(config, run_id, budget), pending, instrumentations=found)


def render(report: Report) -> str:
    """The report as plain text."""
    rows: list[tuple[str, str, str]] = []
    for name, label in _LABELS.items():
        row = report.rows[name]
        value = _show(row.value)
        if name == "spool_dir" and report.pending_spans is not None:
            value += f" ({report.pending_spans} spooled spans waiting)"
        source = row.source + (f"; {row.note}" if row.note else "")
        rows.append((label, value, source))
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    lines = [f"tcc-otel doctor (tcc-otel {__version__})", ""]
    lines += [f"  {a:<{width}}  {b:<{value_width}}  from {c}" for a, b, c in rows]
    result = report.result
    verdict = "ACCEPTED" if result.accepted else ("NOT ACCEPTED" if result.sent else "NOT SENT")
    lines += ["", f"test span ({SPAN_NAME}, tcc.runId={report.run_id}): {verdict}"]
    lines.append(f"  {result.message}")
    if report.instrumentations:
        lines += ["", "GenAI instrumentations installed (their calls inside runs become steps):"]
        lines += [
            f"  {found.package} {found.version} ({found.family}): content {found.content}"
            for found in report.instrumentations
        ]
    return "\n".join(lines) + "\n"


def _rows(config: Config) -> dict[str, Row]:
    """The report's rows, each with the source ``resolve()`` recorded for it."""
    sources = config.sources
    name = config.resource().attributes.get(SERVICE_NAME)
    return {
        "endpoint": _endpoint(config),
        "protocol": _protocol(config),
        "exporter": _exporter(config),
        # the key that TCC_API_KEY holds, masked, even when resolve() did not use it
        "api_key": Row(config.env_texts.get("api_key"), "TCC_API_KEY"),
        "capture_content": Row(config.capture_content, sources["capture_content"]),
        "spool_dir": Row(config.spool_dir, sources["spool_dir"]),
        "encoding": _encoding(config),
        "sdk_disabled": Row(config.sdk_disabled, sources["sdk_disabled"]),
        "service_name": Row(None if name is None else str(name), sources["service_name"]),
    }


def _encoding(config: Config) -> Row:
    """Where spans are encoded (``encode_process``) and which gzip compresses them."""
    mode = config.encode_process if supported() else "off"
    where = "this process" if mode == "off" else f"up to {default_processes()} helper processes"
    note = None if supported() else "helper processes need CPython on a POSIX system"
    return Row(f"{mode}: {where}; gzip: {GZIP}", config.sources["encode_process"], note)


def _endpoint(config: Config) -> Row:
    """Where spans go: the collector's endpoint in collector mode, else TCC's."""
    if config.exporter == "otlp" or "otlp_protocol" in config.refused:
        # with the protocol refused nothing was derived: the address as given
        url = (
            config.otlp_endpoint
            if config.exporter == "otlp"
            else config.env_texts.get("otlp_endpoint")
        )
        row = Row(None if url is None else redact_url(url), config.sources["otlp_endpoint"])
        if config.otlp_headers:
            row.note = "headers: " + ", ".join(sorted(config.otlp_headers))
        return row
    refused = any(name in config.refused for name in URL_SETTINGS)
    shown = redact_url(config.traces_url)
    if config.sources["base_url"] != DEFAULT and not refused:
        return Row(shown, config.sources["base_url"])
    dev = config.base_url.endswith("//dev.thecontext.company")
    row = Row(shown, "default (dev_ key)" if dev else DEFAULT)
    if refused:
        row.note = "TCC_BASE_URL/TCC_FEEDBACK_URL refused, see below"
    return row


def _protocol(config: Config) -> Row:
    """The OTLP protocol spans are sent with; the env var counts in collector mode only."""
    source = config.sources["otlp_protocol"]
    if "otlp_protocol" in config.refused:
        return Row(config.env_texts["otlp_protocol"], source, "cannot be used, see below")
    if config.exporter == "otlp":
        return Row(config.otlp_protocol, source)
    row = Row(config.otlp_protocol, DEFAULT)
    if source != DEFAULT and config.exporter == "tcc":
        row.note = f"{source} applies with TCC_EXPORTER=otlp only"
    return row


def _exporter(config: Config) -> Row:
    row = Row(config.exporter, config.sources["exporter"])
    if "exporter" in config.refused:
        given = config.env_texts["exporter"]
        row.note = f"{given!r} is not known (tcc, otlp, none): nothing is sent"
    elif "otlp_protocol" in config.refused:
        row.note = "'otlp', but the protocol cannot be used: nothing is sent"
    return row


def _pending_spans(directory: str | None) -> int | None:
    """Spans waiting in every spool file of ``directory``, for any destination (``None``
    without a spool)."""
    if directory is None:
        return None
    return sum(found.spans for folder in inventory(directory) for found in folder.files)


def _show(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _scrub(text: str, key: str | None) -> str:
    """Last line of defence: the key never reaches the output, even one resolve() dropped."""
    raw = os.environ.get("TCC_API_KEY", "").strip()
    for secret in {key or "", raw}:
        if len(secret) > SHOWN_KEY_CHARS:
            text = text.replace(secret, "[REDACTED]")
    return text
