"""Every setting declared once: each field of ``Config`` names its ``configure()`` keyword, its
``TCC_*``/``OTEL_*`` environment variables and its default; ``resolve()`` derives the values from
those declarations and records where each one came from (``tcc-otel doctor`` reads that)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlsplit

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.trace import TracerProvider

from tcc_otel._env import (
    DEFAULT,
    IN_CODE,
    Found,
    Setting,
    count,
    find,
    flag,
    headers,
    positive,
    setting,
    settings_of,
)
from tcc_otel._log import logger
from tcc_otel._schema._redact import redact_text, redact_url

if TYPE_CHECKING:
    from typing_extensions import Unpack

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
ENCODE_PROCESS = frozenset({"auto", "on", "off"})
"""Values of ``TCC_ENCODE_PROCESS``."""
GRPC_DEFAULT_ENDPOINT = "http://localhost:4317"
HTTP_DEFAULT_ENDPOINT = "http://localhost:4318"


def _one_of(values: frozenset[str]) -> Callable[[str], str]:
    """A parser taking one of ``values``, any case."""

    def parse(text: str) -> str:
        value = text.lower()
        if value not in values:
            raise ValueError(f"is not known ({', '.join(sorted(values))})")
        return value

    return parse


_encode_process = _one_of(ENCODE_PROCESS)
_compression = _one_of(COMPRESSIONS)


@dataclass(frozen=True)
class Config:
    """Resolved settings; read by the caller's threads and the export thread alike. Each field
    declared with ``setting()`` is a setting (see ``SETTINGS``)."""

    api_key: str | None = setting(None, "TCC_API_KEY", secret=True)
    """``None`` sends nothing, except to a loopback URL."""
    base_url: str = setting(PROD_BASE_URL, "TCC_BASE_URL", empty_is_unset=True)
    """Where spans go; when not given, chosen by the key's prefix."""
    feedback_url: str = setting(
        PROD_BASE_URL + FEEDBACK_PATH, "TCC_FEEDBACK_URL", empty_is_unset=True
    )
    """When not given, ``base_url + /v1/feedback``."""
    allow_unsafe_base_url: bool = setting(False, "TCC_ALLOW_UNSAFE_BASE_URL", parse=flag)
    """Permit origins other than TCC's and loopback."""
    capture_content: bool = setting(True, "TCC_CAPTURE_CONTENT", parse=flag)
    """Record prompts, responses, args, results, tool definitions."""
    content_once: bool = setting(False, "TCC_CONTENT_ONCE", parse=flag)
    """Prompts, responses, tool arguments and results under the GenAI names only."""
    debug: bool = setting(False, "TCC_DEBUG", parse=flag)
    """Debug output on logger ``tcc_otel``."""
    sdk_disabled: bool = setting(False, "OTEL_SDK_DISABLED", parse=flag, keyword=False)
    """Record nothing, send nothing."""
    service_name: str | None = setting(None)
    """Overrides ``OTEL_SERVICE_NAME`` in the resource of the provider we own."""
    shutdown_timeout: float = setting(5.0, "TCC_SHUTDOWN_TIMEOUT", parse=positive)
    """Seconds that ``shutdown()`` and process exit may spend delivering what is pending."""
    export_timeout: float = setting(10.0, "TCC_EXPORT_TIMEOUT", parse=positive)
    """Seconds one export request may take."""
    tracer_provider: TracerProvider | None = setting(None)  # noqa: RUF009 -- a Field
    """The user's provider to record into; ``None`` uses a private one."""
    exporter: str = setting("tcc", "TCC_EXPORTER")
    """``tcc`` sends to TCC; ``otlp`` to a collector; ``none`` records into the provider only."""
    max_queue_spans: int = setting(200_000, "TCC_MAX_QUEUE_SPANS", parse=count, empty_is_unset=True)
    """Spans waiting to be sent before new ones are dropped."""
    max_queue_bytes: int = setting(
        64 * 2**20, "TCC_MAX_QUEUE_BYTES", parse=count, empty_is_unset=True
    )
    """Compressed bytes waiting to be sent before the oldest go."""
    spool_dir: str | None = setting(None, "TCC_SPOOL_DIR", empty_is_unset=True)
    """Keep unsent batches on disk there, across crashes and restarts."""
    otlp_endpoint: str = setting(
        HTTP_DEFAULT_ENDPOINT + TRACES_PATH,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        keyword=False,
    )
    """With ``exporter="otlp"``: the traces endpoint as given, else the general endpoint +
    ``/v1/traces``, else ``http://localhost:4318/v1/traces``; over gRPC the collector's address
    as given (no path added), default ``http://localhost:4317``."""
    otlp_headers: dict[str, str] = setting(  # noqa: RUF009 -- a Field, built per Config
        {},
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_HEADERS",
        parse=headers,
        keyword=False,
        secret=True,
    )
    """With ``exporter="otlp"``: ``key=value,...``, values URL-encoded."""
    otlp_protocol: str = setting(
        "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    """With ``exporter="otlp"``: ``http/protobuf`` or ``grpc`` (``tcc-otel[grpc]``)."""
    otlp_compression: str = setting(
        "gzip",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        parse=_compression,
        keyword=False,
        warn=True,
    )
    """With ``exporter="otlp"``: ``gzip`` or ``none``."""
    otlp_insecure: bool = setting(
        False,
        "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
        "OTEL_EXPORTER_OTLP_INSECURE",
        parse=flag,
        keyword=False,
    )
    """With ``exporter="otlp"`` over gRPC: plaintext for an endpoint without a scheme."""
    max_content_bytes: int = setting(
        1024 * 1024, "TCC_MAX_CONTENT_BYTES", parse=count, empty_is_unset=True
    )
    """UTF-8 bytes one content value may hold before it is cut."""
    max_data_url_bytes: int = setting(
        32_000, "TCC_MAX_DATA_URL_BYTES", parse=count, empty_is_unset=True
    )
    """A base64 ``data:`` URL longer than this is replaced by a placeholder naming its media
    type and size."""
    handle_sigterm: bool = setting(True, "TCC_HANDLE_SIGTERM", parse=flag)
    """Deliver pending spans on SIGTERM when nobody else handles it."""
    share_spans: bool = setting(True, "TCC_SHARE_SPANS", parse=flag)
    """Default mode: the span processors of the application's global SDK provider get the run,
    step and tool-call spans too, so its exporters see whole traces."""
    encode_process: str = setting("auto", "TCC_ENCODE_PROCESS", parse=_encode_process, warn=True)
    """Default mode: ``auto`` encodes spans in a helper process while a backlog lasts, ``on``
    from the first export, ``off`` never."""

    sources: Mapping[str, str] = field(default_factory=dict)
    """Where each setting was given: ``IN_CODE``, the environment variable, or ``DEFAULT``. A
    refused value keeps its variable; a value the mode ignores (the protocol outside collector
    mode) still names where it was given."""
    env_texts: Mapping[str, str] = field(default_factory=dict)
    """The text of each setting read from the environment, stripped; secrets masked."""
    refused: Mapping[str, str] = field(default_factory=dict)
    """Why a setting's value from the environment was refused; then nothing is sent."""

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

    def resource(self) -> Resource:
        """The resource of the provider tcc_otel owns: the SDK's, ``service_name`` over it."""
        return Resource.create({SERVICE_NAME: self.service_name} if self.service_name else {})


SETTINGS: Mapping[str, Setting] = settings_of(Config)
"""Every setting, by name: ``Config`` field and ``configure()`` keyword."""
KEYWORDS = tuple(name for name, how in SETTINGS.items() if how.keyword)
"""The keywords of ``configure()``, in order."""


class ConfigureOptions(TypedDict, total=False):
    """The ``configure()`` keywords (``KEYWORDS``): each field's type, or ``None`` (or left
    out) to fall back to the environment, then the default."""

    api_key: str | None
    base_url: str | None
    feedback_url: str | None
    allow_unsafe_base_url: bool | None
    capture_content: bool | None
    content_once: bool | None
    debug: bool | None
    service_name: str | None
    shutdown_timeout: float | None
    export_timeout: float | None
    tracer_provider: TracerProvider | None
    exporter: str | None
    max_queue_spans: int | None
    max_queue_bytes: int | None
    spool_dir: str | None
    otlp_protocol: str | None
    max_content_bytes: int | None
    max_data_url_bytes: int | None
    handle_sigterm: bool | None
    share_spans: bool | None
    encode_process: str | None


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine."""
    try:
        return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS
    except ValueError:
        return False


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or IP address, without port or brackets) is this machine."""
    return host.lower() in LOOPBACK_HOSTS


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


def _check_exporter(value: str, what: str) -> str:
    """``value`` as an exporter name; ``what`` is the variable it came from, empty in code.

    Raises:
        ValueError: not one of ``EXPORTERS``.
    """
    mode = value.strip().lower()
    if mode not in EXPORTERS:
        where = f"{what}: " if what else ""
        raise ValueError(
            f"{where}exporter {mode!r} is not known; use one of: {', '.join(sorted(EXPORTERS))}."
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


def resolve(**options: Unpack[ConfigureOptions]) -> Config:
    """Build a Config: each keyword left out or ``None`` falls back to its environment variables,
    then to its default; ``Config.sources`` says which it was.

    A value from the environment that cannot be used is logged, never raised: a bad URL,
    exporter or collector protocol is refused (an error; then nothing is sent), a bad
    compression is warned about, any other is ignored.

    Raises:
        ValueError: a URL fails the safety check (see ``check_url``), the exporter is not
            known, or the collector protocol cannot be used (see ``check_protocol``).
        TypeError: a keyword is not one of ``KEYWORDS``.
    """
    for name in options:
        if name not in KEYWORDS:
            raise TypeError(f"configure() got an unexpected keyword argument {name!r}")
    given: Mapping[str, Any] = options
    found: dict[str, Found] = {}

    def get(name: str) -> Found:
        # each setting is read when first needed: the checks below come first, so a keyword
        # that raises does so before anything is logged, and refusals before other warnings
        if name not in found:
            found[name] = find(SETTINGS[name], given.get(name))
        return found[name]

    refused: dict[str, str] = {}

    def checked(name: str, what: str, check: Callable[[str, str], str]) -> str | None:
        """``name``'s value through ``check``: from code a failure raises (misuse, said at the
        call); from the environment the value is refused (``None``); a default is valid."""
        value, source, _ = get(name)
        if source == DEFAULT:
            return str(value)
        if source == IN_CODE:
            return check(value, what)
        try:
            return check(value, source)
        except ValueError as exc:
            refused[name] = str(exc)
            return None

    mode = checked("exporter", "", _check_exporter) or "none"
    protocol: str = SETTINGS["otlp_protocol"].default  # read in collector mode only
    if mode == "otlp":
        protocol = checked("otlp_protocol", "otlp_protocol", check_protocol) or protocol
        if "otlp_protocol" in refused:
            mode = "none"  # never HTTP to what may be a gRPC port
    unsafe = get("allow_unsafe_base_url").value
    helper, source, _ = get("encode_process")
    if source == IN_CODE:
        try:
            helper = _encode_process(helper)
        except ValueError as exc:
            raise ValueError(f"encode_process={helper!r} {exc}") from None

    def url(name: str, what: str) -> str | None:
        if get(name).source == DEFAULT:  # derived below
            return None
        return checked(name, what, lambda u, w: check_url(u, allow_unsafe=unsafe, what=w))

    base = url("base_url", "The TCC base URL")
    feedback = url("feedback_url", "The TCC feedback URL")
    key = get("api_key").value
    if refused:
        logger.error("%s Nothing will be sent.", redact_text(" ".join(refused.values())))
        key = None  # without a key, nothing leaves this machine
    base = base_url_of(base or default_base_url(key))
    values = {name: get(name).value for name in SETTINGS}
    sources = {name: found[name].source for name in SETTINGS}
    texts = {name: text for name in SETTINGS if (text := found[name].text) is not None}
    if sources["service_name"] == DEFAULT:
        sources["service_name"] = _resource_source()
    values.update(
        api_key=key,
        base_url=base,
        feedback_url=feedback or base + FEEDBACK_PATH,
        exporter=mode,
        encode_process=helper,
        otlp_protocol=protocol,
        otlp_endpoint=_otlp_endpoint(values["otlp_endpoint"], sources["otlp_endpoint"], protocol),
    )
    return Config(**values, sources=sources, env_texts=texts, refused=refused)


def _otlp_endpoint(value: str, source: str, protocol: str) -> str:
    """The collector's endpoint: the traces variable as given; the general one with
    ``/v1/traces`` for HTTP, as given for gRPC; else the protocol's default."""
    if source == SETTINGS["otlp_endpoint"].env[0]:
        return value
    address = None if source == DEFAULT else value
    if protocol == "grpc":
        return address or GRPC_DEFAULT_ENDPOINT
    return (address or HTTP_DEFAULT_ENDPOINT).rstrip("/") + TRACES_PATH


def _resource_source() -> str:
    """Where the SDK's resource takes ``service.name`` from when ``configure()`` sets none."""
    if os.environ.get("OTEL_SERVICE_NAME", "").strip():
        return "OTEL_SERVICE_NAME"
    if "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        return "OTEL_RESOURCE_ATTRIBUTES"
    return DEFAULT
