"""An agent as a user writes it: one run with steps and a tool call, and no flush() or shutdown().

Run by tests/e2e/test_exit.py in a subprocess, configured by the environment only (TCC_BASE_URL,
TCC_API_KEY, ...). It logs like an application (``logging.basicConfig``, ``name LEVEL message``)
and prints ``{"run_id": ..., "spans": N}`` on stdout.

Options:
    --feedback         also submit feedback on the run.
    --forbid-network   any socket connect or DNS lookup is reported on stderr as
                       ``NETWORK USED: ...`` and fails.
    --crash            end with an uncaught exception after the run ended.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
from typing import Any

SPANS = 4
"""Spans one run of this agent records: the run, two steps, one tool call."""


def forbid_network() -> None:
    """Make every outgoing connection and name lookup fail loudly."""

    def refuse(what: str, target: Any) -> None:
        sys.stderr.write(f"NETWORK USED: {what} {target!r}\n")
        raise OSError(f"network use is forbidden in this test: {what}")

    def connect(self: Any, address: Any) -> None:
        refuse("connect", address)

    def connect_ex(self: Any, address: Any) -> int:
        refuse("connect_ex", address)
        return 1

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        refuse("getaddrinfo", host)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feedback", action="store_true")
    parser.add_argument("--forbid-network", action="store_true")
    parser.add_argument("--crash", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    if args.forbid_network:
        forbid_network()

    import tcc_otel as tcc  # imported as late as an application would

    r = tcc.run(session_id="session-exit")
    r.prompt("What is the weather in Paris?")
    with r.step() as s:
        s.prompt("weather in Paris?").response("get_weather(Paris)").model(used="gpt-4o")
    r.tool_call("get_weather").args({"city": "Paris"}).result("18C").end()
    tcc.step(run_id=r.run_id).prompt("summarise").error("upstream timeout")
    r.response("It is 18C in Paris.").end()
    if args.feedback:
        tcc.submit_feedback(r.run_id, score="thumbs_up", text="great")
    sys.stdout.write(json.dumps({"run_id": r.run_id, "spans": SPANS}) + "\n")
    sys.stdout.flush()
    if args.crash:
        raise RuntimeError("the agent crashed after its run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
