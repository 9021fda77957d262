"""The application's own global OpenTelemetry providers, followed (never replaced): the spans its
instrumentations start inside a run go to TCC with the run, read as steps and tool calls where
they are LLM or tool spans; the content events they log for those spans are noted; and our run,
step and tool-call spans reach its span processors (``share_spans``), so its traces stay whole."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry import trace
from opentelemetry._logs import get_logger_provider

from tcc_otel._config import Config
from tcc_otel._export._foreign import Counts, Reader
from tcc_otel._export._inside import Inside
from tcc_otel._export._logs import ContentEvents
from tcc_otel._export._processor import BackgroundProcessor
from tcc_otel._export._share import Count, Sharing


class AppProviders:
    """What tcc_otel keeps of the application's global providers; one per client."""

    def __init__(self, open_run: Callable[[str], Counts | None], count: Count, note: Count) -> None:
        self.inside = Inside(count=note)  # spans of other instrumentations open inside runs
        self.sharing = Sharing(skip=BackgroundProcessor, count=count)
        self._open_run = open_run
        self.tracer_seen: object = None  # the global tracer provider last followed
        self._logs_seen: object = None  # the global logger provider last followed

    def reader(self, config: Config) -> Reader:
        """How our processors read other instrumentations' LLM and tool spans."""
        return Reader(self.inside, self._open_run, config.capture_content, config.content_once)

    def tracer_changed(self) -> bool:
        """Whether the global tracer provider is not the one followed last."""
        return trace.get_tracer_provider() is not self.tracer_seen

    def follow_tracer(self, config: Config) -> bool:
        """Follow the global tracer provider now in place (``tracer_seen``); ``True`` when its
        processors get our spans from now on (``share_spans``, and an SDK provider)."""
        provider = trace.get_tracer_provider()
        self.tracer_seen = provider
        return config.share_spans and self.sharing.follow(provider)

    def forget_tracer(self) -> None:
        """Check the global tracer provider again at the next run (a new configuration)."""
        self.tracer_seen = None

    def logs_changed(self) -> bool:
        """Whether the global logger provider is not the one followed last."""
        return get_logger_provider() is not self._logs_seen

    def follow_logs(self) -> None:
        """Content events that instrumentations log (as OpenTelemetry log records) for their
        spans inside a run reach TCC with those spans: a log record processor that only takes
        notes is added to the application's SDK ``LoggerProvider`` (once per provider); none of
        its logs is exported by us. Call with the client's lock held."""
        provider = get_logger_provider()
        if provider is self._logs_seen:
            return
        self._logs_seen = provider
        add = getattr(provider, "add_log_record_processor", None)
        if add is not None:
            add(ContentEvents(self.inside))

    def after_fork(self) -> None:
        """In a forked child: the parent's open spans are not the child's."""
        self.inside.clear()
