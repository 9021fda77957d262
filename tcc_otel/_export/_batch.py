"""Batch: encoded spans that travel in one request, grouped by origin; splittable for 413."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterable

from tcc_otel._export._wire import Origin, export_request


def _gzip_of() -> tuple[str, Callable[[bytes], bytes]]:
    """The fastest gzip compressor installed: ISA-L's (``tcc-otel[fast]``: ~10x faster than
    zlib at its fastest level, and smaller), else zlib's level 1 (most of the gain for little
    CPU). Both write standard gzip."""
    try:
        from isal import igzip
    except ImportError:
        return "zlib", lambda body: gzip.compress(body, compresslevel=1)
    return "isal", lambda body: igzip.compress(body, compresslevel=1)


GZIP, _compress = _gzip_of()
"""Which compressor ``Batch.compressed`` uses (``isal`` or ``zlib``; doctor shows it)."""


class Batch:
    """Encoded spans for one ``POST /v1/traces``.

    A batch read back from the spool has only its compressed body: it cannot be split.
    """

    __slots__ = ("_body_gz", "count", "groups", "run_ids", "size", "spool_path")

    def __init__(self) -> None:
        self.groups: dict[Origin, list[bytes]] = {}
        self.count = 0
        self.size = 0  # bytes of encoded spans, before compression
        self.run_ids: set[str] = set()
        self.spool_path: str | None = None
        self._body_gz: bytes | None = None

    @classmethod
    def from_spool(cls, body_gz: bytes, count: int, path: str) -> Batch:
        """A batch whose compressed body was written by an earlier process."""
        batch = cls()
        batch._body_gz, batch.count, batch.size, batch.spool_path = (
            body_gz,
            count,
            len(body_gz),
            path,
        )
        return batch

    def add(self, where: Origin, span: bytes) -> None:
        """Append one encoded span."""
        self.groups.setdefault(where, []).append(span)
        self.count += 1
        self.size += len(span)
        self._body_gz = None

    def extend(self, spans: Iterable[tuple[Origin, bytes]]) -> None:
        """Append encoded spans in order."""
        for where, span in spans:
            self.add(where, span)

    def body(self) -> bytes:
        """The uncompressed request body (``ExportTraceServiceRequest`` protobuf)."""
        if self.groups or self._body_gz is None:
            return export_request(self.groups)
        return zlib.decompress(self._body_gz, 16 + zlib.MAX_WBITS)  # read back from the spool

    def compressed(self) -> bytes:
        """The gzip-compressed request body (``GZIP``)."""
        if self._body_gz is None:
            self._body_gz = _compress(export_request(self.groups))
        return self._body_gz

    @property
    def splittable(self) -> bool:
        """Whether ``split()`` can halve this batch."""
        return self.count > 1 and bool(self.groups)

    def split(self) -> tuple[Batch, Batch]:
        """Two batches holding the first and the second half of the spans."""
        spans = [(where, span) for where, group in self.groups.items() for span in group]
        half = len(spans) // 2
        first, second = Batch(), Batch()
        first.extend(spans[:half])
        second.extend(spans[half:])
        return first, second
