"""Configuration: ``configure()`` keywords, then ``TCC_*``/``OTEL_*`` env, then defaults."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from opentelemetry.trace import TracerProvider

from tcc_otel._log import logger
from tcc_otel._schema._redact import redact_text, redact_url

PROD_BASE_URL = "https://api.thecontext.company"
DEV_BASE_URL = "https://dev.thecontext.company"
TRACES_PATH = "/v1/traces"
FEEDBACK_PATH = "/v1/feedback"
_TCC_SDK_PATH = "/v1/custom"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_TRUSTED_ORIGINS = frozenset({PROD_BASE_URL, DEV_BASE_URL})
EXPORTERS = frozenset({"tcc", "otlp", "none"})
"""Values of ``TCC_EXPORTER``."""
PROTOCOLS = frozenset({"http/protobuf", "grpc"})
"""Values of ``OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`` tcc_otel sends with, in collector mode."""
COMPRESSIONS = frozenset({"gzip", "none"})
"""Values of ``OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION``."""
GRPC_DEFAULT_ENDPOINT = "http://localhost:4317"
HTTP_DEFAULT_ENDPOINT = "http://localhost:4318"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class Config:
    """Resolved settings; read by the caller's threads and the export thread alike."""

    api_key: str | None
    """``TCC_API_KEY``; ``None`` sends nothing, except to a loopback URL."""
    base_url: str
    """``TCC_BASE_URL``, else chosen by the key's prefix."""
    feedback_url: str
    """``TCC_FEEDBACK_URL``, else ``base_url + /v1/feedback``."""
    allow_unsafe_base_url: bool
    """``TCC_ALLOW_UNSAFE_BASE_URL``: permit origins other than TCC's and loopback."""
    capture_content: bool
    """``TCC_CAPTURE_CONTENT``: record prompts, responses, args, results, tool definitions."""
    debug: bool
    """``TCC_DEBUG``: debug output on logger ``tcc_otel``."""
    sdk_disabled: bool
    """``OTEL_SDK_DISABLED``: record nothing, send nothing."""
    service_name: str | None
    """Overrides ``OTEL_SERVICE_NAME`` in the resource of the provider we own."""
    shutdown_timeout: float
    """Seconds that ``shutdown()`` and process exit may spend delivering what is pending."""
    export_timeout: float
    """Seconds one export request may take."""
    tracer_provider: TracerProvider | None
    """The user's provider to record into; ``None`` uses a private one."""
    exporter: str
    """``TCC_EXPORTER``: ``tcc`` sends to TCC; ``none`` records into the provider only."""
    max_queue_spans: int
    """``TCC_MAX_QUEUE_SPANS``: spans waiting to be sent before new ones are dropped."""
    max_queue_bytes: int
    """``TCC_MAX_QUEUE_BYTES``: compressed bytes waiting to be sent before the oldest go."""
    spool_dir: str | None
    """``TCC_SPOOL_DIR``: keep unsent batches on disk there, across crashes and restarts."""
    otlp_endpoint: str
    """With ``exporter="otlp"``: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, else
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/traces``, else ``http://localhost:4318/v1/traces``;
    over gRPC the collector's address as given (no path added), default
    ``http://localhost:4317``."""
    otlp_headers: dict[str, str]
    """With ``exporter="otlp"``: ``OTEL_EXPORTER_OTLP_TRACES_HEADERS``, else
    ``OTEL_EXPORTER_OTLP_HEADERS`` (``key=value,...``, values URL-encoded)."""
    otlp_protocol: str = "http/protobuf"
    """With ``exporter="otlp"``: ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``, else
    ``OTEL_EXPORTER_OTLP_PROTOCOL``: ``http/protobuf`` or ``grpc`` (``tcc-otel[grpc]``)."""
    otlp_compression: str = "gzip"
    """With ``exporter="otlp"``: ``OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION``, ``gzip`` or
    ``none`` (default gzip)."""
    otlp_insecure: bool = False
    """With ``exporter="otlp"`` over gRPC, for an endpoint without a scheme:
    ``OTEL_EXPORTER_OTLP_(TRACES_)INSECURE``."""
    max_content_bytes: int = 1024 * 1024
    """``TCC_MAX_CONTENT_BYTES``: UTF-8 bytes one content value may hold before it is cut."""
    max_data_url_bytes: int = 32_000
    """``TCC_MAX_DATA_URL_BYTES``: a base64 ``data:`` URL longer than this is replaced by a
    placeholder naming its media type and size."""
    handle_sigterm: bool = True
    """``TCC_HANDLE_SIGTERM``: deliver pending spans on SIGTERM when nobody else handles it."""

    @property
    def traces_url(self) -> str:
        """Where spans are posted."""
        return traces_url(self.base_url)

    @property
    def destination(self) -> tuple[str, str | None]:
        """``(traces URL, API key)`` of the configured destination: the collector's endpoint
        (no key) with ``exporter="otlp"``, else TCC's."""
        if self.exporter == "otlp":
            return self.otlp_endpoint, None
        return self.traces_url, self.api_key


def env_flag(name: str, default: bool) -> bool:
    """Read a boolean environment variable; unknown spellings keep the default."""
    raw = os.environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    return default


def env_float(name: str, default: float) -> float:
    """Read a positive number of seconds from the environment, else the default."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine."""
    try:
        return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS
    except ValueError:
        return False


def check_url(url: str, *, allow_unsafe: bool, what: str) -> str:
    """Return ``url`` without a trailing slash if it is a TCC origin or loopback.

    Raises:
        ValueError: the URL is malformed, or another origin while ``allow_unsafe`` is false.
    """
    url = url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"{what} {redact_url(url)!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(
            f"{what} {redact_url(url)!r} must be an http:// or https:// URL with a host."
        )
    origin = f"{parts.scheme}://{parts.netloc}"
    if allow_unsafe or origin in _TRUSTED_ORIGINS or host in LOOPBACK_HOSTS:
        return url
    raise ValueError(
        f"{what} {redact_url(url)!r} is not The Context Company's endpoint nor this machine, "
        "so the API key will not be sent there. Use https://api.thecontext.company, "
        "https://dev.thecontext.company or a localhost URL, or set "
        "TCC_ALLOW_UNSAFE_BASE_URL=1 (or "
        "configure(allow_unsafe_base_url=True)) if you trust that host."
    )


def env_int(name: str, default: int) -> int:
    """Read a positive whole number from the environment, else the default."""
    return int(env_float(name, default))


def env_first(*names: str) -> tuple[str, str] | None:
    """``(name, value)`` of the first of ``names`` set to a non-blank value."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return name, value
    return None


def grpc_available() -> bool:
    """Whether ``grpcio`` (the ``tcc-otel[grpc]`` extra) can be imported."""
    return importlib.util.find_spec("grpc") is not None


def check_protocol(protocol: str, what: str) -> str:
    """``protocol`` if tcc_otel can send with it.

    Raises:
        ValueError: ``http/json``, an unknown protocol, or ``grpc`` without ``grpcio``.
    """
    value = protocol.strip().lower()
    if value == "http/json":
        raise ValueError(
            f"{what}=http/json is not supported by tcc_otel; use http/protobuf (the default) "
            "or grpc."
        )
    if value not in PROTOCOLS:
        raise ValueError(f"{what}={protocol!r} is not known; use http/protobuf or grpc.")
    if value == "grpc" and not grpc_available():
        raise ValueError(
            f"{what}=grpc needs grpcio: pip install 'tcc-otel[grpc]' (or set http/protobuf "
            "and point the endpoint at the collector's HTTP port, usually 4318)."
        )
    return value


def _check_exporter(mode: str) -> str:
    if mode not in EXPORTERS:
        raise ValueError(
            f"exporter {mode!r} is not known; use one of: {', '.join(sorted(EXPORTERS))}."
        )
    return mode


def traces_url(base_url: str) -> str:
    """The OTLP traces endpoint under ``base_url`` (kept as is if it already ends with it)."""
    return base_url if base_url.endswith(TRACES_PATH) else base_url + TRACES_PATH


def base_url_of(url: str) -> str:
    """``url`` without a trailing endpoint path: the base that other paths hang off.

    ``/v1/custom`` is where ``contextcompany``'s ``tcc_url`` points, so a migrated call works.
    """
    for path in (TRACES_PATH, _TCC_SDK_PATH):
        if url.endswith(path):
            return url[: -len(path)]
    return url


def default_base_url(api_key: str | None) -> str:
    """TCC's dev endpoint for ``dev_`` keys, else production."""
    return DEV_BASE_URL if api_key and api_key.startswith("dev_") else PROD_BASE_URL


def resolve(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    feedback_url: str | None = None,
    allow_unsafe_base_url: bool | None = None,
    capture_content: bool | None = None,
    debug: bool | None = None,
    service_name: str | None = None,
    shutdown_timeout: float | None = None,
    export_timeout: float | None = None,
    tracer_provider: TracerProvider | None = None,
    exporter: str | None = None,
    max_queue_spans: int | None = None,
    max_queue_bytes: int | None = None,
    spool_dir: str | None = None,
    otlp_protocol: str | None = None,
    max_content_bytes: int | None = None,
    max_data_url_bytes: int | None = None,
    handle_sigterm: bool | None = None,
) -> Config:
    """Build a Config: each argument left at ``None`` falls back to its env var, then a default.

    Raises:
        ValueError: a URL fails the safety check (see ``check_url``), or the collector
            protocol cannot be used (see ``check_protocol``).
    """
    refused: list[str] = []  # bad values from the environment: logged, never raised
    if exporter is not None:
        mode = _check_exporter(exporter.strip().lower())
    else:
        mode = os.environ.get("TCC_EXPORTER", "").strip().lower() or "tcc"
        try:
            mode = _check_exporter(mode)
        except ValueError as exc:
            refused.append(f"TCC_EXPORTER: {exc}")
            mode = "none"
    key = api_key if api_key is not None else (os.environ.get("TCC_API_KEY", "").strip() or None)
    unsafe = (
        allow_unsafe_base_url
        if allow_unsafe_base_url is not None
        else env_flag("TCC_ALLOW_UNSAFE_BASE_URL", False)
    )

    def url(given: str | None, env: str, what: str) -> str | None:
        if given:  # passed in code: misuse raises at the call site
            return check_url(given, allow_unsafe=unsafe, what=what)
        raw = os.environ.get(env, "").strip()
        if not raw:
            return None
        try:
            return check_url(raw, allow_unsafe=unsafe, what=env)
        except ValueError as exc:
            refused.append(str(exc))
            return None

    protocol = "http/protobuf"
    if mode == "otlp":
        if otlp_protocol is not None:
            protocol = check_protocol(otlp_protocol, "otlp_protocol")
        else:
            found = env_first("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
            if found is not None:
                try:
                    protocol = check_protocol(found[1], found[0])
                except ValueError as exc:
                    refused.append(str(exc))
                    mode = "none"  # never HTTP to what may be a gRPC port
    base = url(base_url, "TCC_BASE_URL", "The TCC base URL")
    feedback = url(feedback_url, "TCC_FEEDBACK_URL", "The TCC feedback URL")
    if refused:
        logger.error("%s Nothing will be sent.", redact_text(" ".join(refused)))
        key = None  # without a key, nothing leaves this machine
    base = base_url_of(base or default_base_url(key))
    return Config(
        api_key=key,
        base_url=base,
        feedback_url=feedback or base + FEEDBACK_PATH,
        allow_unsafe_base_url=unsafe,
        capture_content=(
            capture_content
            if capture_content is not None
            else env_flag("TCC_CAPTURE_CONTENT", True)
        ),
        debug=debug if debug is not None else env_flag("TCC_DEBUG", False),
        sdk_disabled=env_flag("OTEL_SDK_DISABLED", False),
        service_name=service_name,
        shutdown_timeout=(
            shutdown_timeout
            if shutdown_timeout is not None
            else env_float("TCC_SHUTDOWN_TIMEOUT", 5.0)
        ),
        export_timeout=(
            export_timeout if export_timeout is not None else env_float("TCC_EXPORT_TIMEOUT", 10.0)
        ),
        tracer_provider=tracer_provider,
        exporter=mode,
        max_queue_spans=max_queue_spans or int(env_float("TCC_MAX_QUEUE_SPANS", 200_000)),
        max_queue_bytes=max_queue_bytes or int(env_float("TCC_MAX_QUEUE_BYTES", 64 * 2**20)),
        spool_dir=spool_dir or os.environ.get("TCC_SPOOL_DIR", "").strip() or None,
        otlp_endpoint=_otlp_endpoint(protocol),
        otlp_headers=_otlp_headers(),
        otlp_protocol=protocol,
        otlp_compression=_otlp_compression(),
        otlp_insecure=env_flag("OTEL_EXPORTER_OTLP_TRACES_INSECURE", False)
        or env_flag("OTEL_EXPORTER_OTLP_INSECURE", False),
        max_content_bytes=max_content_bytes or env_int("TCC_MAX_CONTENT_BYTES", 1024 * 1024),
        max_data_url_bytes=max_data_url_bytes or env_int("TCC_MAX_DATA_URL_BYTES", 32_000),
        handle_sigterm=(
            handle_sigterm if handle_sigterm is not None else env_flag("TCC_HANDLE_SIGTERM", True)
        ),
    )


def _otlp_endpoint(protocol: str) -> str:
    """The standard OTLP traces endpoint from ``OTEL_EXPORTER_OTLP_*``: a URL ending in
    ``/v1/traces`` for HTTP; for gRPC the collector's address (no path is appended)."""
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces:
        return traces
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if protocol == "grpc":
        return base or GRPC_DEFAULT_ENDPOINT
    return (base or HTTP_DEFAULT_ENDPOINT).rstrip("/") + TRACES_PATH


def _otlp_compression() -> str:
    """``gzip`` or ``none`` from ``OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION`` (default gzip)."""
    found = env_first("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION")
    if found is None:
        return "gzip"
    value = found[1].lower()
    if value not in COMPRESSIONS:
        logger.warning("%s=%r is not known (gzip, none); gzip is used", found[0], found[1])
        return "gzip"
    return value


def _otlp_headers() -> dict[str, str]:
    """Headers from ``OTEL_EXPORTER_OTLP_TRACES_HEADERS`` or ``OTEL_EXPORTER_OTLP_HEADERS``."""
    raw = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or os.environ.get(
        "OTEL_EXPORTER_OTLP_HEADERS", ""
    )
    headers = {}
    for pair in raw.split(","):
        name, sep, value = pair.partition("=")
        if sep and name.strip():
            headers[unquote(name.strip()).lower()] = unquote(value.strip())
        elif pair.strip():
            logger.warning("OTEL_EXPORTER_OTLP_HEADERS: ignored an entry without '='")
    return headers
