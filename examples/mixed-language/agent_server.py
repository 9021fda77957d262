"""The Python agent of the mixed-language example: an HTTP service traced with tcc_otel.

For each ``POST /chat`` (JSON ``{"message": ...}``) it continues the caller's trace from the W3C
``traceparent`` header, records one run under the caller's span (a step, the ``get_weather``
tool call, a second step), calls the Node tool service with ``tcc.inject()`` headers so the
tool's span joins the trace *and* the run (``baggage: tcc.runId=...``), flushes its spans and
answers ``{"run_id": ..., "answer": ...}``. The LLM is a fake, so the example runs offline.

Run it by hand (README.md beside this file), or as tests/e2e/test_mixed_language.py does::

    TCC_BASE_URL=http://127.0.0.1:4318 python agent_server.py --port 8000 \
        --tool-url http://127.0.0.1:8001/weather

``--port 0`` picks a free port; the line printed on start names the address.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import tcc_otel as tcc

MODEL = "gpt-4o"
SYSTEM_PROMPT = "You are a weather agent. Use get_weather for current conditions. Be brief."
TOOL_TIMEOUT = 10.0
"""Seconds the tool service may take to answer: a hang guard, not an expectation."""

# W3C whatever OTEL_PROPAGATORS says: the front sends `traceparent`, maybe `baggage`.
_W3C = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])

logger = logging.getLogger("agent")


def incoming_context(headers: Mapping[str, str]) -> Context:
    """The caller's trace context (and baggage) from the request headers."""
    return _W3C.extract({name.lower(): value for name, value in headers.items()})


def get_weather(tool_url: str, city: str) -> dict[str, Any]:
    """Call the tool service; ``tcc.inject()`` adds ``traceparent`` and the run's baggage."""
    headers = dict(tcc.inject({"accept": "application/json"}))
    request = Request(f"{tool_url}?{urlencode({'city': city})}", headers=headers)
    with urlopen(request, timeout=TOOL_TIMEOUT) as response:
        result: dict[str, Any] = json.load(response)
    return result


def city_in(message: str) -> str:
    """The fake LLM's reading of the question: the last capitalised word, else London."""
    words = [word.strip("?.!,") for word in message.split()]
    capitalised = [word for word in words[1:] if word[:1].isupper()]
    return capitalised[-1] if capitalised else "London"


def answer(message: str, tool_url: str) -> dict[str, str]:
    """One agent run: decide on the tool, call it, summarise. Recorded under the active span."""
    with tcc.run() as r:
        r.prompt(message, system_prompt=SYSTEM_PROMPT).metadata({"tcc.agent": "weather"})
        city = city_in(message)
        with r.step() as s:
            s.prompt(message).model(requested=MODEL, used=MODEL)
            s.response(f"get_weather(city={city!r})").finish_reason("tool_call")
        with r.tool_call("get_weather") as t:
            t.args({"city": city})
            weather = get_weather(tool_url, city)  # inside the tool call: its span is the parent
            t.result(weather)
        reply = f"It is {weather['temperature_c']} °C and {weather['conditions']} in {city}."
        with r.step() as s:
            s.prompt(json.dumps(weather)).model(requested=MODEL, used=MODEL)
            s.response(reply).finish_reason("stop")
        r.response(reply)
    tcc.flush()  # the run's spans are delivered before the caller gets its answer
    return {"run_id": r.run_id, "answer": reply}


class AgentHandler(BaseHTTPRequestHandler):
    """``POST /chat``: one run per request, under the caller's span."""

    server: AgentServer

    def do_POST(self) -> None:
        if self.path != "/chat":
            self._reply(404, {"error": f"no route POST {self.path}"})
            return
        length = int(self.headers.get("content-length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            message = str(body.get("message") or "What is the weather in London?")
        except (ValueError, AttributeError):
            self._reply(400, {"error": 'expected JSON {"message": "..."}'})
            return
        token = otel_context.attach(incoming_context(dict(self.headers.items())))
        try:
            result = answer(message, self.server.tool_url)
        except Exception as exc:  # the run recorded it as an error; the caller gets a 502
            logger.exception("the run failed")
            self._reply(502, {"error": f"{type(exc).__name__}: {exc}"})
            return
        finally:
            otel_context.detach(token)
        self._reply(200, result)

    def _reply(self, status: int, payload: Mapping[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)


class AgentServer(ThreadingHTTPServer):
    """The HTTP server, holding where the tool service is."""

    daemon_threads = True

    def __init__(self, port: int, tool_url: str) -> None:
        super().__init__(("127.0.0.1", port), AgentHandler)
        self.tool_url = tool_url


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description="The Python agent of the mixed-language example.")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("AGENT_PORT", "8000")),
        help="port on 127.0.0.1 (env AGENT_PORT, default 8000; 0 picks a free one)",
    )
    parser.add_argument(
        "--tool-url",
        default=os.environ.get("TOOL_URL", "http://127.0.0.1:8001/weather"),
        help="the tool service's /weather URL (env TOOL_URL)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    tcc.configure(service_name="agent")  # spans go to TCC_BASE_URL (or TCC with TCC_API_KEY)
    signal.signal(signal.SIGTERM, _interrupt)  # stop as on Ctrl-C: pending spans are delivered
    server = AgentServer(args.port, args.tool_url)
    host, port = server.server_address[:2]
    sys.stdout.write(f"agent listening on http://{host!s}:{port}\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        tcc.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
