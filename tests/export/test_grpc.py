"""OTLP over gRPC in collector mode (``TCC_EXPORTER=otlp``, ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``).

Against a real grpcio server on 127.0.0.1 (tests/_grpc_server.py) that answers each call as
scripted: delivery, retries by gRPC status code, ``RetryInfo``, deadlines, metadata, gzip,
a message over the server's size limit, and a fork after an export. Every span is decoded at
the server and compared by id; ``tcc.stats()`` is compared whole.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from _fault_server import closed_port
from _grpc_server import Answer, GrpcCollector
from helpers.clients import messages
from helpers.delivery import HANG_GUARD, SpanId, counters, record_run, span_id

import tcc_otel as tcc
from tcc_otel import _config
from tcc_otel._client import Client
from tcc_otel._export._batch import Batch
from tcc_otel._export._grpc import GrpcTransport, metadata, parse_endpoint, status_reply
from tcc_otel._export._reply import Reply, Verdict
from tcc_otel._export._wire import origin, span
from tcc_otel._local._server import Receiver

REPO = Path(__file__).resolve().parents[2]
FORK_SCRIPT = REPO / "tests/scripts/grpc_fork.py"
SPANS = 6
"""Spans of ``record_run``."""
AUTH_HINT = " (check the headers in OTEL_EXPORTER_OTLP_HEADERS)"


@pytest.fixture
def grpc_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Collector mode over gRPC from the environment; each test points the endpoint."""
    monkeypatch.setenv("TCC_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")


def use(monkeypatch: pytest.MonkeyPatch, server: GrpcCollector, **options: object) -> None:
    """Send to ``server``: the endpoint from the environment, as users set it."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.endpoint)
    tcc.configure(**options)  # type: ignore[arg-type]


def codes(server: GrpcCollector) -> list[tuple[str, list[SpanId]]]:
    """Each call as (status answered, span ids carried, sorted)."""
    return [(call.code, sorted(call.span_ids)) for call in server.calls]


def one_span_batch() -> Batch:
    """A batch of one hand-made span."""
    batch = Batch()
    batch.add(
        origin({"service.name": "grpc-test"}, "tests", "1"),
        span(
            trace_id=1,
            span_id=2,
            parent_id=None,
            parent_remote=False,
            name="one",
            kind=1,
            start_ns=1,
            end_ns=2,
            attrs={"tcc.runId": "run-1"},
            status_code=1,
        ),
    )
    return batch


# --- delivery ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("grpc_mode")
class TestDelivery:
    def test_every_span_arrives_once_with_the_headers(
        self, client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A run sent over gRPC arrives once, span for span by id, with the metadata of
        OTEL_EXPORTER_OTLP_HEADERS (URL-decoded), our user agent, and no key of TCC's even
        when TCC_API_KEY is set; nothing is logged."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "X-Tenant=acme,x-note=two%20words")
        monkeypatch.setenv("TCC_API_KEY", "tcc_live_key_in_the_app")
        with GrpcCollector() as server:
            use(monkeypatch, server)
            ended = record_run()
            assert tcc.flush(HANG_GUARD)
            calls = server.calls
        assert codes(server) == [("OK", sorted(ended))]
        sent = calls[0].metadata
        assert (sent["x-tenant"], sent["x-note"]) == ("acme", "two words")
        assert sent["user-agent"].startswith("tcc-otel/")
        assert "authorization" not in sent
        assert all("tcc_live_key_in_the_app" not in value for value in sent.values())
        assert tcc.stats() == counters(recorded=SPANS, exported=SPANS)
        assert messages(caplog.records) == []

    def test_the_spans_are_decoded_whole(
        self, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Names, parents and the run id of every span survive the gRPC body unchanged."""
        with GrpcCollector() as server:
            use(monkeypatch, server)
            with tcc.run(run_id="run-g") as run:
                run.prompt("q")
                with run.step(step_id="step-g") as step:
                    step.prompt("p").response("r")
                run.response("a")
            assert tcc.flush(HANG_GUARD)
        (call,) = server.calls
        spans = {
            s.name: s
            for rs in call.request.resource_spans
            for ss in rs.scope_spans
            for s in ss.spans
        }
        assert sorted(spans) == ["chat", "invoke_agent"]
        assert bytes(spans["chat"].parent_span_id) == bytes(spans["invoke_agent"].span_id)
        assert bytes(spans["chat"].trace_id) == bytes(spans["invoke_agent"].trace_id)
        run_ids = {
            s.name: next(kv.value.string_value for kv in s.attributes if kv.key == "tcc.runId")
            for s in spans.values()
        }
        assert run_ids == {"chat": "run-g", "invoke_agent": "run-g"}
        assert {
            name: (bytes(s.trace_id).hex(), bytes(s.span_id).hex()) for name, s in spans.items()
        } == {
            "chat": span_id(step.span),
            "invoke_agent": span_id(run.span),
        }

    def test_the_protocol_from_traces_variable_wins(
        self, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc outranks OTEL_EXPORTER_OTLP_PROTOCOL."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
        with GrpcCollector() as server:
            use(monkeypatch, server)
            ended = record_run()
            assert tcc.flush(HANG_GUARD)
        assert codes(server) == [("OK", sorted(ended))]


# --- status codes --------------------------------------------------------------------------------


@pytest.mark.usefixtures("grpc_mode")
class TestStatusCodes:
    def test_unavailable_twice_then_ok(
        self, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """UNAVAILABLE is retried: the run is sent three times whole and delivered once, each
        retry counted per span."""
        with GrpcCollector([Answer("UNAVAILABLE"), Answer("UNAVAILABLE")]) as server:
            use(monkeypatch, server)
            ended = sorted(record_run())
            assert tcc.flush(HANG_GUARD)
        assert codes(server) == [("UNAVAILABLE", ended)] * 2 + [("OK", ended)]
        assert server.accepted_ids() == ended
        assert tcc.stats() == counters(recorded=SPANS, exported=SPANS, retried=2 * SPANS)

    def test_invalid_argument_is_dropped(
        self, client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """INVALID_ARGUMENT is not retried: the spans are dropped and counted under
        ``grpc_invalid_argument``, with one warning."""
        with GrpcCollector(default=Answer("INVALID_ARGUMENT")) as server:
            use(monkeypatch, server)
            ended = sorted(record_run())
            assert tcc.flush(HANG_GUARD)
        assert codes(server) == [("INVALID_ARGUMENT", ended)]
        assert tcc.stats() == counters(recorded=SPANS, dropped={"grpc_invalid_argument": SPANS})
        assert messages(caplog.records) == [
            f"{server.endpoint} refused 6 spans with gRPC INVALID_ARGUMENT; 6 spans dropped so far"
        ]

    def test_resource_exhausted_with_retry_info_waits_its_delay(
        self, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """RESOURCE_EXHAUSTED with a RetryInfo of 1.5 s is retried no sooner than that (the
        first backoff is at most 1 s), and the run is delivered once."""
        answers = [Answer("RESOURCE_EXHAUSTED", retry_delay=1.5)]
        with GrpcCollector(answers) as server:
            use(monkeypatch, server)
            ended = sorted(record_run())
            assert tcc.flush(HANG_GUARD)
            first, second = server.calls
        assert codes(server) == [("RESOURCE_EXHAUSTED", ended), ("OK", ended)]
        assert second.received - first.received >= 1.5
        assert tcc.stats() == counters(recorded=SPANS, exported=SPANS, retried=SPANS)

    def test_resource_exhausted_without_retry_info_is_dropped(
        self, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """RESOURCE_EXHAUSTED without RetryInfo is not retried: dropped and counted."""
        with GrpcCollector(default=Answer("RESOURCE_EXHAUSTED")) as server:
            use(monkeypatch, server)
            ended = sorted(record_run())
            assert tcc.flush(HANG_GUARD)
        assert codes(server) == [("RESOURCE_EXHAUSTED", ended)]
        assert tcc.stats() == counters(recorded=SPANS, dropped={"grpc_resource_exhausted": SPANS})

    @pytest.mark.parametrize("code", ["UNAUTHENTICATED", "PERMISSION_DENIED"])
    def test_refused_credentials_point_at_the_headers(
        self,
        client: Client,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        code: str,
    ) -> None:
        """UNAUTHENTICATED and PERMISSION_DENIED drop the spans, counted, and the warning
        says to check OTEL_EXPORTER_OTLP_HEADERS."""
        with GrpcCollector(default=Answer(code)) as server:
            use(monkeypatch, server)
            ended = sorted(record_run())
            assert tcc.flush(HANG_GUARD)
        assert codes(server) == [(code, ended)]
        assert tcc.stats() == counters(recorded=SPANS, dropped={f"grpc_{code.lower()}": SPANS})
        assert messages(caplog.records) == [
            f"{server.endpoint} refused 6 spans with gRPC {code}{AUTH_HINT}; 6 spans dropped so far"
        ]

    def test_a_message_over_the_servers_limit_is_split(
        self, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A request larger than the server takes (RESOURCE_EXHAUSTED from its gRPC core) is
        sent again in two halves, like an HTTP 413; every span arrives once."""
        # four of the six spans carry the content twice (about 3.7 KB each): the whole run is
        # about 16 KB, each half about 8 KB
        with GrpcCollector(max_receive_bytes=12_000) as server:
            use(monkeypatch, server)
            ended = record_run(content="x" * 1500)
            assert tcc.flush(HANG_GUARD)
        # the refused whole never reached the service; the halves did, in order
        assert codes(server) == [("OK", sorted(ended[:3])), ("OK", sorted(ended[3:]))]
        assert tcc.stats() == counters(recorded=SPANS, exported=SPANS)


# --- deadlines -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("grpc_mode")
class TestDeadlines:
    def test_a_hanging_call_ends_at_its_deadline_and_is_retried(
        self, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With export_timeout=0.5, a call the server never answers is cut at its deadline
        (the server sees it cancelled) and sent again; the run is delivered once."""
        with GrpcCollector([Answer(hang=True)]) as server:
            use(monkeypatch, server, export_timeout=0.5)
            ended = sorted(record_run())
            assert tcc.flush(HANG_GUARD)
        assert codes(server) == [("HANG", ended), ("OK", ended)]
        assert tcc.stats() == counters(recorded=SPANS, exported=SPANS, retried=SPANS)

    def test_shutdown_returns_within_its_deadline(
        self,
        client: Client,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """With TCC_SHUTDOWN_TIMEOUT=1 and a server that never answers, tcc.shutdown()
        returns, and the spans in flight are counted as ``shutdown_timeout``."""
        monkeypatch.setenv("TCC_SHUTDOWN_TIMEOUT", "1")
        with GrpcCollector(default=Answer(hang=True)) as server:
            use(monkeypatch, server)
            record_run()
            assert server.wait_for_calls(1, HANG_GUARD)
            done = threading.Event()

            def close() -> None:
                tcc.shutdown()
                done.set()

            threading.Thread(target=close, name="close", daemon=True).start()
            returned = done.wait(HANG_GUARD)
            stats = tcc.stats()
        assert returned
        assert stats == counters(recorded=SPANS, dropped={"shutdown_timeout": SPANS})
        assert [line for line in messages(caplog.records) if "not delivered" in line] == [
            "6 spans were not delivered within the 1.0 s shutdown deadline; 6 spans dropped in all"
        ]


# --- compression ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("grpc_mode")
class TestCompression:
    """The server's gRPC core reads the ``grpc-encoding`` request header: one that takes only
    uncompressed messages refuses a gzip call with UNIMPLEMENTED before the service sees it."""

    @pytest.mark.parametrize(
        ("setting", "gzip"), [(None, True), ("gzip", True), ("none", False), ("NONE", False)]
    )
    def test_compression_setting_is_honoured(
        self,
        client: Client,
        monkeypatch: pytest.MonkeyPatch,
        setting: str | None,
        gzip: bool,
    ) -> None:
        """gzip is the default; OTEL_EXPORTER_OTLP_COMPRESSION=none sends uncompressed."""
        if setting is not None:
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", setting)
        with GrpcCollector(gzip_enabled=False) as server:
            use(monkeypatch, server)
            ended = sorted(record_run())
            assert tcc.flush(HANG_GUARD)
        if gzip:
            assert codes(server) == []
            assert tcc.stats() == counters(recorded=SPANS, dropped={"grpc_unimplemented": SPANS})
        else:
            assert codes(server) == [("OK", ended)]
            assert tcc.stats() == counters(recorded=SPANS, exported=SPANS)

    def test_gzip_is_accepted_by_a_server_that_takes_it(
        self, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The same gzip call goes through to a server with gzip enabled."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
        with GrpcCollector() as server:
            use(monkeypatch, server)
            ended = sorted(record_run())
            assert tcc.flush(HANG_GUARD)
        assert codes(server) == [("OK", ended)]


# --- the transport on its own --------------------------------------------------------------------


def send_once(endpoint: str) -> Reply:
    """One batch of one span through a new transport to ``endpoint``, which is then closed."""
    transport = GrpcTransport(endpoint)
    try:
        return transport.send(one_span_batch(), HANG_GUARD)
    finally:
        transport.close()


class TestTransport:
    def test_retry_info_delay_is_read(self) -> None:
        """The RetryInfo delay a server sends becomes the reply's ``retry_after``."""
        answer = Answer("RESOURCE_EXHAUSTED", retry_delay=2.25, details="slow down")
        with GrpcCollector([answer]) as server:
            reply = send_once(server.endpoint)
        assert reply == Reply(
            Verdict.RETRY,
            "grpc_resource_exhausted",
            "gRPC RESOURCE_EXHAUSTED",
            status=8,
            retry_after=2.25,
        )

    def test_unavailable_with_retry_info_uses_its_delay(self) -> None:
        """A retryable code with RetryInfo waits the server's delay too."""
        with GrpcCollector([Answer("UNAVAILABLE", retry_delay=0.5)]) as server:
            reply = send_once(server.endpoint)
        assert (reply.verdict, reply.retry_after, reply.error) == (Verdict.RETRY, 0.5, None)

    def test_connection_refused_is_named(self) -> None:
        """Nothing listening is UNAVAILABLE with the error named, to be retried."""
        reply = send_once(f"http://127.0.0.1:{closed_port()}")
        assert reply == Reply(
            Verdict.RETRY,
            "grpc_unavailable",
            "gRPC UNAVAILABLE (ConnectionRefusedError)",
            status=14,
            error="ConnectionRefusedError",
        )

    def test_an_http_port_is_not_a_grpc_server(self) -> None:
        """gRPC to an OTLP/HTTP receiver gets no gRPC answer, and says so."""
        with Receiver("127.0.0.1", 0) as receiver:
            reply = send_once(receiver.url)
            requests = receiver.requests
        assert (reply.reason, reply.error) == ("grpc_unavailable", "HTTP2ProtocolError")
        assert requests == []

    @pytest.mark.parametrize(
        ("code", "verdict"),
        [
            ("OK", Verdict.OK),
            ("CANCELLED", Verdict.RETRY),
            ("DEADLINE_EXCEEDED", Verdict.RETRY),
            ("ABORTED", Verdict.RETRY),
            ("OUT_OF_RANGE", Verdict.RETRY),
            ("UNAVAILABLE", Verdict.RETRY),
            ("DATA_LOSS", Verdict.RETRY),
            ("RESOURCE_EXHAUSTED", Verdict.REJECT),
            ("UNKNOWN", Verdict.REJECT),
            ("INVALID_ARGUMENT", Verdict.REJECT),
            ("NOT_FOUND", Verdict.REJECT),
            ("ALREADY_EXISTS", Verdict.REJECT),
            ("PERMISSION_DENIED", Verdict.REJECT),
            ("FAILED_PRECONDITION", Verdict.REJECT),
            ("UNIMPLEMENTED", Verdict.REJECT),
            ("INTERNAL", Verdict.REJECT),
            ("UNAUTHENTICATED", Verdict.REJECT),
        ],
    )
    def test_each_code_as_the_otlp_specification_says(self, code: str, verdict: Verdict) -> None:
        """Retryable: CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE,
        DATA_LOSS (and RESOURCE_EXHAUSTED with RetryInfo); everything else is final."""
        with GrpcCollector(default=Answer(code)) as server:
            reply = send_once(server.endpoint)
        assert (reply.verdict, reply.reason, reply.error) == (
            verdict,
            "" if code == "OK" else f"grpc_{code.lower()}",
            None,
        )
        assert reply == status_reply(code, code, ())._replace(why=reply.why)

    @pytest.mark.parametrize(
        ("endpoint", "insecure", "expected"),
        [
            ("http://collector:4317", False, ("collector:4317", False)),
            ("https://collector:4317", True, ("collector:4317", True)),
            ("HTTPS://collector:4317/ignored/path", False, ("collector:4317", True)),
            ("collector:4317", False, ("collector:4317", True)),
            ("collector:4317", True, ("collector:4317", False)),
            ("http://collector", False, ("collector:80", False)),
            ("https://collector", False, ("collector:443", True)),
            ("http://[::1]:4317", False, ("[::1]:4317", False)),
            ("http://user:secret@collector:4317", False, ("collector:4317", False)),
        ],
    )
    def test_endpoint_as_the_specification_reads_it(
        self, endpoint: str, insecure: bool, expected: tuple[str, bool]
    ) -> None:
        """http:// is plaintext, https:// TLS, and without a scheme the insecure flag
        decides; the path is ignored and credentials never reach the target."""
        assert parse_endpoint(endpoint, insecure=insecure) == expected

    def test_metadata_keys_are_lower_cased_and_bad_entries_named(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Keys are lower-cased; entries gRPC would refuse are left out and named in one
        warning that never shows their values."""
        headers = {
            "X-Tenant": "acme",
            "trace-bin": "raw",
            "bad key": "secret-1",
            "x-accent": "café-secret-2",
            "grpc-timeout": "1S",
        }
        assert metadata(headers) == (("x-tenant", "acme"), ("trace-bin", b"raw"))
        assert messages(caplog.records) == [
            "OTEL_EXPORTER_OTLP_HEADERS: 'bad key', 'x-accent', 'grpc-timeout' cannot be sent "
            "as gRPC metadata and are left out"
        ]

    def test_a_batch_read_back_from_the_spool_is_sent_whole(self) -> None:
        """A batch that only has its gzip body (as read back from the spool) goes out
        decompressed, and the server decodes the same span."""
        spooled = Batch.from_spool(one_span_batch().compressed(), 1, "/nonexistent/spool-file")
        with GrpcCollector() as server:
            transport = GrpcTransport(server.endpoint)
            try:
                reply = transport.send(spooled, HANG_GUARD)
            finally:
                transport.close()
        assert reply.verdict is Verdict.OK
        assert server.accepted_ids() == [(f"{1:032x}", f"{2:016x}")]

    def test_a_broken_grpcio_drops_without_raising(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """If grpc cannot be imported, each batch is refused with the error named; nothing is
        raised."""
        monkeypatch.setitem(sys.modules, "grpc", None)
        reply = GrpcTransport("http://127.0.0.1:4317").send(one_span_batch(), HANG_GUARD)
        assert reply == Reply(
            Verdict.REJECT, "grpc_client_error", "gRPC client error (ModuleNotFoundError)"
        )

    def test_importing_tcc_otel_does_not_import_grpc(self) -> None:
        """grpc is loaded only when a gRPC transport is made (collector mode over gRPC), on the
        thread that configures, never by importing tcc_otel."""
        code = (
            "import sys, tcc_otel, tcc_otel._export._grpc, tcc_otel._cli._doctor, tcc_otel._client;"
            "before = 'grpc' in sys.modules;"
            "tcc_otel._export._grpc.GrpcTransport('http://127.0.0.1:4317');"
            "sys.exit(3 if before or 'grpc' not in sys.modules else 0)"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, "")


# --- settings that cannot be used ----------------------------------------------------------------


class TestUnusableProtocol:
    def test_http_json_is_refused_at_configure(self, client: Client) -> None:
        """configure(otlp_protocol="http/json") raises ValueError with the fix."""
        with pytest.raises(ValueError, match="http/json is not supported") as raised:
            tcc.configure(exporter="otlp", otlp_protocol="http/json")
        assert "use http/protobuf (the default) or grpc" in str(raised.value)

    def test_grpc_without_grpcio_is_refused_at_configure(
        self, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without grpcio, configure(otlp_protocol="grpc") raises ValueError naming the extra
        and the HTTP alternative."""
        monkeypatch.setattr(_config, "grpc_available", lambda: False)
        with pytest.raises(ValueError, match="needs grpcio") as raised:
            tcc.configure(exporter="otlp", otlp_protocol="grpc")
        assert "pip install 'tcc-otel[grpc]'" in str(raised.value)
        assert "http/protobuf" in str(raised.value)

    @pytest.mark.parametrize(
        ("value", "grpcio", "refusal"),
        [
            (
                "http/json",
                True,
                "OTEL_EXPORTER_OTLP_PROTOCOL=http/json is not supported by tcc_otel; use "
                "http/protobuf (the default) or grpc.",
            ),
            (
                "grpc",
                False,
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs grpcio: pip install 'tcc-otel[grpc]' (or "
                "set http/protobuf and point the endpoint at the collector's HTTP port, usually "
                "4318).",
            ),
        ],
    )
    def test_from_the_environment_nothing_is_sent(
        self,
        client: Client,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        value: str,
        grpcio: bool,
        refusal: str,
    ) -> None:
        """An unusable protocol from the environment is logged once, and no request at all
        reaches an HTTP receiver at the endpoint, however many runs are recorded."""
        if not grpcio:
            monkeypatch.setattr(_config, "grpc_available", lambda: False)
        monkeypatch.setenv("TCC_EXPORTER", "otlp")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", value)
        with Receiver("127.0.0.1", 0) as receiver:
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
            record_run(0)
            record_run(1)
            assert tcc.flush(HANG_GUARD)
            tcc.shutdown()
            requests = receiver.requests
        assert requests == []
        assert messages(caplog.records) == [f"{refusal} Nothing will be sent."]


# --- fork ----------------------------------------------------------------------------------------


def run_fork_script(
    server: GrpcCollector, mode: str, fork_support: str | None, tmp_path: Path
) -> dict[str, object]:
    """Run tests/scripts/grpc_fork.py against ``server``; its report."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TCC_", "OTEL_", "GRPC_"))
    }
    seen = tmp_path / "call-seen"
    env.update(
        PYTHONPATH=str(REPO),
        TCC_EXPORTER="otlp",
        TCC_EXPORT_TIMEOUT="2",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_ENDPOINT=server.endpoint,
        GRPC_FORK_CALL_SEEN=str(seen),
    )
    if fork_support is not None:
        env["GRPC_ENABLE_FORK_SUPPORT"] = fork_support
    process = subprocess.Popen(
        [sys.executable, str(FORK_SCRIPT), mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if mode == "during":
            assert server.wait_for_calls(1, HANG_GUARD)
            seen.touch()
        out, err = process.communicate(timeout=3 * HANG_GUARD)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    report: dict[str, object] = json.loads(out.splitlines()[-1])
    return report


def runs_of(server: GrpcCollector) -> dict[str, int]:
    """Spans accepted per ``tcc.runId``."""
    found: dict[str, int] = {}
    for call in server.calls:
        if call.code != "OK":
            continue
        for resource_spans in call.request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for one in scope_spans.spans:
                    run_id = next(
                        kv.value.string_value for kv in one.attributes if kv.key == "tcc.runId"
                    )
                    found[run_id] = found.get(run_id, 0) + 1
    return found


class TestFork:
    """A process forks after (or during) a gRPC export; the child records and sends too. The
    child never uses the parent's channel and never hangs; the parent goes on undisturbed."""

    @pytest.mark.parametrize(
        ("mode", "fork_support"), [("after", None), ("after", "1"), ("during", None)]
    )
    def test_the_child_sends_on_its_own_channel(
        self, mode: str, fork_support: str | None, tmp_path: Path
    ) -> None:
        """With gRPC's fork support on (the default, or GRPC_ENABLE_FORK_SUPPORT=1), the
        child's run arrives once, the parent's two runs arrive once, and each side counts only
        its own spans."""
        first = [Answer(hang=True)] if mode == "during" else []
        with GrpcCollector(first) as server:
            report = run_fork_script(server, mode, fork_support, tmp_path)
        assert report["child_status"] == 0
        assert runs_of(server) == {"parent-1": 2, "parent-2": 2, "child-1": 2}
        assert report["child"] == counters(recorded=2, exported=2)
        retried = 2 if mode == "during" else 0  # the held call ended at its deadline
        assert report["parent"] == counters(recorded=4, exported=4, retried=retried)

    def test_fork_support_off_drops_the_childs_spans_without_hanging(self, tmp_path: Path) -> None:
        """With GRPC_ENABLE_FORK_SUPPORT=0 gRPC cannot serve a child of a process that opened
        a channel, so the child does not call it: its spans are dropped at once, counted as
        ``grpc_fork_unsupported``, and the child ends; the parent's runs arrive once."""
        with GrpcCollector() as server:
            report = run_fork_script(server, "after", "0", tmp_path)
        assert report["child_status"] == 0
        assert runs_of(server) == {"parent-1": 2, "parent-2": 2}
        assert report["child"] == counters(recorded=2, dropped={"grpc_fork_unsupported": 2})
        assert report["parent"] == counters(recorded=4, exported=4)
