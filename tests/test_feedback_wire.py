"""Feedback over the wire: JSON POSTed to ``{base}/v1/feedback`` (or ``TCC_FEEDBACK_URL``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _fault_server import FaultServer, Recorded, Reply, closed_port
from helpers.clients import messages

import tcc_otel as tcc
from tcc_otel._client import Client

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
