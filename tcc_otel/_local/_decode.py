"""From an OTLP/HTTP request body to spans: chunked framing, gzip/deflate, protobuf or JSON."""

from __future__ import annotations

import base64
import json
import zlib
from io import BufferedIOBase
from typing import Any

from google.protobuf import json_format  # type: ignore[import-untyped,unused-ignore]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from tcc_otel._local._model import ReceivedSpan

MAX_BODY_BYTES = 32 * 1024 * 1024
"""Largest request body accepted, as sent (compressed)."""
MAX_DECODED_BYTES = 128 * 1024 * 1024
"""Largest body accepted after decompression."""
PROTOBUF = "application/x-protobuf"
"""Content-Type of OTLP protobuf, the encoding the receiver answers in unless asked in JSON."""
JSON = "application/json"
"""Content-Type of OTLP JSON."""

_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class BodyError(Exception):
    """A request body the receiver refuses, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def read_body(stream: BufferedIOBase, content_length: str | None, chunked: bool) -> bytes:
    """Read a request body framed by ``Content-Length`` or chunked transfer encoding.

    Returns:
        The body; empty when there is neither a length nor chunks.

    Raises:
        BodyError: A bad length (400), a body over ``MAX_BODY_BYTES`` (413), or a body that
            ended early (400). The connection cannot be reused after this.
    """
    if chunked:
        return _read_chunked(stream)
    if content_length is None:
        return b""
    try:
        length = int(content_length)
    except ValueError:
        length = -1
    if length < 0:
        raise BodyError(400, f"bad Content-Length {content_length!r}")
    if length > MAX_BODY_BYTES:
        raise BodyError(413, f"body of {length} bytes is over {MAX_BODY_BYTES}")
    body = stream.read(length)
    if len(body) < length:
        raise BodyError(400, f"body ended after {len(body)} of {length} bytes")
    return body


def _read_chunked(stream: BufferedIOBase) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        line = stream.readline(1024)
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise BodyError(400, f"bad chunk size line {line[:40]!r}") from None
        if size < 0:
            raise BodyError(400, f"bad chunk size line {line[:40]!r}")
        if size == 0:
            break
        total += size
        if total > MAX_BODY_BYTES:
            raise BodyError(413, f"chunked body is over {MAX_BODY_BYTES} bytes")
        chunk = stream.read(size)
        if len(chunk) < size or stream.readline(3) != b"\r\n":
            raise BodyError(400, "chunked body ended early or a chunk was not CRLF-terminated")
        chunks.append(chunk)
    while True:  # trailer fields, up to the empty line
        line = stream.readline(8192)
        if not line:
            raise BodyError(400, "chunked body ended before its final empty line")
        if line in (b"\r\n", b"\n"):
            break
    return b"".join(chunks)


def decompress(body: bytes, encoding: str) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate or identity), refusing oversized results.

    Raises:
        BodyError: An unsupported encoding (415), a corrupt or truncated body (400), or one
            over ``MAX_DECODED_BYTES`` once decompressed (413).
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise BodyError(415, f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    parts: list[bytes] = []
    size = 0
    data = body
    try:
        while data:  # a gzip body may hold several members back to back
            inflater = zlib.decompressobj(wbits)
            part = inflater.decompress(data, MAX_DECODED_BYTES + 1 - size)
            size += len(part)
            if size > MAX_DECODED_BYTES:
                raise BodyError(413, f"decompressed body is over {MAX_DECODED_BYTES} bytes")
            if not inflater.eof:
                raise BodyError(400, f"{encoding} body is truncated")
            parts.append(part)
            data = inflater.unused_data if encoding == "gzip" else b""
    except zlib.error as error:
        raise BodyError(400, f"{encoding} body is corrupt: {error}") from None
    return b"".join(parts)


def decode(body: bytes, content_type: str) -> list[ReceivedSpan]:
    """Decode an OTLP ExportTraceServiceRequest body (protobuf or OTLP JSON) into spans.

    Args:
        body: The decompressed body.
        content_type: The media type, lower case, without parameters.

    Raises:
        BodyError: Another media type (415), or a body that is not such a request (400).
    """
    if content_type in (PROTOBUF, "application/protobuf"):
        try:
            request = ExportTraceServiceRequest.FromString(body)
        except Exception as error:  # google.protobuf.message.DecodeError and kin
            raise BodyError(400, f"body is not an OTLP protobuf trace request: {error}") from None
    elif content_type == JSON:
        request = ExportTraceServiceRequest()
        try:
            document = json.loads(body)
            json_format.ParseDict(_hex_ids_to_base64(document), request, ignore_unknown_fields=True)
        except Exception as error:  # ValueError, json_format.ParseError, TypeError
            raise BodyError(400, f"body is not an OTLP JSON trace request: {error}") from None
    else:
        raise BodyError(415, f"unsupported Content-Type {content_type!r}; use {PROTOBUF} or {JSON}")
    return _spans_of(request)


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP JSON writes trace and span ids as hex; protobuf's JSON mapping wants base64."""
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if (
            key in _ID_KEYS
            and isinstance(value, str)
            and len(value) in (16, 32)
            and _HEX_DIGITS.issuperset(value)
        ):
            converted[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
        else:
            converted[key] = _hex_ids_to_base64(value)
    return converted


def _spans_of(request: Any) -> list[ReceivedSpan]:
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope_name = str(scope_spans.scope.name)
            for span in scope_spans.spans:
                parent = bytes(span.parent_span_id)
                spans.append(
                    ReceivedSpan(
                        trace_id=bytes(span.trace_id).hex(),
                        span_id=bytes(span.span_id).hex(),
                        parent_span_id=parent.hex() if parent else None,
                        name=str(span.name),
                        kind=_KINDS.get(int(span.kind), str(span.kind)),
                        start_ns=int(span.start_time_unix_nano),
                        end_ns=int(span.end_time_unix_nano),
                        status_code=_STATUS_CODES.get(int(span.status.code), str(span.status.code)),
                        status_message=str(span.status.message),
                        attributes=_attributes(span.attributes),
                        events=[(str(e.name), _attributes(e.attributes)) for e in span.events],
                        resource=resource,
                        scope_name=scope_name,
                    )
                )
    return spans


def _attributes(key_values: Any) -> dict[str, Any]:
    return {str(kv.key): _any_value(kv.value) for kv in key_values}


def _any_value(value: Any) -> Any:
    """Turn an OTLP AnyValue into str, bool, int, float, bytes, list, dict or None."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return str(value.string_value)
    if which == "bool_value":
        return bool(value.bool_value)
    if which == "int_value":
        return int(value.int_value)
    if which == "double_value":
        return float(value.double_value)
    if which == "bytes_value":
        return bytes(value.bytes_value)
    if which == "array_value":
        return [_any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return None
