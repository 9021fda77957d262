"""The OTLP/HTTP transport (tcc_otel/_export/_http.py) against a scripted endpoint: one POST per
batch on a kept-alive connection, its headers and body, and what each answer means for the
batch. Retries, splits and counting around it are the exporter's (test_exporter.py)."""

from __future__ import annotations

from _fault_server import FaultServer, Reply, closed_port

from tcc_otel._export._batch import Batch
from tcc_otel._export._http import HttpTransport
from tcc_otel._export._reply import Reply as Answer
from tcc_otel._export._reply import Verdict
from tcc_otel._export._wire import origin, span
from tcc_otel._version import __version__

TIMEOUT = 10.0
"""Seconds one request may take (a guard: the endpoint answers at once)."""


def batch(*names: str) -> Batch:
    """A batch of spans called ``names``."""
    made = Batch()
    where = origin({"service.name": "agent"}, "tcc_otel")
    for index, name in enumerate(names):
        made.add(
            where,
            span(
                trace_id=1,
                span_id=index + 1,
                parent_id=None,
                parent_remote=False,
                name=name,
                kind=1,
                start_ns=1,
                end_ns=2,
                attrs={"tcc.runId": "run-1"},
            ),
        )
    return made


def answered(reply: Reply) -> Answer:
    """What the transport makes of ``reply`` to one batch."""
    with FaultServer(default=reply) as server:
        transport = HttpTransport(server.traces_url)
        try:
            return transport.send(batch("a"), TIMEOUT)
        finally:
            transport.close()


class TestRequest:
    def test_post_with_headers_and_gzip_body(self) -> None:
        """One POST to the URL's path carries the batch's body gzipped, as protobuf, with our
        User-Agent, the key as Bearer token and the extra headers given."""
        with FaultServer() as server:
            transport = HttpTransport(server.traces_url, api_key="k", headers={"x-team": "agents"})
            sent = batch("a", "b")
            reply = transport.send(sent, TIMEOUT)
            transport.close()
            (request,) = server.requests
        headers = request.headers
        assert (
            request.method,
            request.path,
            request.body,
            request.span_names,
            headers.get("content-type"),
            headers.get("content-encoding"),
            headers.get("user-agent"),
            headers.get("authorization"),
            headers.get("x-team"),
        ) == (
            "POST",
            "/v1/traces",
            sent.body(),
            ("a", "b"),
            "application/x-protobuf",
            "gzip",
            f"tcc-otel/{__version__}",
            "Bearer k",
            "agents",
        )
        assert reply == Answer(Verdict.OK, "", "HTTP 200", status=200)

    def test_plain_body_without_key(self) -> None:
        """With gzip off the body goes as it is; without a key there is no Authorization."""
        with FaultServer() as server:
            transport = HttpTransport(server.traces_url, gzip=False)
            sent = batch("a")
            transport.send(sent, TIMEOUT)
            transport.close()
            (request,) = server.requests
        assert (
            request.body,
            "content-encoding" in request.headers,
            "authorization" in request.headers,
        ) == (sent.body(), False, False)

    def test_target_is_safe_to_log(self) -> None:
        """The target named in log lines has no user info or query."""
        transport = HttpTransport("https://user:secret@collector.example:4318/v1/traces?k=v")
        assert transport.target == "https://collector.example:4318/v1/traces"


class TestConnection:
    def test_kept_alive(self) -> None:
        """Batches go on one connection while the endpoint keeps it open."""
        with FaultServer() as server:
            transport = HttpTransport(server.traces_url)
            for name in ("a", "b", "c"):
                transport.send(batch(name), TIMEOUT)
            transport.close()
            connections = [request.connection for request in server.requests]
        assert connections == [1, 1, 1]

    def test_close_and_forget_open_a_new_one(self) -> None:
        """After ``close()``, and after ``forget()`` (a forked child's), the next batch goes
        on a new connection."""
        with FaultServer() as server:
            transport = HttpTransport(server.traces_url)
            transport.send(batch("a"), TIMEOUT)
            transport.close()
            transport.send(batch("b"), TIMEOUT)
            transport.forget()
            transport.send(batch("c"), TIMEOUT)
            transport.close()
            connections = [request.connection for request in server.requests]
        assert connections == [1, 2, 3]

    def test_nothing_listening(self) -> None:
        """With nothing listening the batch is to be retried, the error named; nothing is
        raised."""
        transport = HttpTransport(f"http://127.0.0.1:{closed_port()}/v1/traces")
        assert transport.send(batch("a"), TIMEOUT) == Answer(
            Verdict.RETRY,
            "unreachable",
            "ConnectionRefusedError",
            error="ConnectionRefusedError",
        )


class TestAnswers:
    def test_accepted(self) -> None:
        """Any 2xx status accepts the batch."""
        assert answered(Reply(202)) == Answer(Verdict.OK, "", "HTTP 202", status=202)

    def test_too_large(self) -> None:
        """413 asks for the batch in halves."""
        assert answered(Reply(413)) == Answer(Verdict.TOO_LARGE, "http_413", "HTTP 413", status=413)

    def test_retryable(self) -> None:
        """429, 502, 503 and 504 are retried, with the Retry-After the server sent."""
        got = [
            answered(Reply(status, headers={"Retry-After": "2"})) for status in (429, 502, 503, 504)
        ]
        assert got == [
            Answer(Verdict.RETRY, f"http_{s}", f"HTTP {s}", status=s, retry_after=2.0)
            for s in (429, 502, 503, 504)
        ]

    def test_rejected(self) -> None:
        """Other statuses drop the batch; 401 and 403 say to check the key."""
        got = [answered(Reply(status)) for status in (400, 401, 403, 500)]
        assert got == [
            Answer(Verdict.REJECT, "http_400", "HTTP 400", status=400),
            Answer(Verdict.REJECT, "http_401", "HTTP 401", status=401, hint=" (check TCC_API_KEY)"),
            Answer(Verdict.REJECT, "http_403", "HTTP 403", status=403, hint=" (check TCC_API_KEY)"),
            Answer(Verdict.REJECT, "http_500", "HTTP 500", status=500),
        ]

    def test_retry_after_forms(self) -> None:
        """Retry-After in seconds is taken as it is, capped at a minute; a date that passed is
        now; text that is neither is no delay."""
        values = ["0", "1.5", "3600", "Wed, 21 Oct 2015 07:28:00 GMT", "soon"]
        got = [answered(Reply(503, headers={"Retry-After": value})).retry_after for value in values]
        assert got == [0.0, 1.5, 60.0, 0.0, None]
