"""Client: the configuration in force, its destinations (a Road for records, an export pipeline
behind it), the runs of this process, and flush/shutdown/stats; the module functions bind to
one default Client."""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.trace import NonRecordingSpan, Span, Tracer

from tcc_otel._app_providers import AppProviders
from tcc_otel._config import (
    Config,
    ConfigureOptions,
    base_url_of,
    check_url,
    is_loopback,
    resolve,
    traces_url,
)
from tcc_otel._export._batcher import Limits
from tcc_otel._export._destination import OFF, SCOPE, Pipeline, export_pipeline
from tcc_otel._export._feedback import send_feedback
from tcc_otel._export._pipeline import ExportPipeline
from tcc_otel._export._process import on_fork_child, register_worker_exit
from tcc_otel._export._processor import BackgroundProcessor, Taker
from tcc_otel._export._sigterm import SigtermHook
from tcc_otel._export._spool import any_adoptable
from tcc_otel._export._stats import Stats
from tcc_otel._export._wire import origin
from tcc_otel._guard import Guard, caught
from tcc_otel._log import enable_debug, logger
from tcc_otel._records._remote import RemoteRun
from tcc_otel._records._road import Road
from tcc_otel._records._run import Run
from tcc_otel._records._span import Sink
from tcc_otel._records._step import Step
from tcc_otel._records._tool_call import ToolCall
from tcc_otel._registry import Registry
from tcc_otel._schema._values import to_id
from tcc_otel._version import __version__

if TYPE_CHECKING:
    from typing_extensions import Unpack

_RECOVER = Guard("recovering the spool at import")
_UNSENT = origin(None, SCOPE)
"""The origin of a pipeline that only shares: nothing it holds is encoded with it."""


class Client:
    """Everything tcc_otel holds: configuration, destinations, runs and counters."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._config: Config | None = None
        self._default: Pipeline | None = None
        self._per_run: dict[tuple[str | None, str], Pipeline] = {}
        self.runs: Registry[Run] = Registry()
        self._shut_down = False
        self._closing: list[ExportPipeline] = []  # what the shutdown in progress delivers
        self._recovering: list[Pipeline] = []  # sending a spool at import, before configuration
        self._capture: Taker | None = None  # tcc_otel.testing: where ended spans go instead
        self._atexit_registered = False
        self._hooked_pid = 0  # the process whose worker-exit hooks are in place
        self._sigterm = SigtermHook(self._on_sigterm, lambda: self.config.shutdown_timeout)
        self.stats = Stats()
        self.app = AppProviders(self.runs.open_run, self.stats.add, self.stats.note)
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

    def configure(self, **options: Unpack[ConfigureOptions]) -> None:
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
            self.app.forget_tracer()
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

    # --- destinations -----------------------------------------------------------------------

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
            url = check_url(
                str(tcc_url), allow_unsafe=config.allow_unsafe_base_url, what="tcc.run(tcc_url=...)"
            )
            base = base_url_of(url)
        with self._lock:
            pipeline = self._per_run.get((key, base))
            if pipeline is None:
                pipeline = self._per_run[(key, base)] = self._build(config, key, base)
            return pipeline

    def _build(self, config: Config, api_key: str | None, base_url: str | None) -> Pipeline:
        """Create a destination; called with the lock held.

        Without a user's provider, records use LightSpans that go straight to our export
        pipeline. With one, they are SDK spans of that provider (its processors see them) and a
        processor on it hands them to our pipeline; a run that overrides the key or URL gets
        its own processor, which takes the spans routed to it and nothing else.
        """
        if self._shut_down or config.sdk_disabled:
            return OFF
        overridden = base_url is not None
        key = api_key if overridden else config.api_key
        base = base_url if base_url is not None else config.base_url
        route = (key, base) if overridden else None
        if self._capture is not None:  # testing: records go to memory, nothing is sent
            road = self._road(config, None, self._capture, True, key, base)
            return Pipeline(road, api_key=key, base_url=base, route=route)
        provider = config.tracer_provider
        tracer = None
        if provider is None:
            resource = Resource.create(
                {SERVICE_NAME: config.service_name} if config.service_name else {}
            )
        else:
            tracer = (
                self.pipeline().road.tracer
                if overridden
                else provider.get_tracer(SCOPE, __version__)
            )
            found = getattr(provider, "resource", None)
            resource = found if isinstance(found, Resource) else Resource.get_empty()
        sink = self._sink(config, key, base, resource, overridden)
        if provider is None:
            sink = self._shared(config, sink)
        processor = None
        if sink is not None and provider is not None:
            add = getattr(provider, "add_span_processor", None)
            if add is None:
                logger.warning(
                    "the tracer_provider passed to configure() cannot take span processors "
                    "(%s); spans are recorded there but not sent",
                    type(provider).__name__,
                )
                sink = None
            else:
                processor = BackgroundProcessor(
                    sink, route=route, route_of=self.runs.route_of, reader=self.app.reader(config)
                )
                add(processor)

        road = self._road(config, tracer, sink, provider is None, key, base)
        return Pipeline(
            road, api_key=key, base_url=base, processor=processor, route=route, sink=sink
        )

    def _road(
        self,
        config: Config,
        tracer: Tracer | None,
        sink: Sink | None,
        light: bool,
        key: str | None,
        base: str,
    ) -> Road:
        """What the records of one destination need: the sink (or tracer) and the rules."""

        def feedback(run_id: str, score: Any, text: Any, method: str) -> bool:
            return self._feedback(run_id, score, text, method, key, base)

        return Road(
            tracer,
            sink=sink,
            light=light,
            capture_content=config.capture_content,
            content_once=config.content_once,
            max_content_bytes=config.max_content_bytes,
            max_data_url_bytes=config.max_data_url_bytes,
            note=self.stats.note,
            feedback=feedback,
            run_ended=self.runs.ended,
        )

    def record_into(self, sink: Taker) -> None:
        """Hand every ended span to ``sink`` instead of exporting it, on the same road as in
        the default mode (``tcc_otel.testing``)."""
        with self._lock:
            self._capture = sink
            self._default = None
            self._per_run = {}

    def _sink(
        self, config: Config, key: str | None, base: str, resource: Resource, overridden: bool
    ) -> ExportPipeline | None:
        """The export pipeline of a destination; ``None`` when nothing is to be sent."""
        if config.exporter == "none":  # the user's provider (or nobody) gets the spans
            return None
        collector = config.exporter == "otlp" and not overridden  # it forwards to TCC
        if not collector and not key and not is_loopback(base):
            logger.warning(
                "TCC_API_KEY is not set: runs are recorded as spans but not sent to The "
                "Context Company. Set TCC_API_KEY (or tcc.configure(api_key=...)), or point "
                "TCC_BASE_URL at a local receiver such as `tcc-otel dev`."
            )
            return None
        return export_pipeline(
            config,
            url=config.otlp_endpoint if collector else traces_url(base),
            api_key=None if collector else key,
            resource=resource,
            stats=self.stats,
            collector=collector,
            is_local_run=self.runs.is_local,
            on_start=lambda: self._exporting(config),
        )

    def _shared(self, config: Config, sink: ExportPipeline | None) -> ExportPipeline | None:
        """A default-mode destination's pipeline shares with the global provider's processors
        (``share_spans``); with nothing to send (``exporter="none"``, no key) and a provider to
        share with, it is one that only shares."""
        if not config.share_spans or (sink is None and not self.app.sharing.active):
            return sink
        if sink is None:
            start = partial(self._exporting, config)
            limits = Limits(max_spans=config.max_queue_spans)
            sink = ExportPipeline(None, self.stats, _UNSENT, limits=limits, on_start=start)
        sink.share = self.app.sharing
        return sink

    def _follow_global_provider(self) -> None:
        """Default mode: spans that the application's own (global) SDK provider starts inside
        a run travel to TCC with it, and (``share_spans``) its processors get our run, step and
        tool-call spans, so its exporters see whole traces. We add a processor to that
        provider; we never replace it."""
        with self._lock:
            if not self.app.tracer_changed():
                return
            if self.app.follow_tracer(self.config):
                # destinations with nothing to send are built again, to share
                self._per_run = {k: p for k, p in self._per_run.items() if p.sink is not None}
                if self._default is not None and self._default.sink is None:
                    self._default = None
            pipeline = self.pipeline()
            add = getattr(self.app.tracer_seen, "add_span_processor", None)
            sink = pipeline.sink
            taker: Taker | None = sink if sink is not None and sink.sends else self._capture
            if add is None or taker is None or pipeline.processor is not None:
                return  # not an SDK provider, nothing to send, or attached already
            pipeline.processor = BackgroundProcessor(
                taker, route_of=self.runs.route_of, reader=self.app.reader(self.config)
            )
            add(pipeline.processor)

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
        road = pipeline.road
        if road.light and self.app.tracer_changed():
            self._follow_global_provider()
            pipeline = self.pipeline_for(api_key, tcc_url)  # it may now share
            road = pipeline.road
        if self.app.logs_changed():
            with self._lock:
                self.app.follow_logs()
        if not self._sigterm.settled and self._hooked_pid:  # export began off the main thread
            self._exporting(self.config)
        run = Run(road, run_id, session_id, conversational)
        self.runs.opened(run.run_id, run, pipeline.route)
        return run

    def start_step(self, run_id: Any, step_id: str | None) -> Step:
        """A step of ``run_id`` where its records nest (see ``_parent_of``)."""
        rid = to_id(run_id)
        run, parent, road = self._parent_of(rid)
        if run is not None:
            return run.step(step_id)
        return Step(road, rid, parent, step_id, local=False)

    def start_tool_call(self, run_id: Any, tool_name: Any, tool_call_id: str | None) -> ToolCall:
        """A tool call of ``run_id`` where its records nest (see ``_parent_of``)."""
        rid = to_id(run_id)
        run, parent, road = self._parent_of(rid)
        if run is not None:
            return run.tool_call(tool_name, tool_call_id)
        return ToolCall(road, rid, parent, tool_name, tool_call_id, local=False)

    def _parent_of(self, run_id: str) -> tuple[Run | None, Span | None, Road]:
        """Where records of ``run_id`` nest: its open run; an ended run of this process (its
        span context, and its destination); or, for a run of another service, the active
        span (``None``). Only records of an open run wait for its span ("local")."""
        run = self.runs.open_run(run_id)
        if run is not None and not run.ended:
            return run, run.span, run._road
        ended = self.runs.ended_context(run_id)
        route = self.runs.route_of(run_id)
        road = self.pipeline_for(*route).road if route is not None else self.pipeline().road
        return None, None if ended is None else NonRecordingSpan(ended), road

    def continue_run(self, headers: Mapping[str, str], run_id: str | None) -> RemoteRun:
        """A run of another service, continued from its headers."""
        return RemoteRun(self.pipeline().road, headers, run_id)

    # --- feedback, flush, shutdown ----------------------------------------------------------

    def submit_feedback(self, run_id: Any, score: Any, text: Any) -> bool:
        """Validate and post feedback; see ``tcc_otel.submit_feedback``."""
        config = self.config
        return self._feedback(
            str(run_id), score, text, "submit_feedback()", config.api_key, config.base_url
        )

    def _feedback(
        self, run_id: str, score: Any, text: Any, method: str, key: str | None, base: str
    ) -> bool:
        return send_feedback(self.config, run_id, score, text, method, key, base)

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
                self._default = OFF
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
        if caught():
            out["internal_errors"] = caught()
        return out

    # --- the process: exit, SIGTERM, fork, the spool at import ------------------------------

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

    def _at_exit(self) -> None:
        try:
            self.shutdown()
        except Exception:  # exit must stay quiet and quick whatever happens
            logger.exception("flushing spans at exit failed")

    def _on_sigterm(self) -> None:
        """SIGTERM with no handler of the application's: deliver within the shutdown timeout."""
        logger.debug("SIGTERM: delivering pending spans before the process ends")
        self.shutdown()

    def _after_fork(self) -> None:
        """In a forked child: fresh locks and counters; pipelines reset themselves."""
        self._lock = threading.RLock()
        self.runs.after_fork()
        self.stats.after_fork()
        self.app.after_fork()

    def recover_spool(self) -> None:
        """With ``TCC_SPOOL_DIR`` set, send what processes that are gone left there now, without
        waiting for a first run (called at import; not in the ``tcc-otel`` command, whose
        ``spool`` shows the spool without sending it)."""
        root = os.environ.get("TCC_SPOOL_DIR", "").strip()
        if not root or _our_command() or not any_adoptable(root):
            return  # the common case costs a directory listing
        with _RECOVER:
            # The configuration is read now but not kept: an application may still set its
            # environment (load_dotenv()) before its first run.
            config = resolve()
            url, key = config.destination
            if config.sdk_disabled or config.exporter == "none" or not (key or is_loopback(url)):
                return  # nothing to send with yet; the first run's pipeline recovers
            pipeline = self._build(config, None, None)
            with self._lock:
                self._recovering.append(pipeline)


def _our_command() -> bool:
    """Whether this process is the ``tcc-otel`` command (or ``python -m tcc_otel`` while it
    imports the package), not an application."""
    argv0 = sys.argv[0] if sys.argv else ""
    return os.path.basename(argv0).startswith("tcc-otel") or argv0 == "-m"
