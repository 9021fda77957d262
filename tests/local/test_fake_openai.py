"""Tests for tcc_otel._local._fake_openai: plain HTTP requests to the fake OpenAI server."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tcc_otel._local._fake_openai import FakeOpenAI, main

SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": "Hello there friend"}
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        },
    },
}


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(chunk_delay=0) as running:
        yield running


def _post(
    server: FakeOpenAI, body: Any, path: str = "/v1/chat/completions"
) -> tuple[int, str, bytes]:
    """POST ``body`` as JSON; returns (status, content type, raw response body)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        connection.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def _chat(server: FakeOpenAI, **body: Any) -> dict[str, Any]:
    status, content_type, raw = _post(server, {"model": "gpt-4o-mini", **body})
    assert (status, content_type) == (200, "application/json")
    reply: dict[str, Any] = json.loads(raw)
    return reply


def _stream(server: FakeOpenAI, **body: Any) -> list[Any]:
    """The SSE payloads of a streamed reply, decoded, with the final ``"[DONE]"`` kept as is."""
    status, content_type, raw = _post(server, {"model": "gpt-4o-mini", "stream": True, **body})
    assert status == 200
    assert content_type.startswith("text/event-stream")
    events = raw.decode().split("\n\n")
    assert events[-1] == ""
    payloads = [event.removeprefix("data: ") for event in events[:-1]]
    assert all(event.startswith("data: ") for event in events[:-1])
    return [p if p == "[DONE]" else json.loads(p) for p in payloads]


class TestChat:
    def test_reply_has_openai_shape(self, server: FakeOpenAI) -> None:
        reply = _chat(server, messages=[SYSTEM, USER])
        assert reply["id"].startswith("chatcmpl-")
        assert reply["object"] == "chat.completion"
        assert isinstance(reply["created"], int)
        assert reply["model"] == "gpt-4o-mini-2024-07-18"
        [choice] = reply["choices"]
        assert choice["index"] == 0
        assert choice["finish_reason"] == "stop"
        assert choice["message"]["role"] == "assistant"
        assert choice["message"]["content"] == "Echo: Hello there friend"

    def test_usage_is_deterministic_with_cached_tokens(self, server: FakeOpenAI) -> None:
        usage = _chat(server, messages=[SYSTEM, USER])["usage"]
        prompt = 4 * 2 + 2 + 3  # 4 per message + the words of both messages
        assert usage["prompt_tokens"] == prompt
        assert usage["completion_tokens"] == 4  # "Echo: Hello there friend"
        assert usage["total_tokens"] == prompt + 4
        assert usage["prompt_tokens_details"]["cached_tokens"] == prompt // 2 > 0
        assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
        assert _chat(server, messages=[SYSTEM, USER])["usage"] == usage

    def test_both_paths_and_requests_recorded(self, server: FakeOpenAI) -> None:
        _chat(server, messages=[USER])
        status, _, raw = _post(server, {"model": "m", "messages": [USER]}, "/chat/completions")
        assert status == 200
        assert json.loads(raw)["model"] == "m-2024-07-18"
        assert [r.path for r in server.requests] == ["/v1/chat/completions", "/chat/completions"]
        assert server.requests[0].body["messages"] == [USER]
        assert server.requests[0].headers["Content-Type"] == "application/json"

    def test_content_parts_are_read_as_text(self, server: FakeOpenAI) -> None:
        parts = [{"type": "text", "text": "Two"}, {"type": "text", "text": "parts"}]
        reply = _chat(server, messages=[{"role": "user", "content": parts}])
        assert reply["choices"][0]["message"]["content"] == "Echo: Two parts"

    @pytest.mark.parametrize(
        ("path", "body", "status"),
        [
            ("/v1/embeddings", {"model": "m", "input": "x"}, 404),
            ("/v1/chat/completions", b"{not json", 400),
            ("/v1/chat/completions", {"model": "m"}, 400),
        ],
    )
    def test_errors_in_openai_shape(
        self, server: FakeOpenAI, path: str, body: Any, status: int
    ) -> None:
        got, _, raw = _post(server, body, path)
        assert got == status
        assert set(json.loads(raw)["error"]) == {"message", "type", "param", "code"}
        assert server.requests == []


class TestStream:
    def test_chunks_in_order_then_usage_then_done(self, server: FakeOpenAI) -> None:
        events = _stream(server, messages=[SYSTEM, USER], stream_options={"include_usage": True})
        assert events[-1] == "[DONE]"
        usage_chunk = events[-2]
        chunks = events[:-2]
        assert usage_chunk["choices"] == []
        assert usage_chunk["usage"] == _chat(server, messages=[SYSTEM, USER])["usage"]
        assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
        assert len({c["id"] for c in events[:-1]}) == 1
        assert all(c["model"] == "gpt-4o-mini-2024-07-18" for c in chunks)
        assert all(c["usage"] is None for c in chunks)
        deltas = [c["choices"][0]["delta"] for c in chunks]
        assert deltas[0]["role"] == "assistant"
        text = "".join(d.get("content") or "" for d in deltas)
        assert text == "Echo: Hello there friend"
        assert len([d for d in deltas if d.get("content")]) == 4  # one chunk per word
        reasons = [c["choices"][0]["finish_reason"] for c in chunks]
        assert reasons == [None] * (len(chunks) - 1) + ["stop"]

    def test_no_usage_chunk_unless_asked(self, server: FakeOpenAI) -> None:
        events = _stream(server, messages=[USER])
        assert events[-1] == "[DONE]"
        assert all(e["choices"] for e in events[:-1])
        assert all("usage" not in e for e in events[:-1])


class TestTools:
    def test_round_trip(self, server: FakeOpenAI) -> None:
        first = _chat(server, messages=[USER], tools=[TOOL])
        [choice] = first["choices"]
        assert choice["finish_reason"] == "tool_calls"
        assert choice["message"]["content"] is None
        [call] = choice["message"]["tool_calls"]
        assert call["type"] == "function"
        assert call["id"].startswith("call_")
        assert call["function"]["name"] == "get_weather"
        arguments = json.loads(call["function"]["arguments"])
        assert arguments == {"city": "city-value", "unit": "unit-value"}
        assert first["usage"]["completion_tokens"] == 5 + 2

        result = json.dumps({"temperature": 15})
        second = _chat(
            server,
            messages=[
                USER,
                choice["message"],
                {"role": "tool", "tool_call_id": call["id"], "content": result},
            ],
            tools=[TOOL],
        )
        assert second["choices"][0]["finish_reason"] == "stop"
        assert second["choices"][0]["message"]["content"] == f"Tool said: {result}"

    def test_streamed_tool_call_deltas(self, server: FakeOpenAI) -> None:
        events = _stream(
            server, messages=[USER], tools=[TOOL], stream_options={"include_usage": True}
        )
        chunks = events[:-2]
        deltas = [c["choices"][0]["delta"] for c in chunks]
        first = deltas[0]["tool_calls"][0]
        assert first["function"] == {"name": "get_weather", "arguments": ""}
        assert first["id"].startswith("call_")
        pieces = [d["tool_calls"][0]["function"]["arguments"] for d in deltas[1:-1]]
        assert len(pieces) > 1
        assert json.loads("".join(pieces)) == {"city": "city-value", "unit": "unit-value"}
        assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
        assert events[-2]["usage"]["completion_tokens"] == 7


class TestLifecycle:
    def test_bound_to_loopback_and_base_url(self) -> None:
        with FakeOpenAI() as server:
            assert server._httpd.server_address[0] == "127.0.0.1"
            assert server.port > 0
            assert server.base_url == f"http://127.0.0.1:{server.port}/v1"

    def test_stops_on_exit(self) -> None:
        with FakeOpenAI() as server:
            port = server.port
            _chat(server, messages=[USER])
        assert server._thread is None
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        with pytest.raises(ConnectionRefusedError):
            connection.request("GET", "/")
        connection.close()

    def test_main_serves_until_sigterm(self) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", "tcc_otel._local._fake_openai", "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert "OPENAI_BASE_URL=http://127.0.0.1:" in line
            assert "OPENAI_API_KEY=anything" in line
            port = int(line.split("OPENAI_BASE_URL=http://127.0.0.1:")[1].split("/")[0])
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            body = json.dumps({"model": "m", "messages": [USER]})
            connection.request("POST", "/v1/chat/completions", body=body)
            assert connection.getresponse().status == 200
            connection.close()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()

    def test_main_rejects_bad_arguments(self) -> None:
        with pytest.raises(SystemExit):
            main(["--port", "not-a-port"])
