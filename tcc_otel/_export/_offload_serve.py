"""The helper process's side of ``_offload``: it reads frames of marshalled ``Row``s on its
standard input and answers each with a frame holding their ``encode_row`` results (an
``Answer``), in order, until its input closes (the application ended or let it go).

It holds no state beyond the span limits and sends nothing over the network: the application's
pipeline groups, batches, spools and sends what it gets back, as when it encodes itself.
"""

from __future__ import annotations

import marshal
import queue
import struct
import sys
import threading
from typing import IO, Any, NamedTuple

from tcc_otel._export._encode import Row, SpanLimitValues, encode_row

FRAME = struct.Struct("<I")
"""Every frame starts with its length in bytes, then that many bytes of ``marshal`` data."""
HELLO = "tcc_otel offload"
"""The first frame the helper writes once it is ready: ``(HELLO, sys.hexversion)``."""


class Answer(NamedTuple):
    """The helper's answer to one frame of rows: one blob, not a message per span, so that
    neither side makes (or copies) an object per span to carry it."""

    lengths: list[int]
    """Each row's encoded length in ``blob``, in order; ``-1`` for a row that failed."""
    notes: dict[int, Any]
    """By row index: ``(cuts, tcc.type)`` when the span limits cut something, or the error
    text of a row that failed."""
    blob: bytes
    """The encoded spans, one after the other."""


def read_frame(source: IO[bytes]) -> bytes | None:
    """The next frame's data, or ``None`` at the end of the stream."""
    head = source.read(FRAME.size)
    if len(head) < FRAME.size:
        return None
    (size,) = FRAME.unpack(head)
    data = source.read(size)
    return data if len(data) == size else None


def write_frame(sink: IO[bytes], data: bytes) -> None:
    """Write one frame and flush it."""
    sink.write(FRAME.pack(len(data)))
    sink.write(data)
    sink.flush()


def serve(source: IO[bytes], sink: IO[bytes], limits: SpanLimitValues) -> None:
    """Answer frames of rows until ``source`` ends.

    A thread reads ahead, so the application can write the next rows while this one writes
    results: neither side ever waits on a full pipe for the other.
    """
    frames: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def read_ahead() -> None:
        while True:
            data = read_frame(source)
            frames.put(data)
            if data is None:
                return

    threading.Thread(target=read_ahead, name="tcc_otel-offload-read", daemon=True).start()
    write_frame(sink, marshal.dumps((HELLO, sys.hexversion)))
    while True:
        data = frames.get()
        if data is None:
            return
        write_frame(sink, marshal.dumps(tuple(encode_rows(marshal.loads(data), limits))))


def encode_rows(rows: list[Row], limits: SpanLimitValues) -> Answer:
    """``encode_row`` of each row, as one answer frame's contents."""
    bodies: list[bytes] = []
    lengths: list[int] = []
    notes: dict[int, Any] = {}
    for i, row in enumerate(rows):
        try:
            body, cuts, kind = encode_row(row, limits)
        except Exception as exc:  # one bad span must not stop the rest
            lengths.append(-1)
            notes[i] = f"{type(exc).__name__}: {exc}"
            continue
        bodies.append(body)
        lengths.append(len(body))
        if any(cuts):
            notes[i] = (cuts, kind)
    return Answer(lengths, notes, b"".join(bodies))
