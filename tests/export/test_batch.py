"""Batch (tcc_otel/_export/_batch.py): encoded spans for one request, grouped by origin; its body
plain and gzipped, a batch read back from the spool, and the halves a 413 asks for."""

from __future__ import annotations

import gzip
import sys

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tcc_otel._export import _batch
from tcc_otel._export._batch import Batch
from tcc_otel._export._wire import Origin, export_request, origin, span

AGENT = origin({"service.name": "agent"}, "tcc_otel", "1.0")
WORKER = origin({"service.name": "worker"}, "tcc_otel", "1.0")


def encoded(name: str, span_id: int = 1) -> bytes:
    """One encoded span called ``name``."""
    return span(
        trace_id=0x2A,
        span_id=span_id,
        parent_id=None,
        parent_remote=False,
        name=name,
        kind=1,
        start_ns=1_000,
        end_ns=2_000,
        attrs={"tcc.runId": "run-1"},
    )


def filled(*spans: tuple[Origin, str]) -> Batch:
    """A batch holding a span per ``(origin, name)``, in order."""
    batch = Batch()
    batch.extend((where, encoded(name, index + 1)) for index, (where, name) in enumerate(spans))
    return batch


def contents(body: bytes) -> list[tuple[str, str, list[str]]]:
    """A request body decoded: ``(service.name, scope name, span names)`` per scope."""
    request = ExportTraceServiceRequest.FromString(body)
    return [
        (
            next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name"),
            ss.scope.name,
            [s.name for s in ss.spans],
        )
        for rs in request.resource_spans
        for ss in rs.scope_spans
    ]


class TestAdding:
    def test_spans_grouped_by_origin_in_order(self) -> None:
        """Spans are grouped by origin, groups in the order first seen, spans in the order
        added; count and size (encoded bytes, before compression) add up."""
        batch = filled((AGENT, "a1"), (WORKER, "w1"), (AGENT, "a2"))
        assert (batch.count, batch.size, contents(batch.body())) == (
            3,
            len(encoded("a1", 1)) + len(encoded("w1", 2)) + len(encoded("a2", 3)),
            [("agent", "tcc_otel", ["a1", "a2"]), ("worker", "tcc_otel", ["w1"])],
        )

    def test_body_is_the_export_request_of_its_groups(self) -> None:
        """The body is exactly ``export_request`` of the groups: the wire encoder's bytes."""
        batch = filled((AGENT, "a1"), (WORKER, "w1"))
        assert batch.body() == export_request(
            {AGENT: [encoded("a1", 1)], WORKER: [encoded("w1", 2)]}
        )

    def test_empty(self) -> None:
        """A new batch holds nothing, has an empty body and cannot be split."""
        batch = Batch()
        assert (batch.count, batch.size, batch.body(), batch.splittable, batch.spool_path) == (
            0,
            0,
            b"",
            False,
            None,
        )


class TestCompressed:
    def test_gzip_of_the_body(self) -> None:
        """The compressed body is the plain body gzipped, and the same bytes when asked
        again."""
        batch = filled((AGENT, "a1"), (AGENT, "a2"))
        first = batch.compressed()
        assert (gzip.decompress(first), batch.compressed()) == (batch.body(), first)

    def test_adding_after_compressing(self) -> None:
        """A span added after the body was compressed is in the next compressed body."""
        batch = filled((AGENT, "a1"))
        batch.compressed()
        batch.add(AGENT, encoded("a2", 2))
        assert contents(gzip.decompress(batch.compressed())) == [
            ("agent", "tcc_otel", ["a1", "a2"])
        ]


class TestCompressors:
    def test_isal_when_the_fast_extra_is_installed(self) -> None:
        """The dev extras install ``tcc-otel[fast]``: ISA-L compresses, into standard gzip."""
        name, compress = _batch._gzip_of()
        body = filled((AGENT, "a"), (WORKER, "b")).body() * 50
        assert (name, _batch.GZIP, gzip.decompress(compress(body))) == ("isal", "isal", body)

    def test_zlib_without_it(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without ISA-L, zlib's fastest level: the same body, in gzip."""
        monkeypatch.setitem(sys.modules, "isal", None)  # as if not installed
        name, compress = _batch._gzip_of()
        body = filled((AGENT, "a"), (WORKER, "b")).body() * 50
        packed = compress(body)
        assert (name, gzip.decompress(packed)) == ("zlib", body)
        assert packed[:2] == b"\x1f\x8b"  # a gzip member, as Content-Encoding: gzip needs


class TestFromSpool:
    def test_only_the_compressed_body(self) -> None:
        """A batch read back from the spool sends the body it was written with, decompressed
        when asked plainly; its size is the compressed size, and it cannot be split."""
        written = filled((AGENT, "a1"), (WORKER, "w1"), (AGENT, "a2"))
        body_gz = written.compressed()
        batch = Batch.from_spool(body_gz, 3, "/spool/dest/1-2-x-3.otlp.gz")
        assert (
            batch.count,
            batch.size,
            batch.spool_path,
            batch.compressed(),
            contents(batch.body()),
            batch.splittable,
        ) == (
            3,
            len(body_gz),
            "/spool/dest/1-2-x-3.otlp.gz",
            body_gz,
            [("agent", "tcc_otel", ["a1", "a2"]), ("worker", "tcc_otel", ["w1"])],
            False,
        )


class TestSplit:
    def test_halves_in_order(self) -> None:
        """Five spans, taken group by group, split into the first two and the last three; each
        half keeps its spans' origins, and together they are the batch again."""
        batch = filled((AGENT, "a1"), (WORKER, "w1"), (AGENT, "a2"), (WORKER, "w2"), (AGENT, "a3"))
        first, second = batch.split()
        assert [(half.count, contents(half.body())) for half in (first, second)] == [
            (2, [("agent", "tcc_otel", ["a1", "a2"])]),
            (3, [("agent", "tcc_otel", ["a3"]), ("worker", "tcc_otel", ["w1", "w2"])]),
        ]
        assert first.size + second.size == batch.size

    def test_splittable(self) -> None:
        """Only a batch of two spans or more, with its spans at hand, can be split."""
        assert [
            filled((AGENT, "a1")).splittable,
            filled((AGENT, "a1"), (AGENT, "a2")).splittable,
        ] == [False, True]
