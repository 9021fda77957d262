"""Start ``phoenix serve`` with its OTLP/gRPC receiver switched off.

Phoenix (checked with 20.26.1) has no setting that turns gRPC off while keeping the REST API:
``PHOENIX_HOST`` binds only the HTTP server, the gRPC server always listens on
``[::]:$PHOENIX_GRPC_PORT`` (every interface), and ``--read-only`` (the one switch that skips
gRPC) also answers 403 on all of ``/v1``, OTLP/HTTP ingest included. So this launcher replaces
the gRPC server's ``__aenter__`` with a no-op before handing over to Phoenix's own CLI; its
``__aexit__`` already does nothing when no server was started. test_phoenix.py checks that the
gRPC port stays closed, so a Phoenix release that moves this code fails the test loudly.

Run with the Phoenix venv's interpreter; every other option comes from ``PHOENIX_*`` variables.
"""

from __future__ import annotations

import importlib
import sys


async def _no_grpc(self: object) -> None:
    """Stands in for ``GrpcServer.__aenter__``: start nothing."""


def main() -> int:
    grpc_server = importlib.import_module("phoenix.server.grpc_server")
    server_class = getattr(grpc_server, "GrpcServer", None)
    if server_class is None or "__aenter__" not in vars(server_class):
        sys.stderr.write(
            "tests_phoenix/_serve.py: phoenix.server.grpc_server.GrpcServer.__aenter__ is gone; "
            "this Phoenix release needs a new way to keep gRPC off\n"
        )
        return 2
    server_class.__aenter__ = _no_grpc
    sys.argv = ["phoenix", "serve"]
    importlib.import_module("phoenix.server.main").main()  # returns when the server stops
    return 0


if __name__ == "__main__":
    sys.exit(main())
