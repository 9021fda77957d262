"""Spool: batches kept on disk until the endpoint acknowledges them, so a crash or an exit with
the endpoint down loses nothing; the next process with the same directory sends them.

Layout: one folder per destination (URL and key), so a batch is only ever sent where it was
meant to go; the folder holds a ``destination`` file with the URL (never the key) and one
``{created_ns}-{pid}-{tag}-{spans}.otlp.gz`` file per batch. ``tag`` is ``b{instance}.{seq}``
for a batch to send, ``h{instance}.{seq}`` for a checkpoint of spans still waiting for their run
(written so that SIGKILL loses at most the last second; the owner never sends it, a later owner
does). A file belongs to the process and spool instance that wrote or adopted it; pid 0 marks a
file its owner let go of at shutdown. Files of processes that are gone, and released ones, are
adopted by an atomic rename, so two processes never send the same file.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from typing import NamedTuple

from tcc_otel._export._batch import Batch
from tcc_otel._log import logger

SUFFIX = ".otlp.gz"
DESTINATION_FILE = "destination"
RELEASED = 0
"""The pid field of a file whose owner let go of it: anyone may adopt it."""

_instances = itertools.count(1)  # spool instances of this process (several pipelines may share)
_live: set[int] = set()  # instances of this process that have not been closed


class SpoolFile(NamedTuple):
    """What a spool file's name says."""

    created_ns: int
    pid: int
    hold: bool
    """A checkpoint of spans waiting for their run (``h`` tag)."""
    instance: int
    seq: str
    spans: int


def parse(name: str) -> SpoolFile | None:
    """Read a spool file name; ``None`` if it is not one."""
    if not name.endswith(SUFFIX):
        return None
    parts = name[: -len(SUFFIX)].split("-")
    if len(parts) != 4:
        return None
    created, pid, tag, spans = parts
    kind = tag[:1]
    instance, dot, seq = tag[1:].partition(".")
    if kind not in ("b", "h") or not dot:
        return None
    try:
        return SpoolFile(int(created), int(pid), kind == "h", int(instance), seq, int(spans))
    except ValueError:
        return None


def destination_id(url: str, api_key: str | None) -> str:
    """The folder name of a destination: a digest of URL and key (the key is not recoverable)."""
    digest = hashlib.sha256(f"{url}\n{api_key or ''}".encode()).hexdigest()
    return digest[:16]


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def adoptable(found: SpoolFile) -> bool:
    """Whether a file may be taken over by this process: released, or its owner is gone."""
    if found.pid == RELEASED:
        return True
    if found.pid == os.getpid():
        return found.instance not in _live  # a closed spool of this process
    return not alive(found.pid)


def any_adoptable(root: str) -> bool:
    """Whether any destination folder under ``root`` holds a file this process may adopt."""
    return any(adoptable(found) for folder in inventory(root) for found in folder.files)


class Spool:
    """One destination's folder of batches; used by one pipeline's threads."""

    def __init__(self, root: str, url: str, api_key: str | None) -> None:
        self.root = root
        self.directory = os.path.join(root, destination_id(url, api_key))
        os.makedirs(self.directory, exist_ok=True)
        _write_destination(self.directory, url)
        self._instance = next(_instances)
        self._seq = itertools.count()
        _live.add(self._instance)

    def write(self, batch: Batch) -> None:
        """Store ``batch``'s compressed body; set ``batch.spool_path``. Failures are logged."""
        batch.spool_path = self._store(batch, "b")

    def write_hold(self, batch: Batch) -> str | None:
        """Checkpoint spans that still wait for their run; the path, or ``None`` on failure."""
        return self._store(batch, "h")

    def remove(self, path: str | None) -> None:
        """Forget a file whose spans were delivered (or refused for good), or are on disk in a
        batch file now."""
        if path is None:
            return
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("could not remove spooled batch %s: %s", path, exc)

    def adopt(self) -> list[Batch]:
        """Batches that processes now gone (or closed spools) left here, oldest first, now ours."""
        found = []
        for name in self._names():
            parsed = parse(name)
            if parsed is None or not adoptable(parsed):
                continue
            seq = next(self._seq)
            mine = self._path(parsed.created_ns, os.getpid(), f"b{self._instance}.a{seq}", parsed)
            try:
                os.rename(os.path.join(self.directory, name), mine)
                with open(mine, "rb") as f:
                    body = f.read()
            except OSError:
                continue  # another process adopted it first
            found.append(Batch.from_spool(body, parsed.spans, mine))
        return found

    def pending_spans(self) -> int:
        """Spans in this spool's files now."""
        return sum(found.spans for _, found in self._own())

    def close(self) -> None:
        """Let go of what is left (pid 0): any later process, or pipeline, adopts it."""
        _live.discard(self._instance)
        for name, found in self._own():
            released = self._path(found.created_ns, RELEASED, f"b0.{found.seq}", found)
            try:
                os.rename(os.path.join(self.directory, name), released)
            except OSError:
                continue  # removed (delivered) meanwhile

    def after_fork(self) -> None:
        """In a forked child: a new instance; the parent's files stay the parent's."""
        self._instance = next(_instances)
        self._seq = itertools.count()
        _live.add(self._instance)

    def _store(self, batch: Batch, kind: str) -> str | None:
        tag = f"{kind}{self._instance}.{next(self._seq)}"
        path = os.path.join(self.directory, f"{time.time_ns()}-{os.getpid()}-{tag}-{batch.count}")
        path += SUFFIX
        tmp = path + ".tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(batch.compressed())
            os.replace(tmp, path)  # a reader never sees half a file
        except OSError as exc:
            logger.warning("could not spool %d spans to %s: %s", batch.count, self.directory, exc)
            return None
        return path

    def _path(self, created: int, pid: int, tag: str, found: SpoolFile) -> str:
        return os.path.join(self.directory, f"{created}-{pid}-{tag}-{found.spans}{SUFFIX}")

    def _names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.directory) if n.endswith(SUFFIX))
        except OSError as exc:
            logger.warning("could not read the spool directory %s: %s", self.directory, exc)
            return []

    def _own(self) -> list[tuple[str, SpoolFile]]:
        """This instance's files: name and what the name says."""
        me = os.getpid()
        own = []
        for name in self._names():
            found = parse(name)
            if found is not None and found.pid == me and found.instance == self._instance:
                own.append((name, found))
        return own


def _write_destination(directory: str, url: str) -> None:
    """Name the destination of a folder (the URL only), once."""
    path = os.path.join(directory, DESTINATION_FILE)
    if os.path.exists(path):
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(url + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        logger.warning("could not write %s: %s", path, exc)


class Folder(NamedTuple):
    """One destination's folder, as ``tcc-otel spool`` shows it."""

    id: str
    url: str | None
    """From the folder's ``destination`` file; ``None`` if it is missing."""
    files: list[SpoolFile]


def inventory(root: str) -> list[Folder]:
    """Every destination folder under the spool directory ``root`` and its files, oldest first;
    empty if ``root`` cannot be read. Never raises."""
    try:
        entries = sorted(os.listdir(root))
    except OSError:  # missing, not a directory, not readable: nothing to show or adopt
        return []
    folders = []
    for entry in entries:
        directory = os.path.join(root, entry)
        try:
            names = sorted(os.listdir(directory))
        except OSError:  # a file, or unreadable: not a destination folder
            continue
        files = [found for found in map(parse, names) if found]
        url = None
        try:
            with open(os.path.join(directory, DESTINATION_FILE), encoding="utf-8") as f:
                url = f.read().strip() or None
        except OSError:
            pass
        folders.append(Folder(entry, url, files))
    return folders
