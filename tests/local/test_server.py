"""Tests for tcc_otel._local._server: real OTLP/HTTP requests to a receiver on 127.0.0.1."""

from __future__ import annotations

import gzip
import http.client
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from helpers.otlp import EXPECTED_SPANS, JSON_DOCUMENT, JSON_SPANS, protobuf, record_run
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from tcc_otel._local import _decode
from tcc_otel._local._model import ReceivedRequest, ReceivedSpan
from tcc_otel._local._server import Receiver


@contextmanager
def _exporter(
    receiver: Receiver, compression: Compression | None = None
) -> Iterator[OTLPSpanExporter]:
    """The stock OTLP/HTTP span exporter, pointed at ``receiver`` and shut down after use."""
    exporter = OTLPSpanExporter(endpoint=receiver.traces_url, compression=compression, timeout=5)
    try:
        yield exporter
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call,unused-ignore]


def _post(
    receiver: Receiver,
    body: bytes,
    headers: dict[str, str],
    path: str = "/v1/traces",
) -> tuple[int, str, bytes]:
    """POST ``body`` and return (status, content type, response body)."""
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


class TestExporterToReceiver:
    def test_spans_arrive_decoded(self, receiver: Receiver) -> None:
        """Spans sent by the stock gzip OTLP exporter arrive with ids, parents and values intact."""
        with _exporter(receiver, compression=Compression.Gzip) as exporter:
            assert exporter.export(record_run()) == SpanExportResult.SUCCESS

        assert receiver.spans == EXPECTED_SPANS
        assert [span.duration_ms for span in receiver.spans] == [800.0, 100.0, 1230.0]
        [request] = receiver.requests
        assert (request.path, request.span_count, request.status) == ("/v1/traces", 3, 200)
        assert request.headers["content-type"] == "application/x-protobuf"
        assert request.headers["content-encoding"] == "gzip"
        assert request.body_size == int(request.headers["content-length"])

    def test_on_spans_gets_each_request(self) -> None:
        """on_spans is called once per request with that request's spans, before the reply."""
        calls: list[list[str]] = []
        with Receiver(port=0, on_spans=lambda s: calls.append([x.name for x in s])) as receiver:
            spans = record_run()
            with _exporter(receiver) as exporter:
                assert exporter.export(spans[:2]) == SpanExportResult.SUCCESS
                assert exporter.export(spans[2:]) == SpanExportResult.SUCCESS
            assert calls == [["chat gpt-4o", "execute_tool get_weather"], ["invoke_agent weather"]]
            assert receiver.wait_for_spans(3, timeout=5)

    def test_failing_callback_keeps_serving(self, caplog: pytest.LogCaptureFixture) -> None:
        """An on_spans callback that raises is logged; the request still succeeds."""

        def explode(spans: list[ReceivedSpan]) -> None:
            raise RuntimeError("boom")

        with Receiver(port=0, on_spans=explode) as receiver:
            with caplog.at_level(logging.ERROR, logger="tcc_otel"):
                status, _, _ = _post(
                    receiver, protobuf(record_run()), {"Content-Type": "application/x-protobuf"}
                )
            assert status == 200
            assert receiver.spans == EXPECTED_SPANS
        assert [r.getMessage() for r in caplog.records] == ["receiver on_spans callback failed"]

    def test_keep_false(self) -> None:
        """With keep=False spans only go to on_spans; nothing accumulates in the receiver."""
        calls: list[list[ReceivedSpan]] = []
        with Receiver(port=0, on_spans=calls.append, keep=False) as receiver:
            with _exporter(receiver) as exporter:
                assert exporter.export(record_run()) == SpanExportResult.SUCCESS
            assert (calls, receiver.spans, receiver.requests) == ([EXPECTED_SPANS], [], [])


class TestBodies:
    def test_protobuf_reply(self, receiver: Receiver) -> None:
        """A protobuf request is answered 200 with an empty protobuf ExportTraceServiceResponse."""
        body = protobuf(record_run())
        assert _post(receiver, body, {"Content-Type": "application/x-protobuf"}) == (
            200,
            "application/x-protobuf",
            b"",
        )
        assert receiver.requests[0].body_size == len(body)

    def test_gzip(self, receiver: Receiver) -> None:
        """A gzip body is decompressed; body_size counts the compressed bytes."""
        body = gzip.compress(protobuf(record_run()))
        headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
        assert _post(receiver, body, headers)[0] == 200
        assert receiver.spans == EXPECTED_SPANS
        assert receiver.requests[0].body_size == len(body)

    def test_chunked_then_keep_alive(self, receiver: Receiver) -> None:
        """A chunked body is read whole, and the connection serves the next request too."""
        body = protobuf(record_run())
        connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
        try:
            connection.request(
                "POST",
                "/v1/traces",
                body=iter([body[:10], body[10:]]),
                headers={"Content-Type": "application/x-protobuf"},
                encode_chunked=True,
            )
            first = connection.getresponse()
            first.read()
            connection.request(
                "POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"}
            )
            second = connection.getresponse()
            second.read()
        finally:
            connection.close()
        assert (first.status, second.status) == (200, 200)
        assert receiver.spans == EXPECTED_SPANS + EXPECTED_SPANS
        assert [r.headers.get("transfer-encoding") for r in receiver.requests] == ["chunked", None]
        assert [r.body_size for r in receiver.requests] == [len(body), len(body)]

    def test_json(self, receiver: Receiver) -> None:
        """An OTLP JSON body (hex ids, every AnyValue type) is decoded and answered in JSON."""
        reply = _post(
            receiver, json.dumps(JSON_DOCUMENT).encode(), {"Content-Type": "application/json"}
        )
        assert reply == (200, "application/json", b"{}")
        assert receiver.spans == JSON_SPANS


class TestRefusals:
    @pytest.mark.parametrize(
        ("body", "headers", "status"),
        [
            (b"\xff\xff\xff", {"Content-Type": "application/x-protobuf"}, 400),
            (b"{not json", {"Content-Type": "application/json"}, 400),
            (b'{"resourceSpans": 3}', {"Content-Type": "application/json"}, 400),
            (
                b"not gzip",
                {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
                400,
            ),
            (b"", {"Content-Type": "application/x-protobuf", "Content-Encoding": "br"}, 415),
            (b"", {"Content-Type": "text/plain"}, 415),
        ],
    )
    def test_bad_body(
        self, receiver: Receiver, body: bytes, headers: dict[str, str], status: int
    ) -> None:
        """A body that cannot be decoded is refused with 4xx, and the server keeps serving."""
        assert _post(receiver, body, headers)[0] == status
        assert _post(receiver, b"", {"Content-Type": "application/x-protobuf"})[0] == 200
        assert receiver.spans == []
        assert [(r.span_count, r.status) for r in receiver.requests] == [(0, status), (0, 200)]

    def test_decoding_bug(
        self,
        receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """An unexpected error while decoding is logged and answered 500; serving goes on."""

        def broken(request: object) -> list[ReceivedSpan]:
            raise KeyError("bug")

        monkeypatch.setattr(_decode, "_spans_of", broken)
        headers = {"Content-Type": "application/x-protobuf"}
        with caplog.at_level(logging.ERROR, logger="tcc_otel"):
            assert _post(receiver, b"", headers)[0] == 500
        monkeypatch.undo()
        assert _post(receiver, b"", headers)[0] == 200
        assert [r.status for r in receiver.requests] == [500, 200]
        assert [r.getMessage() for r in caplog.records] == [
            "receiver failed to decode a request to /v1/traces"
        ]

    def test_other_path(self, receiver: Receiver) -> None:
        """A POST to any other path is answered 404 and recorded."""
        status, _, _ = _post(receiver, b"x", {"Content-Type": "application/x-protobuf"}, "/v1/logs")
        assert status == 404
        assert receiver.requests == [
            ReceivedRequest(
                path="/v1/logs",
                headers={
                    "host": f"127.0.0.1:{receiver.port}",
                    "accept-encoding": "identity",
                    "content-length": "1",
                    "content-type": "application/x-protobuf",
                },
                body_size=1,
                span_count=0,
                status=404,
            )
        ]

    def test_get(self, receiver: Receiver) -> None:
        """GET is answered 405 on the traces path and 404 elsewhere."""
        statuses = []
        for path in ("/v1/traces", "/"):
            connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
            try:
                connection.request("GET", path)
                statuses.append(connection.getresponse().status)
            finally:
                connection.close()
        assert statuses == [405, 404]

    def test_response_status(self, receiver: Receiver) -> None:
        """With response_status set to 503 requests are answered 503 and their spans not kept."""
        receiver.response_status = 503
        body = protobuf(record_run())
        assert _post(receiver, body, {"Content-Type": "application/x-protobuf"})[0] == 503
        assert receiver.spans == []
        assert [(r.span_count, r.status) for r in receiver.requests] == [(3, 503)]
        assert not receiver.wait_for_spans(1, timeout=0.01)


class TestLifecycle:
    @pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
    def test_refuses_non_loopback(self, host: str) -> None:
        """A host that is not a loopback address is refused before anything is bound."""
        with pytest.raises(ValueError, match="only listens on loopback"):
            Receiver(host, 0)

    def test_only_the_loopback_hosts(self) -> None:
        """Another 127/8 address is refused: the receiver serves the hosts in
        ``_config.LOOPBACK_HOSTS``, where tcc_otel sends without an API key."""
        with pytest.raises(ValueError, match=r"use 127\.0\.0\.1, ::1 or localhost"):
            Receiver("127.0.0.2", 0)

    def test_localhost(self) -> None:
        """localhost binds 127.0.0.1 and the url says so."""
        with Receiver("localhost", 0) as receiver:
            assert receiver.url == f"http://127.0.0.1:{receiver.port}"
            assert receiver.traces_url == receiver.url + "/v1/traces"

    def test_stop_is_idempotent(self) -> None:
        """stop() may be called again, and a stopped receiver cannot be restarted."""
        receiver = Receiver(port=0)
        with pytest.raises(RuntimeError, match="after start"):
            _ = receiver.port
        receiver.start()
        receiver.stop()
        receiver.stop()
        with pytest.raises(RuntimeError, match="called twice"):
            receiver.start()

    def test_port_in_use(self, receiver: Receiver) -> None:
        """Starting a second receiver on a port in use raises OSError."""
        with pytest.raises(OSError):  # noqa: PT011 - the errno differs across platforms
            Receiver(port=receiver.port).start()
