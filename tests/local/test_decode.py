"""Tests for tcc_otel._local._decode: request bodies to spans, without a server."""

from __future__ import annotations

import gzip
import io
import json
import zlib

import pytest
from helpers.otlp import EXPECTED_SPANS, JSON_DOCUMENT, JSON_SPANS, protobuf, record_run

from tcc_otel._local import _decode
from tcc_otel._local._decode import BodyError, decode, decompress, read_body


def _read(raw: bytes, content_length: str | None = None, chunked: bool = False) -> bytes:
    return read_body(io.BufferedReader(io.BytesIO(raw)), content_length, chunked)


def _status(error: pytest.ExceptionInfo[BodyError]) -> tuple[int, str]:
    return error.value.status, error.value.message


class TestReadBody:
    def test_content_length(self) -> None:
        """Exactly Content-Length bytes are read; the rest stays for the next request."""
        stream = io.BufferedReader(io.BytesIO(b"0123456789POST /next"))
        assert read_body(stream, "10", False) == b"0123456789"
        assert stream.read() == b"POST /next"

    def test_no_body(self) -> None:
        """Neither a length nor chunks means an empty body."""
        assert _read(b"", None) == b""

    def test_chunked_with_trailers(self) -> None:
        """Chunks (with extensions) are joined; trailer fields up to the empty line are skipped."""
        raw = b"4;ext=1\r\nspan\r\n2\r\ns!\r\n0\r\nX-Trailer: yes\r\n\r\nNEXT"
        stream = io.BufferedReader(io.BytesIO(raw))
        assert read_body(stream, None, True) == b"spans!"
        assert stream.read() == b"NEXT"

    @pytest.mark.parametrize(
        ("raw", "content_length", "chunked", "expected"),
        [
            (b"", "-1", False, (400, "bad Content-Length '-1'")),
            (b"", "ten", False, (400, "bad Content-Length 'ten'")),
            (b"abc", "5", False, (400, "body ended after 3 of 5 bytes")),
            (
                b"",
                str(_decode.MAX_BODY_BYTES + 1),
                False,
                (413, "body of 33554433 bytes is over 33554432"),
            ),
            (b"zz\r\n", None, True, (400, "bad chunk size line b'zz\\r\\n'")),
            (
                b"4\r\nsp",
                None,
                True,
                (400, "chunked body ended early or a chunk was not CRLF-terminated"),
            ),
            (b"0\r\n", None, True, (400, "chunked body ended before its final empty line")),
        ],
    )
    def test_refused(
        self, raw: bytes, content_length: str | None, chunked: bool, expected: tuple[int, str]
    ) -> None:
        """A bad length, an oversized body or broken chunks raise BodyError with a status."""
        with pytest.raises(BodyError) as error:
            _read(raw, content_length, chunked)
        assert _status(error) == expected

    def test_chunked_over_limit(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Chunks adding up to more than MAX_BODY_BYTES are refused with 413."""
        monkeypatch.setattr(_decode, "MAX_BODY_BYTES", 5)
        with pytest.raises(BodyError) as error:
            _read(b"4\r\nspan\r\n4\r\nspan\r\n0\r\n\r\n", None, True)
        assert _status(error) == (413, "chunked body is over 5 bytes")


class TestDecompress:
    def test_encodings(self) -> None:
        """gzip (several members too), deflate and identity bodies come back as sent."""
        assert decompress(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip") == b"abcd"
        assert decompress(zlib.compress(b"abcd"), " Deflate ") == b"abcd"
        assert decompress(b"abcd", "identity") == decompress(b"abcd", "") == b"abcd"

    @pytest.mark.parametrize(
        ("body", "encoding", "expected"),
        [
            (b"", "br", (415, "unsupported Content-Encoding 'br'; use gzip or none")),
            (gzip.compress(b"abcd", mtime=0)[:-4], "gzip", (400, "gzip body is truncated")),
        ],
        ids=["unsupported", "truncated"],
    )
    def test_refused(self, body: bytes, encoding: str, expected: tuple[int, str]) -> None:
        """An unknown encoding is 415; a truncated body is 400."""
        with pytest.raises(BodyError) as error:
            decompress(body, encoding)
        assert _status(error) == expected

    def test_corrupt(self) -> None:
        """A body that is not gzip at all is 400, naming zlib's complaint."""
        with pytest.raises(BodyError) as error:
            decompress(b"not gzip", "gzip")
        assert error.value.status == 400
        assert error.value.message.startswith("gzip body is corrupt: ")

    def test_decompression_limit(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A body that inflates past MAX_DECODED_BYTES is refused with 413."""
        monkeypatch.setattr(_decode, "MAX_DECODED_BYTES", 10)
        with pytest.raises(BodyError) as error:
            decompress(gzip.compress(b"x" * 11), "gzip")
        assert _status(error) == (413, "decompressed body is over 10 bytes")


class TestDecode:
    def test_protobuf(self) -> None:
        """A protobuf request decodes to plain spans with ids, parents, events and values."""
        assert decode(protobuf(record_run()), "application/x-protobuf") == EXPECTED_SPANS
        assert decode(protobuf(record_run()), "application/protobuf") == EXPECTED_SPANS

    def test_json(self) -> None:
        """An OTLP JSON request (hex ids, every AnyValue type) decodes the same way."""
        assert decode(json.dumps(JSON_DOCUMENT).encode(), "application/json") == JSON_SPANS

    @pytest.mark.parametrize(
        ("body", "content_type", "status"),
        [
            (b"\xff\xff\xff", "application/x-protobuf", 400),
            (b"{not json", "application/json", 400),
            (b'{"resourceSpans": 3}', "application/json", 400),
            (b"", "text/plain", 415),
        ],
    )
    def test_refused(self, body: bytes, content_type: str, status: int) -> None:
        """A body that is not a trace request is 400; another media type is 415."""
        with pytest.raises(BodyError) as error:
            decode(body, content_type)
        assert error.value.status == status
