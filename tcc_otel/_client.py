"""Client: owns configuration, tracers, export pipelines and the open runs; module functions bind
to one default Client."""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import weakref
from collections import OrderedDict
from typing import Any, Optional

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from tcc_otel._config import (
    FEEDBACK_PATH,
    Config,
    base_url_of,
    check_url,
    is_loopback,
    resolve,
    traces_url,
)
from tcc_otel._export._exporter import OtlpHttpExporter
from tcc_otel._export._feedback import build_payload, post_feedback
from tcc_otel._export._pipeline import ExportPipeline, Limits
from tcc_otel._export._process import SigtermHook, on_fork_child, register_worker_exit
from tcc_otel._export._processor import BackgroundProcessor
from tcc_otel._export._spool import Spool, any_adoptable
from tcc_otel._export._stats import Stats
from tcc_otel._export._wire import origin
from tcc_otel._guard import internal_error
from tcc_otel._log import enable_debug, logger
from tcc_otel._records._run import Run
from tcc_otel._records._span import LightSpan, new_uuid
from tcc_otel._records._step import Step
from tcc_otel._records._tool_call import ToolCall
from tcc_otel._schema import _keys as attrs
from tcc_otel._schema._values import to_id, to_text
from tcc_otel._version import __version__

_SCOPE = "tcc_otel"
Route = tuple[Optional[str], str]
"""(API key, base URL) of a run that overrides the configured destination."""
_ENDED_RUNS_KEPT = 4096  # span contexts of ended runs, so late tcc.step(run_id=...) still nest


class Pipeline:
    """One destination: the tracer records use and, when export is on, the processor behind it."""

    __slots__ = (
        "api_key",
        "base_url",
        "capture_content",
        "light",
        "processor",
        "route",
        "short_content",
        "sink",
        "tracer",
    )

    def __init__(
        self,
        tracer: Tracer,
        *,
        api_key: str | None = None,
        base_url: str = "",
        processor: BackgroundProcessor | None = None,
        route: Route | None = None,
        sink: ExportPipeline | None = None,
        light: bool = False,
        capture_content: bool = True,
        short_content: int = 0,
    ) -> None:
        self.tracer = tracer
        self.sink = sink  # where LightSpans go when they end
        self.light = light  # records use LightSpans: tcc_otel owns the provider and the export
        self.capture_content = capture_content
        self.short_content = short_content  # a str this short needs no content-cap checks
        self.route = route  # set for the destination of runs with their own key or URL
        self.api_key = api_key
        self.base_url = base_url
        self.processor = processor  # on the user's provider, handing its spans to ``sink``

    def flush(self, deadline: float) -> bool:
        """Export what is pending before ``deadline`` (a ``time.monotonic()`` value)."""
        if self.sink is None:
            return True
        return self.sink.flush(max(0.0, deadline - time.monotonic()))

    def shutdown(self, deadline: float) -> None:
        """Deliver what is pending before ``deadline``, then stop."""
        if self.processor is not None:
            self.processor.retire()  # the user's provider keeps calling it; it takes no more
        if self.sink is not None:
            self.sink.shutdown(max(0.0, deadline - time.monotonic()))


class Client:
    """Everything tcc_otel holds: configuration, pipelines, open runs and counters."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._config: Config | None = None
        self._default: Pipeline | None = None
        self._per_run: dict[tuple[str | None, str], Pipeline] = {}
        self._runs: weakref.WeakValueDictionary[str, Run] = weakref.WeakValueDictionary()
        self._ended_runs: OrderedDict[str, SpanContext] = OrderedDict()
        self._routes: dict[str, Route] = {}  # open runs with their own key or URL
        self._ended_routes: OrderedDict[str, Route] = OrderedDict()
        self._shut_down = False
        self._closing: list[ExportPipeline] = []  # what the shutdown in progress delivers
        self._recovering: list[Pipeline] = []  # sending a spool at import, before configuration
        self._global_seen: object = None  # the global provider last checked for our processor
        self._atexit_registered = False
        self._hooked_pid = 0  # the process whose worker-exit hooks are in place
        self._sigterm = SigtermHook(self._on_sigterm)
        self.stats = Stats()
        on_fork_child(self._after_fork)

    # --- configuration ----------------------------------------------------------------------

    @property
    def config(self) -> Config:
        """The configuration in force, resolved from the environment on first use."""
        config = self._config
        if config is None:
            with self._lock:
                if self._config is None:
                    self._config = resolve()  # bad env values are logged, never raised
                    if self._config.debug:
                        enable_debug()
                config = self._config
        return config

    def configure(self, **options: Any) -> None:
        """Replace the configuration; pending spans of the old one are flushed first.

        Raises:
            ValueError: an option is invalid (for example an untrusted URL).
        """
        config = resolve(**options)
        with self._lock:
            old = self._pipelines()
            self._config = config
            self._default = None
            self._per_run = {}
            self._recovering = []
            self._shut_down = False
            self._closing = []
            self._global_seen = None
        if config.debug:
            enable_debug()
        if config.handle_sigterm:
            self._sigterm.settled = False  # install at the next export start, if still free
        else:
            self._sigterm.uninstall()
        deadline = time.monotonic() + config.shutdown_timeout
        for pipeline in old:
            pipeline.shutdown(deadline)
        if config.spool_dir is not None:
            self.pipeline()  # send now what processes that died left in the spool

    # --- pipelines --------------------------------------------------------------------------

    def pipeline(self) -> Pipeline:
        """The default destination, built on first use."""
        pipeline = self._default
        if pipeline is None:
            with self._lock:
                if self._default is None:
                    self._default = self._build(self.config, None, None)
                pipeline = self._default
        return pipeline

    def pipeline_for(self, api_key: str | None, tcc_url: str | None) -> Pipeline:
        """The destination of a run that overrides the API key and/or the URL."""
        if api_key is None and tcc_url is None:
            return self.pipeline()
        config = self.config
        key = api_key if api_key is not None else config.api_key
        base = config.base_url
        if tcc_url is not None:
            base = base_url_of(
                check_url(
                    str(tcc_url),
                    allow_unsafe=config.allow_unsafe_base_url,
                    what="tcc.run(tcc_url=...)",
                )
            )
        with self._lock:
            pipeline = self._per_run.get((key, base))
            if pipeline is None:
                pipeline = self._per_run[(key, base)] = self._build(config, key, base)
            return pipeline

    def _build(self, config: Config, api_key: str | None, base_url: str | None) -> Pipeline:
        """Create a pipeline; called with the lock held.

        Without a user's provider, records use LightSpans that go straight to our export
        pipeline. With one, they are SDK spans of that provider (its processors see them) and a
        processor on it hands them to our pipeline; a run that overrides the key or URL gets
        its own processor, which takes the spans routed to it and nothing else.
        """
        if self._shut_down or config.sdk_disabled:
            return Pipeline(trace.NoOpTracer())
        overridden = base_url is not None
        key = api_key if overridden else config.api_key
        base = base_url if base_url is not None else config.base_url
        route = (key, base) if overridden else None
        provider = config.tracer_provider
        if provider is None:
            tracer: Tracer = trace.NoOpTracer()  # unused: records make LightSpans
            resource = Resource.create(
                {SERVICE_NAME: config.service_name} if config.service_name else {}
            )
        else:
            tracer = (
                self.pipeline().tracer if overridden else provider.get_tracer(_SCOPE, __version__)
            )
            found = getattr(provider, "resource", None)
            resource = found if isinstance(found, Resource) else Resource.get_empty()
        sink = processor = None
        if config.exporter == "otlp" and not overridden:  # a collector forwards to TCC
            sink = self._sink(config, None, config.otlp_endpoint, resource, config.otlp_headers)
        elif config.exporter != "none":  # "none": the user's provider (or nobody) gets them
            if key or is_loopback(base):
                sink = self._sink(config, key, traces_url(base), resource)
            else:
                logger.warning(
                    "TCC_API_KEY is not set: runs are recorded as spans but not sent to The "
                    "Context Company. Set TCC_API_KEY (or tcc.configure(api_key=...)), or point "
                    "TCC_BASE_URL at a local receiver such as `tcc-otel dev`."
                )
        if sink is not None and provider is not None:
            processor = BackgroundProcessor(sink, route=route, route_of=self.route_of)
            add = getattr(provider, "add_span_processor", None)
            if add is None:
                logger.warning(
                    "the tracer_provider passed to configure() cannot take span processors "
                    "(%s); spans are recorded there but not sent",
                    type(provider).__name__,
                )
                sink = processor = None
            else:
                add(processor)
        return Pipeline(
            tracer,
            api_key=key,
            base_url=base,
            processor=processor,
            route=route,
            sink=sink,
            light=provider is None,
            capture_content=config.capture_content,
            short_content=min(config.max_data_url_bytes, config.max_content_bytes // 4),
        )

    def _sink(
        self,
        config: Config,
        key: str | None,
        url: str,
        resource: Resource,
        headers: dict[str, str] | None = None,
    ) -> ExportPipeline:
        """An export pipeline sending to ``url``; it first sends what dead processes spooled.

        ``headers`` are given in collector mode only: there the protocol (OTLP/HTTP or gRPC)
        and compression follow ``OTEL_EXPORTER_OTLP_*``; to TCC it is OTLP/HTTP with gzip.
        """
        gzip = headers is None or config.otlp_compression == "gzip"
        if headers is not None and config.otlp_protocol == "grpc":
            from tcc_otel._export._exporter import Exporter
            from tcc_otel._export._grpc import (
                GrpcTransport,  # imports grpc only when it first sends
            )

            transport = GrpcTransport(
                url, headers=headers, insecure=config.otlp_insecure, gzip=gzip
            )
            exporter = Exporter(transport, stats=self.stats, timeout=config.export_timeout)
        else:
            exporter = OtlpHttpExporter(
                url,
                api_key=key,
                headers=headers,
                stats=self.stats,
                timeout=config.export_timeout,
                gzip=gzip,
            )
        sink = ExportPipeline(
            exporter,
            self.stats,
            origin(resource.attributes, _SCOPE, __version__, resource_schema=resource.schema_url),
            limits=Limits(max_spans=config.max_queue_spans, max_queue_bytes=config.max_queue_bytes),
            spool=_spool(config.spool_dir, url, key),
            is_local_run=self.is_local_run,
            on_start=lambda: self._exporting(config),
        )
        sink.recover()
        return sink

    def _follow_global_provider(self) -> None:
        """Default mode: spans that the application's own (global) SDK provider starts inside
        a run travel to TCC with it. We add a processor to that provider; we never replace it."""
        with self._lock:
            provider = trace.get_tracer_provider()
            if provider is self._global_seen:
                return
            self._global_seen = provider
            pipeline = self.pipeline()
            add = getattr(provider, "add_span_processor", None)
            if add is None or pipeline.sink is None or pipeline.processor is not None:
                return  # not an SDK provider, nothing to send, or attached already
            pipeline.processor = BackgroundProcessor(pipeline.sink, route_of=self.route_of)
            add(pipeline.processor)

    def _exporting(self, config: Config) -> None:
        """A pipeline of ``config`` starts its threads: make sure this process delivers at
        exit, whichever way it ends, and on SIGTERM. Called on the thread that first hands over
        a span (or that recovers a spool)."""
        pid = os.getpid()
        if self._hooked_pid != pid:  # once per process: a forked child hooks in again
            self._hooked_pid = pid
            if not self._atexit_registered:  # atexit handlers survive fork: once is enough
                atexit.register(self._at_exit)
                self._atexit_registered = True
            register_worker_exit(self._at_exit)
        if config.handle_sigterm:
            self._sigterm.install()
        else:
            self._sigterm.settled = True  # nothing to install

    def _on_sigterm(self) -> None:
        """SIGTERM with no handler of the application's: deliver within the shutdown timeout."""
        logger.debug("SIGTERM: delivering pending spans before the process ends")
        self.shutdown()

    def _after_fork(self) -> None:
        """In a forked child: fresh lock and counters; pipelines reset themselves."""
        self._lock = threading.RLock()
        self.stats.after_fork()

    def recover_spool(self) -> None:
        """With ``TCC_SPOOL_DIR`` set, send what processes that are gone left there now, without
        waiting for a first run (called at import; not in the ``tcc-otel`` command, whose
        ``spool`` shows the spool without sending it)."""
        root = os.environ.get("TCC_SPOOL_DIR", "").strip()
        if not root or _our_command() or not any_adoptable(root):
            return  # the common case costs a directory listing
        try:
            # The configuration is read now but not kept: an application may still set its
            # environment (load_dotenv()) before its first run.
            config = resolve()
            url, key = config.destination
            if config.sdk_disabled or config.exporter == "none" or not (key or is_loopback(url)):
                return  # nothing to send with yet; the first run's pipeline recovers
            pipeline = self._build(config, None, None)
            with self._lock:
                self._recovering.append(pipeline)
        except Exception:
            internal_error("recovering the spool")

    def is_local_run(self, run_id: str) -> bool:
        """Whether ``run_id`` is a run of this process (open, or ended not long ago)."""
        return run_id in self._runs or run_id in self._ended_runs

    def route_of(self, run_id: str) -> Route | None:
        """The destination of a run that overrode its key or URL; ``None`` for the default."""
        route = self._routes.get(run_id)
        if route is None and self._ended_routes:
            route = self._ended_routes.get(run_id)
        return route

    def _pipelines(self) -> list[Pipeline]:
        with self._lock:
            found = [] if self._default is None else [self._default]
            return found + list(self._per_run.values()) + self._recovering

    # --- records ----------------------------------------------------------------------------

    def start_run(
        self,
        run_id: str | None,
        session_id: str | None,
        conversational: bool | None,
        api_key: str | None,
        tcc_url: str | None,
    ) -> Run:
        """Open a run whose span's parent is the active span."""
        pipeline = self.pipeline_for(api_key, tcc_url)
        if pipeline.light and trace.get_tracer_provider() is not self._global_seen:
            self._follow_global_provider()
        if not self._sigterm.settled and self._hooked_pid:  # export began off the main thread
            self._exporting(self.config)
        rid = _new_id() if run_id is None else to_id(run_id)
        initial: dict[str, AttributeValue] = {
            attrs.TCC_TYPE: attrs.SpanKind.RUN.value,
            attrs.TCC_RUN_ID: rid,
            attrs.GEN_AI_OPERATION_NAME: attrs.OP_INVOKE_AGENT,
        }
        if session_id is not None:
            session = to_text(session_id, "tcc.run()")
            if session is not None:
                initial[attrs.TCC_SESSION_ID] = session
                initial[attrs.GEN_AI_CONVERSATION_ID] = session
        if conversational is not None:
            initial[attrs.TCC_CONVERSATIONAL] = bool(conversational)
        span = _start_span(pipeline, attrs.OP_INVOKE_AGENT, None, SpanKind.INTERNAL, initial, rid)
        run = Run(self, pipeline, span, rid)
        self._runs[rid] = run
        if pipeline.route is not None:
            self._routes[rid] = pipeline.route
        return run

    def run_ended(self, run: Run) -> None:
        """Forget an ended run, keeping its span context (and route) for late children."""
        rid = run.run_id
        with self._lock:
            if self._runs.get(rid) is run:
                del self._runs[rid]
            self._ended_runs[rid] = run.span.get_span_context()
            if len(self._ended_runs) > _ENDED_RUNS_KEPT:
                self._ended_runs.popitem(last=False)
            route = self._routes.pop(rid, None)
            if route is not None:
                self._ended_routes[rid] = route
                if len(self._ended_routes) > _ENDED_RUNS_KEPT:
                    self._ended_routes.popitem(last=False)

    def _parent_of(self, run_id: str) -> tuple[Run | None, Span | None, Pipeline]:
        """Where a step or tool call of ``run_id`` nests: its open run, an ended run of this
        process, or (a run of another service, ``None``) the active span."""
        run = self._runs.get(run_id)
        if run is not None:
            return run, run.span, run._pipeline
        with self._lock:
            ended = self._ended_runs.get(run_id)
        return None, None if ended is None else NonRecordingSpan(ended), self.pipeline()

    def start_step(
        self,
        run_id: Any,
        step_id: str | None,
        run: Run | None = None,
        remote_parent: Span | None = None,
    ) -> Step:
        """Open a step of ``run_id``: under ``run``, under ``remote_parent`` (a run continued
        from another service), or where ``run_id``'s records nest."""
        rid = to_id(run_id)
        parent: Span | None
        if run is not None:
            parent, pipeline = run.span, run._pipeline
        elif remote_parent is not None:
            parent, pipeline = remote_parent, self.pipeline()
        else:
            run, parent, pipeline = self._parent_of(rid)
        sid = _new_id() if step_id is None else to_id(step_id)
        span = _start_span(
            pipeline,
            attrs.OP_CHAT,
            parent,
            SpanKind.CLIENT,
            {
                attrs.TCC_TYPE: attrs.SpanKind.STEP.value,
                attrs.TCC_RUN_ID: rid,
                attrs.TCC_STEP_ID: sid,
                attrs.GEN_AI_OPERATION_NAME: attrs.OP_CHAT,
            },
            rid,
            local=run is not None,
        )
        return Step(self, pipeline, span, rid, sid, run)

    def start_tool_call(
        self,
        run_id: Any,
        pipeline: Pipeline | None,
        parent_span: Span | None,
        tool_name: Any,
        tool_call_id: str | None,
    ) -> ToolCall:
        """Open a tool call under ``parent_span``, or where ``run_id``'s records nest."""
        rid = to_id(run_id)
        parent: Span | None = parent_span
        local = True  # opened from its run or step
        if pipeline is None and parent_span is not None:  # a run continued from elsewhere
            pipeline, local = self.pipeline(), False
        elif parent_span is None or pipeline is None:
            run, parent, pipeline = self._parent_of(rid)
            local = run is not None
        cid = _new_id() if tool_call_id is None else to_id(tool_call_id)
        span = _start_span(
            pipeline,
            attrs.OP_EXECUTE_TOOL,
            parent,
            SpanKind.INTERNAL,
            {
                attrs.TCC_TYPE: attrs.SpanKind.TOOL_CALL.value,
                attrs.TCC_RUN_ID: rid,
                attrs.TCC_TOOL_CALL_ID: cid,
                attrs.GEN_AI_TOOL_CALL_ID: cid,
                attrs.GEN_AI_OPERATION_NAME: attrs.OP_EXECUTE_TOOL,
            },
            rid,
            local=local,
        )
        call = ToolCall(self, pipeline, span, rid, cid)
        if tool_name is not None:
            call.name(tool_name)
        return call

    # --- feedback, flush, shutdown ----------------------------------------------------------

    def submit_feedback(
        self, run_id: Any, score: Any, text: Any, pipeline: Pipeline | None = None
    ) -> bool:
        """Validate and post feedback; see ``tcc_otel.submit_feedback``."""
        method = "submit_feedback()" if pipeline is None else "Run.feedback()"
        payload = build_payload(str(run_id), score, text, method)
        if len(payload) == 1:
            logger.warning("%s: nothing valid to send for run %s", method, payload["runId"])
            return False
        config = self.config
        key = config.api_key if pipeline is None else pipeline.api_key
        url = config.feedback_url
        if pipeline is not None and pipeline.base_url and pipeline.base_url != config.base_url:
            url = pipeline.base_url + FEEDBACK_PATH
        if not key and not is_loopback(url):
            logger.warning(
                "feedback for run %s was not sent: TCC_API_KEY is not set", payload["runId"]
            )
            return False
        return post_feedback(url, key, payload, config.export_timeout)

    def flush(self, timeout: float) -> bool:
        """Export everything pending within ``timeout`` seconds; ``True`` if all of it went."""
        deadline = time.monotonic() + max(0.0, timeout)
        if self._default is None and self.config.spool_dir is not None:
            self.pipeline()  # a spool may hold batches of processes that are gone
        results = [pipeline.flush(deadline) for pipeline in self._pipelines()]
        return all(results)

    def shutdown(self, timeout: float | None = None) -> None:
        """Deliver what is pending (within ``timeout``, default the configured deadline) and stop.

        Records created afterwards are not exported until ``configure()`` is called again.
        """
        limit = self.config.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + max(0.0, limit)
        with self._lock:
            if self._shut_down:  # another caller, or a SIGTERM handler interrupting one
                closing = list(self._closing)
            else:
                pipelines = self._pipelines()
                self._shut_down = True
                self._closing = [p.sink for p in pipelines if p.sink is not None]
                self._default = Pipeline(trace.NoOpTracer())
                self._per_run = {}
                self._recovering = []
                closing = None
        if closing is not None:
            for sink in closing:
                sink.wait_idle(max(0.0, deadline - time.monotonic()))
            return
        for pipeline in pipelines:
            pipeline.shutdown(deadline)

    def snapshot(self) -> dict[str, Any]:
        """The counters, with what is queued and spooled right now."""
        out: dict[str, Any] = dict(self.stats.snapshot())
        sinks = [p.sink for p in self._pipelines() if p.sink is not None]
        out["recorded"] += sum(sink.uncounted() for sink in sinks)
        out["queued"] = sum(sink.pending() for sink in sinks)
        out["spooled"] = sum(sink.spooled() for sink in sinks)
        return out

    def _at_exit(self) -> None:
        try:
            self.shutdown()
        except Exception:  # exit must stay quiet and quick whatever happens
            logger.exception("flushing spans at exit failed")


def _start_span(
    pipeline: Pipeline,
    name: str,
    parent: Span | None,
    kind: SpanKind,
    attributes: dict[str, AttributeValue],
    run_id: str,
    *,
    local: bool = True,
) -> Span:
    """Start a record's span under ``parent`` (``None``: the active span). If OpenTelemetry
    fails, a non-recording span keeps the API working. ``local``: the run is open in this
    process, so the span waits for the run span and travels with it."""
    try:
        if pipeline.light:
            parent_context = (parent or trace.get_current_span()).get_span_context()
            return LightSpan(
                name, kind, parent_context, attributes, run_id, pipeline.sink, local=local
            )
        context = None if parent is None else trace.set_span_in_context(parent)
        return pipeline.tracer.start_span(name, context=context, kind=kind, attributes=attributes)
    except Exception:
        internal_error(f"starting the {name} span")
        return trace.INVALID_SPAN


_new_id = new_uuid


def _spool(directory: str | None, url: str, key: str | None) -> Spool | None:
    """The spool of a destination, or ``None`` without one or when the directory cannot be
    used (logged: spans are still sent, without the disk)."""
    if directory is None:
        return None
    try:
        return Spool(directory, url, key)
    except OSError as exc:
        logger.error(
            "TCC_SPOOL_DIR %s cannot be used (%s); spans are sent without a spool", directory, exc
        )
        return None


def _our_command() -> bool:
    """Whether this process is the ``tcc-otel`` command (or ``python -m tcc_otel`` while it
    imports the package), not an application."""
    argv0 = sys.argv[0] if sys.argv else ""
    return os.path.basename(argv0).startswith("tcc-otel") or argv0 == "-m"
