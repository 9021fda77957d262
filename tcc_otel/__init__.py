"""tcc_otel: The Context Company's run/step/tool-call API, recorded as OpenTelemetry spans.

``import tcc_otel as tcc`` replaces ``import contextcompany as tcc``; spans are exported over
OTLP/HTTP in the background.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry.trace import TracerProvider

from tcc_otel._client import Client
from tcc_otel._config import default_base_url
from tcc_otel._records._context import inject as _inject
from tcc_otel._records._remote import RemoteRun
from tcc_otel._records._run import Run
from tcc_otel._records._step import Step
from tcc_otel._records._tool_call import ToolCall
from tcc_otel._version import __version__

__all__ = [
    "RemoteRun",
    "Run",
    "Step",
    "ToolCall",
    "__version__",
    "configure",
    "continue_run",
    "flush",
    "get_api_key",
    "get_url",
    "inject",
    "run",
    "shutdown",
    "stats",
    "step",
    "submit_feedback",
    "tool_call",
]

_client = Client()
_client.recover_spool()  # with TCC_SPOOL_DIR: what processes that are gone left there goes now


def run(
    run_id: str | None = None,
    session_id: str | None = None,
    conversational: bool | None = None,
    api_key: str | None = None,
    tcc_url: str | None = None,
) -> Run:
    """Start a run: one agent execution, recorded as a span under the active span.

    Args:
        run_id: the run's id; a UUID4 when not given.
        session_id: groups runs of one conversation (``tcc.sessionId``).
        conversational: whether the run is a conversation turn.
        api_key: send this run with another key than the configured one.
        tcc_url: send this run to another base URL (same safety rule as ``TCC_BASE_URL``).

    Raises:
        ValueError: ``tcc_url`` is neither TCC's endpoint nor this machine.
    """
    return _client.start_run(run_id, session_id, conversational, api_key, tcc_url)


def step(run_id: str, step_id: str | None = None) -> Step:
    """Start a step of the run ``run_id``; same as ``run.step()`` when that run is open here.

    With the id of a run this process does not know (it lives in another service) the step is
    still recorded, stamped with that run id and parented to the active span.
    """
    return _client.start_step(run_id, step_id)


def tool_call(
    run_id: str, tool_call_id: str | None = None, tool_name: str | None = None
) -> ToolCall:
    """Start a tool call of the run ``run_id``; parented like ``step()``."""
    return _client.start_tool_call(run_id, tool_name, tool_call_id)


def submit_feedback(run_id: str, score: str | None = None, text: str | None = None) -> bool:
    """Send feedback on a run; ``True`` if the endpoint accepted it, ``False`` (logged) if not.

    Args:
        run_id: the run the feedback is about.
        score: ``"thumbs_up"`` or ``"thumbs_down"``.
        text: at most 2,000 characters.

    Raises:
        ValueError: neither score nor text is given, or the text is too long.
    """
    return _client.submit_feedback(run_id, score, text)


def get_api_key(api_key: str | None = None) -> str:
    """The API key tcc_otel sends with, as ``contextcompany.get_api_key``: ``api_key`` when
    given, else the configured one (``configure(api_key=...)``, else ``TCC_API_KEY``).

    Raises:
        ValueError: no key is given or configured.
    """
    key = api_key or _client.config.api_key
    if not key:
        raise ValueError(
            "get_api_key(): no TCC API key: set TCC_API_KEY, call "
            "tcc.configure(api_key=...), or pass api_key=..."
        )
    return key


def get_url(path: str, api_key: str | None = None) -> str:
    """``path`` appended to the base URL in force, as ``contextcompany.get_url``.

    The base URL is ``configure(base_url=...)``, else ``TCC_BASE_URL``, else TCC's dev host for
    keys starting ``dev_`` and its production host for others. With ``api_key``, when the base
    URL in force is the host the configured key picks, the host ``api_key`` picks is used.
    """
    config = _client.config
    base = config.base_url
    if api_key and base == default_base_url(config.api_key):
        base = default_base_url(api_key)
    return base + path


def configure(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    feedback_url: str | None = None,
    allow_unsafe_base_url: bool | None = None,
    capture_content: bool | None = None,
    content_once: bool | None = None,
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
    share_spans: bool | None = None,
    encode_process: str | None = None,
) -> None:
    """Configure tcc_otel explicitly; every argument left at ``None`` falls back to its
    environment variable, then to the default. Pending spans of the previous configuration are
    delivered first.

    Args:
        api_key: ``TCC_API_KEY``.
        base_url: ``TCC_BASE_URL``; default by key prefix (``dev_`` keys go to TCC's dev host).
        feedback_url: ``TCC_FEEDBACK_URL``; default ``{base_url}/v1/feedback``.
        allow_unsafe_base_url: ``TCC_ALLOW_UNSAFE_BASE_URL``; allow hosts other than TCC's and
            localhost.
        capture_content: ``TCC_CAPTURE_CONTENT``; ``False`` leaves prompts, responses, tool
            arguments, results and definitions out of every span.
        content_once: ``TCC_CONTENT_ONCE``; ``True`` sends prompts, responses, tool arguments
            and results once, under the GenAI names only (``gen_ai.input.messages``, ...),
            leaving out their ``tcc.*`` copies (``tcc.run.user_prompt``, ``tcc.step.prompt``,
            ...).
        debug: ``TCC_DEBUG``; debug output on logger ``tcc_otel``.
        service_name: ``service.name`` of the provider tcc_otel owns (else ``OTEL_SERVICE_NAME``).
        shutdown_timeout: ``TCC_SHUTDOWN_TIMEOUT``; seconds that ``shutdown()`` and process exit
            may spend delivering pending spans (default 5).
        export_timeout: ``TCC_EXPORT_TIMEOUT``; seconds one export request may take (default 10).
        tracer_provider: record into this provider (its processors see every span) and attach the
            TCC export to it. tcc_otel never sets the global provider.
        exporter: ``TCC_EXPORTER``; ``"tcc"`` (default) sends spans to TCC, ``"none"`` only
            records them (into ``tracer_provider`` if given).
        max_queue_spans: ``TCC_MAX_QUEUE_SPANS``; spans waiting to be sent before new ones are
            dropped (counted in ``stats()``; default 200,000).
        max_queue_bytes: ``TCC_MAX_QUEUE_BYTES``; encoded bytes waiting to be sent before
            the oldest batches are dropped (default 64 MiB).
        spool_dir: ``TCC_SPOOL_DIR``; keep batches on disk until delivered, so a crash or an
            exit with the endpoint down loses nothing: the next process sends them.
        otlp_protocol: with ``exporter="otlp"``, ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` /
            ``OTEL_EXPORTER_OTLP_PROTOCOL``: ``"http/protobuf"`` (default) or ``"grpc"``
            (needs ``tcc-otel[grpc]``).
        max_content_bytes: ``TCC_MAX_CONTENT_BYTES``; a prompt, response, argument, result or
            tool definition longer than this (UTF-8 bytes, default 1 MiB) is cut, with a marker.
        max_data_url_bytes: ``TCC_MAX_DATA_URL_BYTES``; a base64 ``data:`` URL longer than
            this (default 32,000) is replaced by a placeholder with its media type and size.
        handle_sigterm: ``TCC_HANDLE_SIGTERM``; on SIGTERM, when the application has no
            handler of its own, deliver pending spans before the process ends (default on).
        share_spans: ``TCC_SHARE_SPANS``; without ``tracer_provider``, when the application
            has set a global SDK ``TracerProvider``, its span processors get the run, step and
            tool-call spans too (from tcc_otel's background thread), so its exporters see
            whole traces (default on).
        encode_process: ``TCC_ENCODE_PROCESS``; ``"auto"`` (default) builds and encodes spans
            in a helper process while a backlog shows the export thread falling behind, so the
            agent keeps this process's GIL; ``"on"`` from the first export; ``"off"`` never.

    Raises:
        ValueError: a URL is neither TCC's endpoint nor this machine, or ``otlp_protocol``
            cannot be used (``http/json``, or ``grpc`` without ``grpcio``).
    """
    _client.configure(
        api_key=api_key,
        base_url=base_url,
        feedback_url=feedback_url,
        allow_unsafe_base_url=allow_unsafe_base_url,
        capture_content=capture_content,
        content_once=content_once,
        debug=debug,
        service_name=service_name,
        shutdown_timeout=shutdown_timeout,
        export_timeout=export_timeout,
        tracer_provider=tracer_provider,
        exporter=exporter,
        max_queue_spans=max_queue_spans,
        max_queue_bytes=max_queue_bytes,
        spool_dir=spool_dir,
        otlp_protocol=otlp_protocol,
        max_content_bytes=max_content_bytes,
        max_data_url_bytes=max_data_url_bytes,
        handle_sigterm=handle_sigterm,
        share_spans=share_spans,
        encode_process=encode_process,
    )


def flush(timeout: float = 5.0) -> bool:
    """Export every pending span now; ``True`` if all were handled within ``timeout`` seconds."""
    return _client.flush(timeout)


def shutdown(timeout: float | None = None) -> None:
    """Deliver pending spans (within ``timeout`` seconds, default 5) and stop exporting.

    Called automatically at interpreter exit. Records created afterwards are not exported until
    ``configure()`` is called again.
    """
    _client.shutdown(timeout)


def stats() -> dict[str, Any]:
    """What happened to the spans, so you can see that nothing was lost.

    ``recorded`` spans handed to export; ``exported`` ones the endpoint accepted; ``retried``
    span sends repeated; ``dropped`` (and ``dropped_by_reason``) ones given up, each for a
    reason; ``queued`` ones waiting now; ``spooled`` ones on disk now (``TCC_SPOOL_DIR``).
    """
    return _client.snapshot()


def inject(headers: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Add W3C trace context and ``baggage: tcc.runId=...`` for the active run, step or tool
    call to outgoing ``headers`` (a new dict if ``None``), and return them.

    The service you call continues the run with ``tcc.continue_run(headers)`` (Python) or
    any OpenTelemetry SDK (its spans join the trace; the baggage carries the run id).
    """
    return _inject(headers)


def continue_run(headers: Mapping[str, str], run_id: str | None = None) -> RemoteRun:
    """Continue a run started in another service, from the headers it sent.

    ``with tcc.continue_run(request.headers) as run:`` makes the caller's span the parent of
    what you record inside; ``run.step()`` and ``run.tool_call()`` join its run and trace.

    Raises:
        ValueError: the headers carry no ``tcc.runId`` baggage and ``run_id`` is not given.
    """
    return _client.continue_run(headers, run_id)
