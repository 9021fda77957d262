"""One destination's export pipeline (tcc_otel/_export/_destination.py): the transport the
configuration asks for (OTLP/HTTP to TCC, OTLP/HTTP or gRPC to a collector), its headers and
compression, the origin of the records' spans, and the spool."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _grpc_server import GrpcCollector
from helpers.delivery import HANG_GUARD
from opentelemetry.sdk.resources import Resource

from tcc_otel._config import Config, resolve
from tcc_otel._export._destination import SCOPE, _spool, export_pipeline
from tcc_otel._export._pipeline import ExportPipeline
from tcc_otel._export._spool import DESTINATION_FILE, Spool, destination_id
from tcc_otel._export._stats import Stats
from tcc_otel._local._server import Receiver
from tcc_otel._records._road import Road
from tcc_otel._records._run import Run
from tcc_otel._version import __version__

RESOURCE = Resource.create({"service.name": "weather-agent"})


@pytest.fixture
def pipelines() -> Iterator[list[ExportPipeline]]:
    """Pipelines a test made, shut down in teardown."""
    made: list[ExportPipeline] = []
    yield made
    for pipeline in made:
        pipeline.shutdown(2.0)


def send_run(
    pipelines: list[ExportPipeline],
    config: Config,
    *,
    url: str,
    api_key: str | None,
    collector: bool = False,
) -> Stats:
    """Make the destination's pipeline, record one run into it and flush; its counters."""
    stats = Stats()
    pipeline = export_pipeline(
        config, url=url, api_key=api_key, resource=RESOURCE, stats=stats, collector=collector
    )
    pipelines.append(pipeline)
    Run(Road(sink=pipeline, light=True), run_id="run-1").prompt("q").end()
    assert pipeline.flush(HANG_GUARD)
    return stats


class TestToTcc:
    def test_http_with_the_key_gzipped(
        self,
        receiver: Receiver,
        pipelines: list[ExportPipeline],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """To TCC the spans go over OTLP/HTTP to the URL given, gzipped, with the key as Bearer
        token and none of the OTLP exporter headers (those are for a collector); they carry
        the configured resource and tcc_otel's scope."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=agents")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none")
        config = resolve(base_url=receiver.url, api_key="k")
        stats = send_run(pipelines, config, url=receiver.traces_url, api_key="k")
        (request,) = receiver.requests
        (span,) = receiver.spans
        assert (
            request.path,
            request.headers.get("authorization"),
            request.headers.get("content-encoding"),
            "x-team" in request.headers,
        ) == ("/v1/traces", "Bearer k", "gzip", False)
        assert (span.name, span.resource["service.name"], span.scope_name) == (
            "invoke_agent",
            "weather-agent",
            SCOPE,
        )
        assert stats.snapshot()["exported"] == 1


class TestToACollector:
    def test_http_with_the_otlp_settings(
        self,
        receiver: Receiver,
        pipelines: list[ExportPipeline],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """To a collector over OTLP/HTTP the spans go with the OTLP exporter headers and
        compression, and without a key."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=agents")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none")
        config = resolve(exporter="otlp")
        send_run(pipelines, config, url=config.otlp_endpoint, api_key=None, collector=True)
        (request,) = receiver.requests
        assert (
            request.headers.get("x-team"),
            "authorization" in request.headers,
            "content-encoding" in request.headers,
            [span.name for span in receiver.spans],
        ) == ("agents", False, False, ["invoke_agent"])

    def test_grpc(self, pipelines: list[ExportPipeline], monkeypatch: pytest.MonkeyPatch) -> None:
        """With ``otlp_protocol="grpc"`` the spans go in one gRPC call, with the OTLP headers
        as metadata, the resource and tcc_otel's scope with its version."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=agents")
        with GrpcCollector() as collector:
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
            config = resolve(exporter="otlp", otlp_protocol="grpc")
            send_run(pipelines, config, url=config.otlp_endpoint, api_key=None, collector=True)
            (call,) = collector.calls
        (resource_spans,) = call.request.resource_spans
        (scope_spans,) = resource_spans.scope_spans
        service = [
            kv.value.string_value
            for kv in resource_spans.resource.attributes
            if kv.key == "service.name"
        ]
        assert (
            call.code,
            call.metadata["x-team"],
            service,
            (scope_spans.scope.name, scope_spans.scope.version),
            [span.name for span in scope_spans.spans],
        ) == ("OK", "agents", ["weather-agent"], (SCOPE, __version__), ["invoke_agent"])


class TestSpool:
    def test_spool_folder_of_the_destination(
        self, receiver: Receiver, pipelines: list[ExportPipeline], tmp_path: Path
    ) -> None:
        """With a spool directory the destination has its folder there, named after URL and
        key, whose ``destination`` file names the URL; the batch file is gone once
        delivered."""
        config = resolve(base_url=receiver.url, api_key="k", spool_dir=str(tmp_path))
        send_run(pipelines, config, url=receiver.traces_url, api_key="k")
        folder = tmp_path / destination_id(receiver.traces_url, "k")
        assert (
            sorted(os.listdir(tmp_path)),
            sorted(os.listdir(folder)),
            (folder / DESTINATION_FILE).read_text().strip(),
            [span.name for span in receiver.spans],
        ) == (
            [folder.name],
            [DESTINATION_FILE],
            receiver.traces_url,
            ["invoke_agent"],
        )

    def test_no_directory_no_spool(self) -> None:
        """Without a spool directory there is no spool."""
        assert _spool(None, "http://127.0.0.1:9/v1/traces", "k") is None

    def test_unusable_directory_logged(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A spool directory that cannot be made (here a file) gives no spool and one error
        saying spans are sent without it; nothing is raised."""
        caplog.set_level(logging.ERROR, logger="tcc_otel")
        blocked = tmp_path / "a-file"
        blocked.write_text("")
        spool = _spool(str(blocked), "http://127.0.0.1:9/v1/traces", "k")
        errors = [r.getMessage() for r in caplog.records if r.name == "tcc_otel"]
        assert (spool, len(errors)) == (None, 1)
        assert errors[0].startswith(f"TCC_SPOOL_DIR {blocked} cannot be used (")
        assert errors[0].endswith("); spans are sent without a spool")

    def test_usable_directory(self, tmp_path: Path) -> None:
        """A usable directory gives the destination's spool under it."""
        spool = _spool(str(tmp_path), "http://127.0.0.1:9/v1/traces", "k")
        assert isinstance(spool, Spool)
        spool.close()
        assert spool.directory == str(
            tmp_path / destination_id("http://127.0.0.1:9/v1/traces", "k")
        )
