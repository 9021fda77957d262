"""One destination: the road its records take and its export pipeline (the transport the
configuration asks for, the spool, the bounds, and the origin of the records' spans)."""

from __future__ import annotations

import time
from collections.abc import Callable

from opentelemetry.sdk.resources import Resource

from tcc_otel._config import Config
from tcc_otel._export._batcher import Limits
from tcc_otel._export._exporter import Exporter, OtlpHttpExporter
from tcc_otel._export._pipeline import ExportPipeline
from tcc_otel._export._processor import BackgroundProcessor
from tcc_otel._export._spool import Spool
from tcc_otel._export._stats import Stats
from tcc_otel._export._wire import origin
from tcc_otel._log import logger
from tcc_otel._records._road import Road
from tcc_otel._registry import Route
from tcc_otel._version import __version__

SCOPE = "tcc_otel"
"""The instrumentation scope of the records' spans."""


def export_pipeline(
    config: Config,
    *,
    url: str,
    api_key: str | None,
    resource: Resource,
    stats: Stats,
    collector: bool = False,
    is_local_run: Callable[[str], bool] = lambda run_id: False,
    on_start: Callable[[], None] = lambda: None,
) -> ExportPipeline:
    """A pipeline posting to ``url``; it first sends what processes that are gone spooled.

    To TCC it is OTLP/HTTP with gzip; to a ``collector`` the protocol (OTLP/HTTP or gRPC),
    compression and headers follow ``OTEL_EXPORTER_OTLP_*``.
    """
    headers = config.otlp_headers if collector else None
    gzip = not collector or config.otlp_compression == "gzip"
    exporter: Exporter
    if collector and config.otlp_protocol == "grpc":
        from tcc_otel._export._grpc import GrpcTransport  # grpc is loaded only for this

        transport = GrpcTransport(url, headers=headers, insecure=config.otlp_insecure, gzip=gzip)
        exporter = Exporter(transport, stats=stats, timeout=config.export_timeout)
    else:
        exporter = OtlpHttpExporter(
            url,
            api_key=api_key,
            headers=headers,
            stats=stats,
            timeout=config.export_timeout,
            gzip=gzip,
        )
    sink = ExportPipeline(
        exporter,
        stats,
        origin(resource.attributes, SCOPE, __version__, resource_schema=resource.schema_url),
        limits=Limits(max_spans=config.max_queue_spans, max_queue_bytes=config.max_queue_bytes),
        spool=_spool(config.spool_dir, url, api_key),
        is_local_run=is_local_run,
        on_start=on_start,
        encode_process=config.encode_process,
    )
    sink.recover()
    return sink


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


class Pipeline:
    """One destination: the Road its records take and, when export is on, what is behind it."""

    __slots__ = ("api_key", "base_url", "processor", "road", "route", "sink")

    def __init__(
        self,
        road: Road,
        *,
        api_key: str | None = None,
        base_url: str = "",
        processor: BackgroundProcessor | None = None,
        route: Route | None = None,
        sink: ExportPipeline | None = None,
    ) -> None:
        self.road = road
        self.sink = sink  # where LightSpans go when they end
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


OFF = Pipeline(Road())
"""Records go nowhere: after shutdown, or with OTEL_SDK_DISABLED."""
