"""``tcc-otel doctor``: show the resolved configuration, send one test span, explain the result."""

from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from opentelemetry.sdk.resources import SERVICE_NAME, Resource

from tcc_otel._config import (
    EXPORTERS,
    Config,
    check_protocol,
    check_url,
    env_first,
    env_flag,
    is_loopback,
    resolve,
)
from tcc_otel._export._batch import Batch
from tcc_otel._export._exporter import Exporter, Outcome
from tcc_otel._export._grpc import GrpcTransport
from tcc_otel._export._http import HttpTransport
from tcc_otel._export._reply import Reply, Transport
from tcc_otel._export._spool import inventory
from tcc_otel._export._stats import Stats
from tcc_otel._export._wire import origin, span
from tcc_otel._schema import _keys as attrs
from tcc_otel._schema._redact import redact_text, redact_url
from tcc_otel._version import __version__

DEFAULT_BUDGET = 5.0
"""Seconds the test span may take, retries included."""
SPAN_NAME = "invoke_agent tcc-otel doctor"
"""Name of the test span."""
_SCOPE = "tcc_otel"
_PREFIX_CHARS = 6  # never show more of the key than this
_MIN_KEY_FOR_PREFIX = 10  # a shorter key shows no prefix at all
_OTLP_INTERNAL = 1
_STATUS_OK = 1
_PROTOCOL_VARS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


@dataclass
class Setting:
    """One resolved value and where it came from (an env var name, or ``default``)."""

    value: Any
    source: str
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "source": self.source}
        if self.note is not None:
            out["note"] = self.note
        return out


@dataclass
class Result:
    """What became of the test span."""

    sent: bool
    accepted: bool
    problem: str | None
    """``None`` when accepted; else a short code such as ``connection_refused`` or ``http_401``."""
    message: str
    status: int | None = None
    attempts: int = 0


@dataclass
class Report:
    """Everything ``doctor`` found; rendered as text or JSON."""

    settings: dict[str, Setting]
    run_id: str
    result: Result
    pending_spans: int | None
    log: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        config = {name: s.as_json() for name, s in self.settings.items()}
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
        }


class _ProbeExporter(Exporter):
    """The real exporter over the real transport, remembering each attempt's status (HTTP
    status or gRPC code), counter key and connection error."""

    def __init__(self, transport: Transport, **kwargs: Any) -> None:
        super().__init__(transport, **kwargs)
        self.attempts = 0
        self.last_status: int | None = None
        self.last_error: str | None = None
        self.last_reason = ""

    def _attempt(self, batch: Batch, timeout: float) -> Reply:
        reply = super()._attempt(batch, timeout)
        self.attempts += 1
        self.last_status, self.last_error = reply.status, reply.error
        self.last_reason = reply.reason
        return reply


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
    refused = _refused_urls(config)
    settings = _settings(config, refused)
    run_id = f"doctor-{uuid.uuid4()}"
    pending = _pending_spans(config.spool_dir)
    result = _send(config, refused, settings["endpoint"].value, run_id, budget)
    return Report(settings, run_id, result, pending)


def render(report: Report) -> str:
    """The report as plain text."""
    labels = {
        "endpoint": "endpoint",
        "protocol": "protocol",
        "exporter": "exporter",
        "api_key": "API key",
        "capture_content": "capture content",
        "spool_dir": "spool dir",
        "sdk_disabled": "OTEL_SDK_DISABLED",
        "service_name": "service name",
    }
    rows: list[tuple[str, str, str]] = []
    for name, label in labels.items():
        s = report.settings[name]
        value = _show(s.value)
        if name == "spool_dir" and report.pending_spans is not None:
            value += f" ({report.pending_spans} spooled spans waiting)"
        source = s.source + (f"; {s.note}" if s.note else "")
        rows.append((label, value, source))
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    lines = [f"tcc-otel doctor (tcc-otel {__version__})", ""]
    lines += [f"  {a:<{width}}  {b:<{value_width}}  from {c}" for a, b, c in rows]
    result = report.result
    verdict = "ACCEPTED" if result.accepted else ("NOT ACCEPTED" if result.sent else "NOT SENT")
    lines += ["", f"test span ({SPAN_NAME}, tcc.runId={report.run_id}): {verdict}"]
    lines.append(f"  {result.message}")
    return "\n".join(lines) + "\n"


# --- configuration ------------------------------------------------------------------------------


def _refused_urls(config: Config) -> list[str]:
    """Why ``resolve()`` refused a URL from the environment (it then drops the key)."""
    out = []
    for name in ("TCC_BASE_URL", "TCC_FEEDBACK_URL"):
        raw = os.environ.get(name, "").strip()
        if not raw:
            continue
        try:
            check_url(raw, allow_unsafe=config.allow_unsafe_base_url, what=name)
        except ValueError as exc:
            out.append(str(exc))
    return out


def _settings(config: Config, refused: list[str]) -> dict[str, Setting]:
    env = os.environ
    key = env.get("TCC_API_KEY", "").strip() or None  # resolve() drops it if a URL is refused
    if config.exporter == "otlp" or _protocol_refusal() is not None:
        found = env_first("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
        if config.exporter == "otlp":
            url: str | None = config.otlp_endpoint
        else:  # the protocol was refused: show the address as given, nothing was derived
            url = None if found is None else found[1]
        endpoint_source = "default" if found is None else found[0]
        endpoint = Setting(None if url is None else redact_url(url), endpoint_source)
        if config.otlp_headers:
            endpoint.note = "headers: " + ", ".join(sorted(config.otlp_headers))
    elif env.get("TCC_BASE_URL", "").strip() and not refused:
        endpoint = Setting(redact_url(config.traces_url), "TCC_BASE_URL")
    else:
        why = "default (dev_ key)" if config.base_url.endswith("//dev.thecontext.company") else ""
        endpoint = Setting(redact_url(config.traces_url), why or "default")
        if refused:
            endpoint.note = "TCC_BASE_URL/TCC_FEEDBACK_URL refused, see below"
    raw_exporter = env.get("TCC_EXPORTER", "").strip()
    exporter = Setting(config.exporter, "TCC_EXPORTER" if raw_exporter else "default")
    if raw_exporter and raw_exporter.lower() not in EXPORTERS:
        exporter.note = f"{raw_exporter!r} is not known (tcc, otlp, none): nothing is sent"
    elif _protocol_refusal() is not None:
        exporter.note = "'otlp', but the protocol cannot be used: nothing is sent"
    return {
        "endpoint": endpoint,
        "protocol": _protocol(config),
        "exporter": exporter,
        "api_key": Setting(_mask(key), "TCC_API_KEY"),
        "capture_content": _flag(config.capture_content, "TCC_CAPTURE_CONTENT"),
        "spool_dir": Setting(config.spool_dir, "TCC_SPOOL_DIR" if config.spool_dir else "default"),
        "sdk_disabled": _flag(config.sdk_disabled, "OTEL_SDK_DISABLED"),
        "service_name": _service_name(),
    }


def _protocol(config: Config) -> Setting:
    """The OTLP protocol spans are sent with; the env var counts in collector mode only."""
    found = env_first(*_PROTOCOL_VARS)
    refusal = _protocol_refusal()
    if found is not None and refusal is not None:
        return Setting(found[1], found[0], "cannot be used, see below")
    if config.exporter == "otlp":
        return Setting(config.otlp_protocol, "default" if found is None else found[0])
    setting = Setting("http/protobuf", "default")
    if found is not None and config.exporter == "tcc":
        setting.note = f"{found[0]} applies with TCC_EXPORTER=otlp only"
    return setting


def _protocol_refusal() -> str | None:
    """Why ``resolve()`` refused the collector protocol from the environment (it then sends
    nothing); ``None`` when it did not."""
    found = env_first(*_PROTOCOL_VARS)
    if found is None or os.environ.get("TCC_EXPORTER", "").strip().lower() != "otlp":
        return None
    try:
        check_protocol(found[1], found[0])
    except ValueError as exc:
        return str(exc)
    return None


def _flag(value: bool, name: str) -> Setting:
    """A boolean setting; the env var is named as the source only when it was understood."""
    raw = os.environ.get(name, "").strip()
    understood = bool(raw) and env_flag(name, not value) == value
    return Setting(value, name if understood else "default")


def _mask(key: str | None) -> str | None:
    """The key's first characters and an ellipsis; nothing at all for a short key."""
    if key is None:
        return None
    if len(key) < _MIN_KEY_FOR_PREFIX:
        return "set (too short to show a prefix)"
    return key[:_PREFIX_CHARS] + "…"


def _service_name() -> Setting:
    name = Resource.create({}).attributes.get(SERVICE_NAME)
    if os.environ.get("OTEL_SERVICE_NAME", "").strip():
        source = "OTEL_SERVICE_NAME"
    elif "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        source = "OTEL_RESOURCE_ATTRIBUTES"
    else:
        source = "default"
    return Setting(None if name is None else str(name), source)


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
    """Last line of defence: the key never reaches the output."""
    raw = os.environ.get("TCC_API_KEY", "").strip()
    for secret in {key or "", raw}:
        if len(secret) > _PREFIX_CHARS:
            text = text.replace(secret, "[REDACTED]")
    return text


# --- the test span ------------------------------------------------------------------------------


def _send(config: Config, refused: list[str], shown_url: str, run_id: str, budget: float) -> Result:
    if refused:
        return Result(
            False,
            False,
            "unsafe_url",
            " ".join(redact_text(r) for r in refused)
            + " Because of this the API key is not used and nothing is sent.",
        )
    refusal = _protocol_refusal()
    if refusal is not None:
        return Result(
            False,
            False,
            "protocol_unsupported",
            f"{refusal} Until then tcc_otel sends nothing (never HTTP to what may be a gRPC port).",
        )
    if config.exporter == "none":
        return Result(
            False,
            False,
            "exporter_none",
            "TCC_EXPORTER=none: spans are recorded into your own tracer provider only, so "
            "tcc_otel sends nothing itself. Unset TCC_EXPORTER (or set it to tcc) to send to "
            "The Context Company, or to otlp to send through a collector.",
        )
    grpc = config.exporter == "otlp" and config.otlp_protocol == "grpc"
    transport: Transport
    if grpc:
        transport = GrpcTransport(
            config.otlp_endpoint,
            headers=config.otlp_headers,
            insecure=config.otlp_insecure,
            gzip=config.otlp_compression == "gzip",
        )
    elif config.exporter == "otlp":
        gzip = config.otlp_compression == "gzip"
        transport = HttpTransport(config.otlp_endpoint, headers=config.otlp_headers, gzip=gzip)
    elif not config.api_key and not is_loopback(config.traces_url):
        return Result(
            False,
            False,
            "no_api_key",
            f"TCC_API_KEY is not set, and {shown_url} is not on this machine, so nothing "
            "can be sent. Set TCC_API_KEY, or point TCC_BASE_URL at a local receiver "
            "such as `tcc-otel dev`.",
        )
    else:
        transport = HttpTransport(config.traces_url, api_key=config.api_key)
    exporter = _ProbeExporter(
        transport,
        stats=Stats(),
        timeout=min(config.export_timeout, budget),
        retry_budget=budget,
    )
    try:
        outcome = exporter.deliver(_test_batch(config, run_id))
    finally:
        exporter.shutdown()
    if grpc:
        result = _explain_grpc(outcome, exporter, shown_url)
    else:
        result = _explain(outcome, exporter, shown_url, config.exporter)
    if result.accepted and config.sdk_disabled:
        result.message += (
            " Note: OTEL_SDK_DISABLED is true, so your application records and sends nothing."
        )
    return result


def _test_batch(config: Config, run_id: str) -> Batch:
    resource = Resource.create({SERVICE_NAME: config.service_name} if config.service_name else {})
    now = time.time_ns()
    batch = Batch()
    batch.add(
        origin(resource.attributes, _SCOPE, __version__, resource_schema=resource.schema_url),
        span(
            trace_id=random.getrandbits(128) or 1,
            span_id=random.getrandbits(64) or 1,
            parent_id=None,
            parent_remote=False,
            name=SPAN_NAME,
            kind=_OTLP_INTERNAL,
            start_ns=now - 1_000_000,
            end_ns=now,
            attrs={
                attrs.TCC_TYPE: "run",
                attrs.TCC_RUN_ID: run_id,
                attrs.GEN_AI_OPERATION_NAME: "invoke_agent",
                attrs.GEN_AI_AGENT_NAME: "tcc-otel doctor",
            },
            status_code=_STATUS_OK,
        ),
    )
    return batch


_TIMED_OUT = (
    "timeout",
    "timed out waiting for {url}: a firewall, proxy or overloaded endpoint may be in the way.",
)
_ERRORS: dict[str, tuple[str, str]] = {
    # type names of the connection errors that ``HttpTransport.send`` reports
    "ConnectionRefusedError": (
        "connection_refused",
        "connection refused: nothing listens at {url}. Is the receiver (or collector) running, "
        "and is the port right?",
    ),
    "gaierror": (
        "dns",
        "DNS lookup failed for {url}: the host name does not resolve. Check the spelling and "
        "your network.",
    ),
    "timeout": _TIMED_OUT,  # socket.timeout before Python 3.10
    "TimeoutError": _TIMED_OUT,
    "SSLCertVerificationError": (
        "tls",
        "TLS certificate of {url} could not be verified (a proxy intercepting HTTPS?).",
    ),
    # names that ``GrpcTransport`` gives the calls that got no answer
    "SSLError": (
        "tls",
        "TLS handshake with {url} failed: does it serve TLS? For a plaintext endpoint write "
        "http://, or set OTEL_EXPORTER_OTLP_INSECURE=true for one without a scheme.",
    ),
    "HTTP2ProtocolError": (
        "not_grpc",
        "{url} does not speak gRPC: is it the collector's OTLP/HTTP port (usually 4318)? Use "
        "its gRPC port (usually 4317), or set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf.",
    ),
}


def _explain(outcome: Outcome, probe: _ProbeExporter, url: str, mode: str) -> Result:
    status, error, n = probe.last_status, probe.last_error, probe.attempts
    if outcome is Outcome.DELIVERED:
        return Result(True, True, None, f"{url} accepted it (HTTP {status}).", status, n)
    if status in (401, 403):
        hint = (
            "check the headers in OTEL_EXPORTER_OTLP_HEADERS"
            if mode == "otlp"
            else "check TCC_API_KEY (a dev_ key belongs to https://dev.thecontext.company)"
        )
        message = f"{url} rejected the key (HTTP {status}): {hint}."
        return Result(True, False, f"http_{status}", message, status, n)
    if status == 404:
        message = (
            f"{url} answered HTTP 404: wrong base URL? It should be the address that serves "
            "/v1/traces (TCC_BASE_URL is the base, without /v1/traces)."
        )
        return Result(True, False, "http_404", message, status, n)
    if status is not None:
        retried = f" after {n} attempts" if n > 1 else ""
        message = f"{url} answered HTTP {status}{retried}; the span was not accepted."
        return Result(True, False, f"http_{status}", message, status, n)
    if error is None:  # the budget ran out before any attempt completed
        return Result(True, False, "timeout", f"no answer from {url} in time.", None, n)
    problem, template = _ERRORS.get(
        error, ("unreachable", "could not reach {url} (" + error + ").")
    )
    return Result(True, False, problem, template.format(url=url), None, n)


def _explain_grpc(outcome: Outcome, probe: _ProbeExporter, url: str) -> Result:
    status, error, n = probe.last_status, probe.last_error, probe.attempts
    code = probe.last_reason.upper()[len("grpc_") :] if probe.last_reason else ""
    if outcome is Outcome.DELIVERED:
        return Result(True, True, None, f"{url} accepted it (gRPC OK).", status, n)
    if error is not None:
        problem, template = _ERRORS.get(
            error, ("unreachable", "could not reach {url} (" + error + ").")
        )
        return Result(True, False, problem, template.format(url=url), status, n)
    if not code or status is None:  # the budget ran out before any attempt completed
        return Result(True, False, "timeout", f"no answer from {url} in time.", status, n)
    problem = probe.last_reason
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        message = (
            f"{url} refused the credentials (gRPC {code}): check the headers in "
            "OTEL_EXPORTER_OTLP_HEADERS."
        )
    elif code == "UNIMPLEMENTED":
        message = (
            f"{url} answered gRPC UNIMPLEMENTED: it does not serve OTLP traces (is it an "
            "OpenTelemetry collector's gRPC receiver?), or it does not take gzip (set "
            "OTEL_EXPORTER_OTLP_COMPRESSION=none)."
        )
    else:
        retried = f" after {n} attempts" if n > 1 else ""
        message = f"{url} answered gRPC {code}{retried}; the span was not accepted."
    return Result(True, False, problem, message, status, n)
