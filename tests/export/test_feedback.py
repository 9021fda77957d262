"""Feedback on a run (tcc_otel/_export/_feedback.py, README section 1): validation, i.e. what
raises, what is warned and left out, and what is refused without a key; and the wire, JSON POSTed
to ``{base}/v1/feedback`` (or ``TCC_FEEDBACK_URL``). Posts go to loopback receivers, never off this
machine."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from _fault_server import FaultServer, Recorded, Reply, closed_port
from helpers.clients import messages

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel.testing import CapturedSpans, capture

# --- validation -------------------------------------------------------------------------------


class FeedbackReceiver:
    """An HTTP server on 127.0.0.1 that answers 200 and keeps each JSON body it was sent."""

    def __init__(self) -> None:
        self.bodies: list[object] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.paths.append(self.path)
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                """Keep the test output quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[FeedbackReceiver]:
    """tcc_otel configured with its base URL on a loopback receiver (no key needed there)."""
    server = FeedbackReceiver()
    try:
        with capture(base_url=server.url):
            yield server
    finally:
        server.stop()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Messages of the warnings (and worse) logged on ``tcc_otel``."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "tcc_otel" and record.levelno >= logging.WARNING
    ]


class TestRequired:
    def test_submit_without_score_or_text(self, captured: CapturedSpans) -> None:
        """``submit_feedback`` with neither score nor text raises ValueError saying what to
        give."""
        with pytest.raises(ValueError, match="needs a score") as raised:
            tcc.submit_feedback("run-1")
        assert str(raised.value) == (
            "submit_feedback() needs a score (thumbs_up or thumbs_down) or a text, or both."
        )

    def test_run_feedback_without_score_or_text(self, captured: CapturedSpans) -> None:
        """``run.feedback()`` with neither score nor text raises ValueError saying what to give."""
        with pytest.raises(ValueError, match="needs a score") as raised:
            tcc.run().feedback(score=None, text=None)
        assert str(raised.value) == (
            "Run.feedback() needs a score (thumbs_up or thumbs_down) or a text, or both."
        )

    @pytest.mark.parametrize(
        ("send", "method"),
        [
            pytest.param(
                lambda text: tcc.submit_feedback("run-1", score="thumbs_up", text=text),
                "submit_feedback()",
                id="submit_feedback",
            ),
            pytest.param(
                lambda text: tcc.run().feedback(score="thumbs_up", text=text),
                "Run.feedback()",
                id="run.feedback",
            ),
        ],
    )
    def test_text_over_2000_characters(
        self, captured: CapturedSpans, send: Callable[[str], bool], method: str
    ) -> None:
        """A text over 2,000 characters raises ValueError, even with a valid score."""
        with pytest.raises(ValueError, match="the limit is 2000") as raised:
            send("x" * 2001)
        assert str(raised.value) == (
            f"{method}: the feedback text is 2001 characters; the limit is 2000."
        )


class TestSent:
    def test_text_of_exactly_2000_characters(self, receiver: FeedbackReceiver) -> None:
        """A text of exactly 2,000 characters is accepted and sent whole."""
        text = "é" * 2000
        assert tcc.submit_feedback("run-1", text=text) is True
        assert (receiver.paths, receiver.bodies) == (
            ["/v1/feedback"],
            [{"runId": "run-1", "text": text}],
        )

    def test_score_and_text(self, receiver: FeedbackReceiver) -> None:
        """A valid score and a text are both sent with the run id."""
        r = tcc.run(run_id="run-1")
        assert r.feedback(score="thumbs_down", text="wrong city") is True
        assert tcc.submit_feedback("run-2", score="thumbs_up") is True
        assert receiver.bodies == [
            {"runId": "run-1", "score": "thumbs_down", "text": "wrong city"},
            {"runId": "run-2", "score": "thumbs_up"},
        ]

    def test_unexportable_text_is_replaced(self, receiver: FeedbackReceiver) -> None:
        """Lone surrogates and NULs in the text are replaced instead of breaking the request."""
        assert tcc.submit_feedback("run-1", text="a\ud800b\x00c") is True
        assert receiver.bodies == [{"runId": "run-1", "text": "a\ufffdb\ufffdc"}]


class TestInvalidScore:
    @pytest.mark.parametrize(
        ("score", "type_name"),
        [("meh", "str"), ("THUMBS_UP", "str"), (1, "int"), (True, "bool")],
    )
    def test_warned_and_left_out(
        self,
        receiver: FeedbackReceiver,
        caplog: pytest.LogCaptureFixture,
        score: object,
        type_name: str,
    ) -> None:
        """An unknown score does not raise: one warning names the method and the score's type,
        and the text is sent without it."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        assert tcc.submit_feedback("run-1", score=score, text="ok") is True  # type: ignore[arg-type]
        messages = warnings_of(caplog)
        assert len(messages) == 1, messages
        assert ("submit_feedback()" in messages[0], f"got {type_name}" in messages[0]) == (
            True,
            True,
        ), messages[0]
        assert receiver.bodies == [{"runId": "run-1", "text": "ok"}]

    def test_nothing_left_to_send(
        self, receiver: FeedbackReceiver, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An unknown score and no text send nothing and return False, with a log line."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        assert tcc.run(run_id="run-1").feedback(score="great") is False
        messages = warnings_of(caplog)
        assert (receiver.bodies, len(messages), "Run.feedback()" in messages[0]) == (
            [],
            2,
            True,
        ), messages


class TestNotSent:
    def test_no_key_and_remote_url(
        self, captured: CapturedSpans, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Without an API key, feedback for TCC's endpoint is not sent: False and one log line
        naming the run, no exception."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        assert tcc.submit_feedback("run-1", score="thumbs_up", text="ok") is False
        assert tcc.run(run_id="run-2").feedback(text="ok") is False
        assert warnings_of(caplog) == [
            "feedback for run run-1 was not sent: TCC_API_KEY is not set",
            "feedback for run run-2 was not sent: TCC_API_KEY is not set",
        ]


# --- over the wire ----------------------------------------------------------------------------

KEY = "tcc_live_4f9a8b7c6d5e4f3a2b1c"
"""An API key shaped so that no generic redaction pattern would hide it."""
HANG_GUARD = 20.0
"""Seconds after which a feedback call is considered hung."""


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """An endpoint that accepts everything and records it."""
    with FaultServer() as running:
        yield running


def feedback_posts(server: FaultServer) -> list[tuple[str, str, str | None, str | None, Any]]:
    """Each feedback request as (method, path, authorization, content type, decoded body)."""
    return [post(request) for request in server.requests if request.path != "/v1/traces"]


def post(request: Recorded) -> tuple[str, str, str | None, str | None, Any]:
    """One request as (method, path, authorization, content type, decoded JSON body)."""
    return (
        request.method,
        request.path,
        request.headers.get("authorization"),
        request.headers.get("content-type"),
        json.loads(request.body),
    )


class TestAccepted:
    """Feedback the endpoint accepts returns True."""

    def test_run_feedback(self, server: FaultServer, client: Client) -> None:
        """``r.feedback()`` POSTs runId, score and text with the Bearer key."""
        tcc.configure(base_url=server.url, api_key=KEY)
        r = tcc.run(run_id="run-1").prompt("hi")
        r.end()
        assert r.feedback("thumbs_up", "great") is True
        assert feedback_posts(server) == [
            (
                "POST",
                "/v1/feedback",
                f"Bearer {KEY}",
                "application/json",
                {"runId": "run-1", "score": "thumbs_up", "text": "great"},
            )
        ]

    def test_submit_feedback(self, server: FaultServer, client: Client) -> None:
        """``tcc.submit_feedback()`` sends only the fields given."""
        tcc.configure(base_url=server.url, api_key=KEY)
        assert tcc.submit_feedback("run-9", score="thumbs_down") is True
        assert tcc.submit_feedback("run-9", text="too slow") is True
        assert feedback_posts(server) == [
            (
                "POST",
                "/v1/feedback",
                f"Bearer {KEY}",
                "application/json",
                {"runId": "run-9", "score": "thumbs_down"},
            ),
            (
                "POST",
                "/v1/feedback",
                f"Bearer {KEY}",
                "application/json",
                {"runId": "run-9", "text": "too slow"},
            ),
        ]

    def test_no_key_loopback(self, server: FaultServer, client: Client) -> None:
        """Without a key, feedback to a loopback endpoint is sent with no Authorization."""
        tcc.configure(base_url=server.url)
        assert tcc.submit_feedback("run-1", score="thumbs_up") is True
        assert feedback_posts(server) == [
            (
                "POST",
                "/v1/feedback",
                None,
                "application/json",
                {"runId": "run-1", "score": "thumbs_up"},
            )
        ]

    def test_feedback_url_from_env(
        self, server: FaultServer, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``TCC_FEEDBACK_URL`` receives the feedback of runs and of submit_feedback()."""
        with FaultServer() as other:
            monkeypatch.setenv("TCC_FEEDBACK_URL", other.url + "/custom/feedback")
            tcc.configure(base_url=server.url, api_key=KEY)
            r = tcc.run(run_id="run-1").prompt("hi")
            assert r.feedback(text="ok") is True
            assert tcc.submit_feedback("run-2", score="thumbs_up") is True
            r.end()
            assert tcc.flush()
        assert feedback_posts(other) == [
            (
                "POST",
                "/custom/feedback",
                f"Bearer {KEY}",
                "application/json",
                {"runId": "run-1", "text": "ok"},
            ),
            (
                "POST",
                "/custom/feedback",
                f"Bearer {KEY}",
                "application/json",
                {"runId": "run-2", "score": "thumbs_up"},
            ),
        ]
        assert feedback_posts(server) == []

    def test_feedback_url_from_configure(self, server: FaultServer, client: Client) -> None:
        """``configure(feedback_url=)`` is where feedback goes."""
        tcc.configure(base_url=server.url, api_key=KEY, feedback_url=server.url + "/fb")
        assert tcc.submit_feedback("run-1", score="thumbs_up") is True
        assert [request.path for request in server.requests] == ["/fb"]

    def test_run_override(self, server: FaultServer, client: Client) -> None:
        """A run started with its own key and URL sends its feedback there, with that key."""
        with FaultServer() as other:
            tcc.configure(base_url=server.url, api_key=KEY)
            r = tcc.run(run_id="run-1", api_key="other-key", tcc_url=other.url).prompt("hi")
            assert r.feedback("thumbs_up") is True
            r.end()
            assert tcc.flush()
        assert feedback_posts(other) == [
            (
                "POST",
                "/v1/feedback",
                "Bearer other-key",
                "application/json",
                {"runId": "run-1", "score": "thumbs_up"},
            )
        ]
        assert feedback_posts(server) == []


class TestFailed:
    """Feedback that does not arrive returns False and logs, never raises."""

    @pytest.mark.parametrize("status", [500, 401, 404])
    def test_refused(
        self,
        client: Client,
        caplog: pytest.LogCaptureFixture,
        status: int,
    ) -> None:
        """An error status returns False, with one warning naming it and not the key."""
        with FaultServer(default=Reply(status)) as refusing:
            tcc.configure(base_url=refusing.url, api_key=KEY)
            result = tcc.submit_feedback("run-1", score="thumbs_up", text="great")
        assert result is False
        [warning] = messages(caplog.records)
        assert warning == (
            f"feedback for run run-1 was refused by {refusing.url}/v1/feedback with HTTP {status}"
        )
        assert KEY not in caplog.text

    def test_connection_refused(self, client: Client, caplog: pytest.LogCaptureFixture) -> None:
        """A closed port returns False, with one warning that does not show the key."""
        url = f"http://127.0.0.1:{closed_port()}"
        tcc.configure(base_url=url, api_key=KEY, exporter="none")  # feedback only: no spans sent
        r = tcc.run(run_id="run-1").prompt("hi")
        assert r.feedback("thumbs_down", "bad") is False
        r.error("abandoned")
        [warning] = messages(caplog.records)
        assert warning.startswith(f"feedback for run run-1 was not sent to {url}/v1/feedback: ")
        assert KEY not in caplog.text

    def test_hanging(self, client: Client, caplog: pytest.LogCaptureFixture) -> None:
        """An endpoint that never answers costs at most the export timeout, then False."""
        with FaultServer(default=Reply(hang=True)) as hanging:
            tcc.configure(base_url=hanging.url, api_key=KEY, export_timeout=0.5)
            outcome: list[bool] = []
            caller = threading.Thread(
                target=lambda: outcome.append(tcc.submit_feedback("run-1", score="thumbs_up")),
                daemon=True,
            )
            caller.start()
            caller.join(HANG_GUARD)
            hung = caller.is_alive()
        assert not hung
        assert outcome == [False]
        [warning] = messages(caplog.records)
        assert warning.startswith("feedback for run run-1 was not sent to ")

    def test_no_key_remote(self, client: Client, caplog: pytest.LogCaptureFixture) -> None:
        """Without a key and with TCC's own endpoint, nothing is sent and False is returned."""
        tcc.configure()
        assert tcc.submit_feedback("run-1", score="thumbs_up") is False
        assert messages(caplog.records) == [
            "feedback for run run-1 was not sent: TCC_API_KEY is not set"
        ]

    def test_invalid_raises_before_sending(self, server: FaultServer, client: Client) -> None:
        """Neither score nor text is misuse: ValueError, and no request."""
        tcc.configure(base_url=server.url, api_key=KEY)
        with pytest.raises(ValueError, match="needs a score"):
            tcc.submit_feedback("run-1")
        with pytest.raises(ValueError, match="limit is 2000"):
            tcc.submit_feedback("run-1", text="x" * 2001)
        assert server.requests == []
