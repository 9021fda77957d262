"""The ``tcc-otel`` command line. ``tcc-otel dev`` prints an agent's runs locally, no account."""

from __future__ import annotations

import argparse
import io
import logging
import os
import sqlite3
import sys
import time

from tcc_otel._cli import _doctor
from tcc_otel._cli import _spool as _spool_command
from tcc_otel._config import TRACES_PATH
from tcc_otel._local import _fake_openai as fake_openai
from tcc_otel._local._api import Api
from tcc_otel._local._model import ReceivedSpan
from tcc_otel._local._printer import RunPrinter
from tcc_otel._local._server import Receiver
from tcc_otel._local._store import DEFAULT_DB, Store

_POLL_SECONDS = 0.05
"""How often the dev loop checks for settled runs."""


def main(argv: list[str] | None = None) -> int:
    """Run the ``tcc-otel`` command line.

    Args:
        argv: Arguments after the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
        The process exit code: 0 done, 1 ``--timeout`` passed before ``--runs`` were printed,
        2 usage error or the port could not be bound. ``doctor``: 0 when the test span was
        accepted, else 1.
    """
    args = _parser().parse_args(argv)
    if args.command == "doctor":
        return _doctor.run(as_json=args.json, budget=args.timeout, write=_write)
    logging.basicConfig(level=logging.WARNING, format="tcc-otel: %(levelname)s: %(message)s")
    if args.command == "spool":
        return _spool_command.run(
            args.dir, send=args.send, timeout=args.timeout, as_json=args.json, write=_write
        )
    if args.command == "fake-openai":
        return fake_openai.main(["--port", str(args.port)])
    if isinstance(sys.stdout, io.TextIOWrapper):  # a console that cannot show "├─" gets "?"
        sys.stdout.reconfigure(errors="replace")
    color = not args.no_color and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    return _dev(args.host, args.port, args.runs, args.timeout, color, args.db)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcc-otel", description="Tools for tcc_otel, The Context Company's tracing API."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    dev = commands.add_parser(
        "dev",
        help="receive your agent's spans on this machine and print each run as a tree",
        description=(
            "Listen for OTLP/HTTP traces on a loopback address and print each run as a tree. "
            "Run your agent with TCC_BASE_URL set to the address shown; no account needed."
        ),
    )
    dev.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    _port_option(dev, 4318)
    dev.add_argument(
        "--runs", type=_positive_int, metavar="N", help="exit after N runs have been printed"
    )
    _timeout(dev, None, "exit after SECONDS (with code 1 if --runs were not all printed by then)")
    dev.add_argument("--no-color", action="store_true", help="never use ANSI colors")
    dev.add_argument(
        "--db",
        default=DEFAULT_DB,
        metavar="PATH",
        help=(
            "SQLite file that keeps the runs across sessions, :memory: to keep none "
            f"(default {DEFAULT_DB} in the current directory)"
        ),
    )
    doctor = commands.add_parser(
        "doctor",
        help="show the resolved configuration and send one test span",
        description=(
            "Show where spans go and how that was decided (the API key only as a short masked "
            "prefix), send one test span, and say whether it was accepted and why not. "
            "Exit code 0 when it was accepted, else 1."
        ),
    )
    doctor.add_argument("--json", action="store_true", help="write one JSON object")
    spool = commands.add_parser(
        "spool",
        help="show the spans waiting in the spool directory (TCC_SPOOL_DIR), and send them",
        description=(
            "Show, per destination, the batches waiting in the spool directory and which process "
            "owns them. With --send, deliver those no running process owns, with the current "
            "configuration (TCC_API_KEY, TCC_BASE_URL, TCC_EXPORTER, OTEL_EXPORTER_OTLP_*); "
            "what fails stays on disk. Exit code 1 if --send left some waiting."
        ),
    )
    spool.add_argument("--dir", metavar="D", help="the spool directory (default TCC_SPOOL_DIR)")
    spool.add_argument("--send", action="store_true", help="send what no running process owns")
    _timeout(spool, 30.0, "time --send may take (default 30)")
    spool.add_argument("--json", action="store_true", help="write one JSON object")
    fake = commands.add_parser(
        "fake-openai",
        help="serve a fake OpenAI-compatible chat API on 127.0.0.1, to try instrumentations",
        description=(
            "Answer POST /v1/chat/completions deterministically (text, streaming, tool calls, "
            "token usage with cached tokens), so the real openai client and the GenAI "
            "instrumentations around it run with no key. Ctrl-C stops it."
        ),
    )
    _port_option(fake, 8001)
    budget = _doctor.DEFAULT_BUDGET
    _timeout(doctor, budget, f"time the test span may take, retries included (default {budget:g})")
    return parser


def _port_option(command: argparse.ArgumentParser, default: int) -> None:
    command.add_argument(
        "--port", type=_port, default=default, help=f"TCP port, 0 picks a free one ({default})"
    )


def _timeout(command: argparse.ArgumentParser, default: float | None, help: str) -> None:
    command.add_argument(
        "--timeout", type=_positive_float, default=default, metavar="SECONDS", help=help
    )


def _dev(
    host: str, port: int, runs: int | None, timeout: float | None, color: bool, db: str
) -> int:
    printer = RunPrinter(_write, color=color)
    try:
        store = Store(db)
    except (sqlite3.Error, ValueError) as error:
        _fail(f"cannot open --db {db}: {error}")
        return 2
    try:
        return _listen(host, port, runs, timeout, printer, store)
    finally:
        store.close()


def _listen(
    host: str,
    port: int,
    runs: int | None,
    timeout: float | None,
    printer: RunPrinter,
    store: Store,
) -> int:
    def on_spans(spans: list[ReceivedSpan]) -> None:
        printer.add(spans)
        store.add(spans)

    try:
        receiver = Receiver(host, port, on_spans=on_spans, keep=False, on_get=Api(store))
    except ValueError:
        _fail(f"--host must be a loopback address (127.0.0.1, ::1 or localhost), got {host!r}")
        return 2
    try:
        receiver.start()
    except OSError as error:
        _fail(
            f"cannot listen on {host} port {port}: {error.strerror or error}; "
            "is another tcc-otel dev or OTLP collector running? Choose another with --port."
        )
        return 2
    try:
        _write(
            f"tcc-otel dev: listening on {receiver.url} (OTLP/HTTP at {TRACES_PATH}); "
            f"point your agent at it with TCC_BASE_URL={receiver.url}; "
            f"see the runs at {receiver.url}/\n"
        )
        return _serve(printer, runs, timeout)
    except KeyboardInterrupt:  # Ctrl-C is how a dev session normally ends
        printer.flush_all()
        return 0
    finally:
        receiver.stop()


def _serve(printer: RunPrinter, runs: int | None, timeout: float | None) -> int:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        printer.flush_due()
        if runs is not None and printer.runs_printed >= runs:
            return 0
        if deadline is not None and time.monotonic() >= deadline:
            printer.flush_all()  # show what did arrive, settled or not
            if runs is None or printer.runs_printed >= runs:
                return 0
            _fail(
                f"timed out after {timeout:g} s with {printer.runs_printed} of {runs} runs "
                "printed; is your agent's TCC_BASE_URL set to the address above?"
            )
            return 1
        time.sleep(_POLL_SECONDS)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _fail(message: str) -> None:
    sys.stderr.write(f"tcc-otel dev: {message}\n")
    sys.stderr.flush()


def _port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
