"""``tcc-otel doctor``'s test span: send one span where the configuration sends spans, through
the real exporter and transport, and explain what became of it."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from tcc_otel._config import Config, is_loopback
from tcc_otel._export._batch import Batch
from tcc_otel._export._destination import SCOPE
from tcc_otel._export._exporter import Exporter, Outcome
from tcc_otel._export._grpc import GrpcTransport
from tcc_otel._export._http import HttpTransport
from tcc_otel._export._reply import Reply, Transport
from tcc_otel._export._stats import Stats
from tcc_otel._export._wire import origin, span
from tcc_otel._schema import _keys as attrs
from tcc_otel._schema._redact import redact_text, redact_url
from tcc_otel._version import __version__

SPAN_NAME = "invoke_agent tcc-otel doctor"
"""Name of the test span."""
URL_SETTINGS = ("base_url", "feedback_url")
"""Settings whose refusal (an unsafe URL) withholds the key."""
_OTLP_INTERNAL = 1
_STATUS_OK = 1


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


class ProbeExporter(Exporter):
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


def send(config: Config, run_id: str, budget: float) -> Result:
    """Send the test span of run ``run_id`` to ``config.destination`` within ``budget`` seconds,
    retries included; or say why nothing can be sent."""
    url, key = config.destination
    shown = redact_url(url)
    unsafe = [config.refused[name] for name in URL_SETTINGS if name in config.refused]
    if unsafe:
        return Result(
            False,
            False,
            "unsafe_url",
            " ".join(redact_text(r) for r in unsafe)
            + " Because of this the API key is not used and nothing is sent.",
        )
    refusal = config.refused.get("otlp_protocol")
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
            url,
            headers=config.otlp_headers,
            insecure=config.otlp_insecure,
            gzip=config.otlp_compression == "gzip",
        )
    elif config.exporter == "otlp":
        gzip = config.otlp_compression == "gzip"
        transport = HttpTransport(url, headers=config.otlp_headers, gzip=gzip)
    elif not key and not is_loopback(url):
        return Result(
            False,
            False,
            "no_api_key",
            f"TCC_API_KEY is not set, and {shown} is not on this machine, so nothing "
            "can be sent. Set TCC_API_KEY, or point TCC_BASE_URL at a local receiver "
            "such as `tcc-otel dev`.",
        )
    else:
        transport = HttpTransport(url, api_key=key)
    exporter = ProbeExporter(
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
        result = explain_grpc(outcome, exporter, shown)
    else:
        result = explain(outcome, exporter, shown, config.exporter)
    if result.accepted and config.sdk_disabled:
        result.message += (
            " Note: OTEL_SDK_DISABLED is true, so your application records and sends nothing."
        )
    return result


def _test_batch(config: Config, run_id: str) -> Batch:
    resource = config.resource()
    now = time.time_ns()
    batch = Batch()
    batch.add(
        origin(resource.attributes, SCOPE, __version__, resource_schema=resource.schema_url),
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


def _unreachable(error: str, url: str) -> tuple[str, str]:
    """The problem code and message for the connection error named ``error``."""
    problem, template = _ERRORS.get(error, ("unreachable", "could not reach {url} ({error})."))
    return problem, template.format(url=url, error=error)


def explain(outcome: Outcome, probe: ProbeExporter, url: str, mode: str) -> Result:
    """What became of a test span sent over OTLP/HTTP to ``url`` in exporter ``mode``."""
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
    return Result(True, False, *_unreachable(error, url), None, n)


def explain_grpc(outcome: Outcome, probe: ProbeExporter, url: str) -> Result:
    """What became of a test span sent over gRPC to ``url``."""
    status, error, n = probe.last_status, probe.last_error, probe.attempts
    code = probe.last_reason.upper()[len("grpc_") :] if probe.last_reason else ""
    if outcome is Outcome.DELIVERED:
        return Result(True, True, None, f"{url} accepted it (gRPC OK).", status, n)
    if error is not None:
        return Result(True, False, *_unreachable(error, url), status, n)
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
