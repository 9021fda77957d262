"""Spool: batches kept on disk until the endpoint acknowledges them, so a crash or an exit with
the endpoint down loses nothing; the next process with the same directory sends them."""

from __future__ import annotations

import itertools
import os
import time

from tcc_otel._batch import Batch
from tcc_otel._log import logger

_SUFFIX = ".otlp.gz"


class Spool:
    """One directory of ``{created_ns}-{pid}-{seq}-{spans}.otlp.gz`` files, one per batch.

    A file belongs to the process whose pid it names; files of processes that are gone are
    adopted (renamed to our pid, atomically, so two processes never send the same file).
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self._seq = itertools.count()

    def write(self, batch: Batch) -> None:
        """Store ``batch``'s compressed body; set ``batch.spool_path``. Failures are logged."""
        name = f"{time.time_ns()}-{os.getpid()}-{next(self._seq)}-{batch.count}{_SUFFIX}"
        path = os.path.join(self.directory, name)
        tmp = path + ".tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(batch.compressed())
            os.replace(tmp, path)  # a reader never sees half a file
        except OSError as exc:
            logger.warning("could not spool %d spans to %s: %s", batch.count, self.directory, exc)
            return
        batch.spool_path = path

    def remove(self, batch: Batch) -> None:
        """Forget a batch that was delivered (or refused for good)."""
        if batch.spool_path is None:
            return
        try:
            os.remove(batch.spool_path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("could not remove spooled batch %s: %s", batch.spool_path, exc)
        batch.spool_path = None

    def adopt(self) -> list[Batch]:
        """Batches left by processes that are gone, oldest first, now ours."""
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(_SUFFIX))
        except OSError as exc:
            logger.warning("could not read the spool directory %s: %s", self.directory, exc)
            return []
        found = []
        me = os.getpid()
        for name in names:
            parsed = _parse(name)
            if parsed is None or parsed[1] == me or _alive(parsed[1]):
                continue
            created, _, seq, count = parsed
            mine = os.path.join(self.directory, f"{created}-{me}-a{seq}-{count}{_SUFFIX}")
            try:
                os.rename(os.path.join(self.directory, name), mine)
                with open(mine, "rb") as f:
                    body = f.read()
            except OSError:
                continue  # another process adopted it first
            found.append(Batch.from_spool(body, count, mine))
        return found

    def pending_spans(self) -> int:
        """Spans in this process's spool files."""
        me = os.getpid()
        total = 0
        try:
            names = os.listdir(self.directory)
        except OSError:
            return 0
        for name in names:
            parsed = _parse(name)
            if parsed is not None and parsed[1] == me:
                total += parsed[3]
        return total


def _parse(name: str) -> tuple[int, int, str, int] | None:
    """(created_ns, pid, seq, spans) from a spool file name, or ``None``."""
    if not name.endswith(_SUFFIX):
        return None
    parts = name[: -len(_SUFFIX)].split("-")
    if len(parts) != 4:
        return None
    try:
        return int(parts[0]), int(parts[1]), parts[2], int(parts[3])
    except ValueError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
