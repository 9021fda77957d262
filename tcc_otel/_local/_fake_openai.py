"""A fake OpenAI-compatible chat server on 127.0.0.1, for tests and demos: stdlib only.

``POST /v1/chat/completions`` (or ``/chat/completions``) answers deterministically, in the shape
OpenAI's API uses, so that the real ``openai`` client and the GenAI instrumentations wrapping it
run unchanged against it::

    with FakeOpenAI() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="anything")

What it replies:

- the last message is the user's and the request has ``tools``: one tool call to the first tool,
  whose arguments are a JSON object with each of the tool's parameter properties set to the string
  ``"<property>-value"``; finish_reason ``"tool_calls"``;
- the last message has role ``"tool"``: the text ``"Tool said: <that message's content>"``;
- otherwise: ``"Echo: <the last user message's text>"``; finish_reason ``"stop"``.

The model echoed back is the requested one with a date appended (``gpt-4o-mini`` ->
``gpt-4o-mini-2024-07-18``). Token counts, counting words as whitespace-separated pieces:

- ``prompt_tokens`` = 4 per message + the words of every message's text + 8 per tool;
- ``prompt_tokens_details.cached_tokens`` = ``prompt_tokens // 2`` (always above 0);
- ``completion_tokens`` = the reply text's words, or for a tool call 5 + 1 per argument;
- ``total_tokens`` = the sum of the two; ``completion_tokens_details`` has only zeros.

With ``"stream": true`` the reply comes as server-sent events in OpenAI's chunk shape: a first
chunk with the role, the text one word per chunk (a tool call: its name and id, then its
arguments in pieces), a chunk with the finish_reason, then, when ``stream_options.include_usage``
is true, a usage chunk with no choices, then ``data: [DONE]``.

``tcc-otel fake-openai --port 8001`` serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

__all__ = ["FakeOpenAI", "FakeRequest", "main"]

CREATED = 1721172717  # a fixed "created" timestamp: replies are byte-for-byte repeatable
MODEL_SUFFIX = "-2024-07-18"
PATHS = ("/v1/chat/completions", "/chat/completions")


@dataclass(frozen=True)
class FakeRequest:
    """One request the server received: its path, headers and decoded JSON body."""

    path: str
    headers: dict[str, str]
    body: Any


def _text(content: Any) -> str:
    """A message's text: a string as is, content parts joined by spaces, anything else empty."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _words(text: str) -> int:
    return len(text.split())


def _reply(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None, dict[str, Any]]:
    """(text, tool call or None, usage) for a request body."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    last = messages[-1] if messages else {}
    prompt = 4 * len(messages) + sum(_words(_text(m.get("content"))) for m in messages)
    prompt += 8 * len(tools)
    call: dict[str, Any] | None = None
    text = ""
    if tools and last.get("role") == "user":
        function = tools[0].get("function") or {}
        properties = (function.get("parameters") or {}).get("properties") or {}
        arguments = json.dumps({name: f"{name}-value" for name in properties})
        call = {"name": str(function.get("name", "tool")), "arguments": arguments}
        completion = 5 + len(properties)
    else:
        if last.get("role") == "tool":
            text = "Tool said: " + _text(last.get("content"))
        else:
            users = [m for m in messages if m.get("role") == "user"]
            text = "Echo: " + (_text(users[-1].get("content")) if users else "")
        completion = _words(text)
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": prompt // 2, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    return text, call, usage


class FakeOpenAI:
    """The fake server, serving on a daemon thread while used as a context manager."""

    def __init__(self, port: int = 0, chunk_delay: float = 0.002) -> None:
        self.chunk_delay = chunk_delay  # seconds between streamed chunks
        self._requests: list[FakeRequest] = []
        self._lock = threading.Lock()
        self._count = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """What to pass as the client's ``base_url`` (or set as ``OPENAI_BASE_URL``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[FakeRequest]:
        """The requests received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _record(self, request: FakeRequest) -> str:
        """Keeps ``request`` and returns a fresh completion id."""
        with self._lock:
            self._requests.append(request)
            self._count += 1
            return f"chatcmpl-fake{self._count:06d}"


def _handler_for(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet

        def _json(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            error = {"message": message, "type": "invalid_request_error", "param": None}
            self._json(status, {"error": {**error, "code": None}})

        def do_GET(self) -> None:
            self._error(404, f"Unknown request URL: GET {self.path}")

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.split("?", 1)[0]
            if path not in PATHS:
                self._error(404, f"Unknown request URL: POST {path}")
                return
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                self._error(400, "The request body is not valid JSON.")
                return
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                self._error(400, "'messages' is a required property")
                return
            ident = server._record(FakeRequest(path, dict(self.headers.items()), body))
            text, call, usage = _reply(body)
            model = str(body.get("model", "gpt-4o-mini")) + MODEL_SUFFIX
            head: dict[str, Any] = {"id": ident, "created": CREATED, "model": model}
            head.update(service_tier="default", system_fingerprint="fp_fake0001")
            finish = "tool_calls" if call else "stop"
            if not body.get("stream"):
                message: dict[str, Any] = {"role": "assistant", "content": text or None}
                message["refusal"] = None
                if call:
                    message["tool_calls"] = [
                        {"id": "call_" + ident[9:], "type": "function", "function": call}
                    ]
                choice = {"index": 0, "message": message, "logprobs": None}
                choice["finish_reason"] = finish
                reply = {**head, "object": "chat.completion", "choices": [choice]}
                self._json(200, {**reply, "usage": usage})
                return
            with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            deltas: list[dict[str, Any]] = [{"role": "assistant", "content": "", "refusal": None}]
            if call:
                first = {"index": 0, "id": "call_" + ident[9:], "type": "function"}
                first["function"] = {"name": call["name"], "arguments": ""}
                deltas = [{"role": "assistant", "content": None, "tool_calls": [first]}]
                args = call["arguments"]
                for i in range(0, len(args), 8):
                    piece = {"index": 0, "function": {"arguments": args[i : i + 8]}}
                    deltas.append({"tool_calls": [piece]})
            else:
                words = text.split(" ")
                deltas += [{"content": w if i == 0 else " " + w} for i, w in enumerate(words)]
            chunks = []
            for n, delta in enumerate([*deltas, {}]):
                choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
                if n == len(deltas):
                    choice["finish_reason"] = finish
                chunk = {**head, "object": "chat.completion.chunk", "choices": [choice]}
                chunks.append({**chunk, "usage": None} if with_usage else chunk)
            if with_usage:
                chunks.append({**head, "object": "chat.completion.chunk", "choices": []})
                chunks[-1]["usage"] = usage
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in [*(json.dumps(c) for c in chunks), "[DONE]"]:
                self._send_chunk(f"data: {line}\n\n".encode())
                if server.chunk_delay:
                    time.sleep(server.chunk_delay)
            self._send_chunk(b"")

        def _send_chunk(self, data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Serves on 127.0.0.1 until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="tcc-otel fake-openai")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    port = parser.parse_args(argv).port
    server = FakeOpenAI(port=port)

    stopping: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        # Only note it: an exception raised here could land anywhere, even in a callback
        # whose exceptions are ignored (a garbage collector's), and the server would go on.
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.start()
    sys.stdout.write(
        f"Fake OpenAI at {server.base_url}: set OPENAI_BASE_URL={server.base_url} "
        "OPENAI_API_KEY=anything (Ctrl-C stops it)\n"
    )
    sys.stdout.flush()
    try:
        while not stopping:
            time.sleep(0.1)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
