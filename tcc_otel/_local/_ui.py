"""The web page of ``tcc-otel dev``: serves ``/`` and ``/static/*`` from files in the package."""

from __future__ import annotations

from importlib import resources
from typing import Final

from tcc_otel._local._server import HttpReply

STATIC_PREFIX: Final = "/static/"
"""Every asset path starts with this; the page itself is ``/``."""

_TYPES: Final = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
"""The only files served, by name; nothing else under ``static/`` is reachable."""
_TEXT: Final = "text/plain; charset=utf-8"


def is_ui_path(path: str) -> bool:
    """Whether ``path`` belongs to the web page (``/``, ``/index.html`` or ``/static/...``)."""
    return path in ("/", "/index.html") or path.startswith(STATIC_PREFIX)


def serve(path: str) -> HttpReply:
    """The file for a web-page path, or a 404 for a name that is not one of ours.

    Names are looked up in a fixed table, so ``..`` or any other path cannot reach other files.
    """
    name = "index.html" if path in ("/", "/index.html") else path[len(STATIC_PREFIX) :]
    content_type = _TYPES.get(name)
    if content_type is None:
        return HttpReply(404, _TEXT, f"no such file {path}".encode())
    body = resources.files("tcc_otel._local").joinpath("static").joinpath(name).read_bytes()
    return HttpReply(200, content_type, body)
