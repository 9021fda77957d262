"""What contextcompany 2.0.0 offers beyond README section 1's basics, so it drops in: status()
on steps and tool calls, get_api_key()/get_url(), and an end() that says why a required value
is missing when it could not be converted."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers.clients import fresh_client, messages
from opentelemetry.sdk.trace import TracerProvider

import tcc_otel as tcc
from tcc_otel._client import Client
from tcc_otel._local._server import Receiver
from tcc_otel.testing import CapturedSpans


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback OTLP/HTTP receiver on a free port, stopped in teardown."""
    with Receiver("127.0.0.1", 0) as running:
        yield running


class BadStr:
    """A value whose ``str()`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class TestStatus:
    def test_step_and_tool_call_status(
        self, provider: TracerProvider | None, receiver: Receiver
    ) -> None:
        """``status(0)`` ends a step or tool call OK; ``status(2, msg)`` ends it ERROR with
        the redacted message and ``error.type``; the run is untouched."""
        with fresh_client():
            tcc.configure(base_url=receiver.url, tracer_provider=provider)
            r = tcc.run(run_id="run-1").prompt("q")
            r.step(step_id="step-1").prompt("p").response("a").status(0).end()
            failed = r.step(step_id="step-2").prompt("p").response("a")
            failed.status(2, "failed: token=abc123").end()
            r.tool_call("search", tool_call_id="call-1").status(0).end()
            r.tool_call("search", tool_call_id="call-2").status(2, "timeout").end()
            r.end()
            assert tcc.flush(10.0)
        got = {
            str(
                span.attributes.get("tcc.stepId") or span.attributes.get("tcc.toolCallId") or "run"
            ): (
                span.status_code,
                span.status_message,
                span.attributes.get("error.type"),
            )
            for span in receiver.spans
        }
        assert got == {
            "run": ("UNSET", "", None),
            "step-1": ("OK", "", None),
            "step-2": ("ERROR", "failed: token=[REDACTED]", "_OTHER"),
            "call-1": ("OK", "", None),
            "call-2": ("ERROR", "timeout", "_OTHER"),
        }

    @pytest.mark.parametrize(
        ("make", "message"),
        [
            pytest.param(
                lambda: tcc.step("run-1").status(0),
                "Step.end() needs step.prompt(...) and step.response(...) first "
                "(or call Step.error() to end it as failed).",
                id="step",
            ),
            pytest.param(
                lambda: tcc.tool_call("run-1").status(2, "x"),
                "ToolCall.end() needs tool_call.name(...) first "
                "(or call ToolCall.error() to end it as failed).",
                id="tool_call",
            ),
        ],
    )
    def test_end_keeps_its_requirements(
        self, captured: CapturedSpans, make: Callable[[], Any], message: str
    ) -> None:
        """A status does not replace the fields ``end()`` needs."""
        record = make()
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            record.end()

    @pytest.mark.parametrize(
        ("make", "method"),
        [
            pytest.param(lambda: tcc.step("run-1"), "Step.status()", id="step"),
            pytest.param(lambda: tcc.tool_call("run-1"), "ToolCall.status()", id="tool_call"),
        ],
    )
    def test_unknown_code_warns(
        self,
        captured: CapturedSpans,
        caplog: pytest.LogCaptureFixture,
        make: Callable[[], Any],
        method: str,
    ) -> None:
        """A code other than 0 or 2 is ignored with one warning naming the method and type."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        record = make()
        assert record.status("ok") is record
        [warning] = messages(caplog.records)
        assert (method in warning, "got str" in warning) == (True, True)

    def test_status_after_end_raises(self, captured: CapturedSpans) -> None:
        """``status()`` after ``end()`` is misuse, as for every setter."""
        call = tcc.tool_call("run-1", tool_name="search")
        call.end()
        with pytest.raises(RuntimeError, match=r"ToolCall\.status\(\) was called after"):
            call.status(0)


class TestConfigHelpers:
    def test_key_from_the_environment(
        self, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The key comes from TCC_API_KEY unless one is passed; its dev_ prefix picks the host."""
        monkeypatch.setenv("TCC_API_KEY", "dev_abc")
        assert [
            tcc.get_api_key(),
            tcc.get_api_key("other-key"),
            tcc.get_url("/v1/feedback"),
            tcc.get_url("/v1/custom", api_key="prod-key"),
        ] == [
            "dev_abc",
            "other-key",
            "https://dev.thecontext.company/v1/feedback",
            "https://api.thecontext.company/v1/custom",
        ]

    def test_no_key(self, client: Client) -> None:
        """Without a key get_api_key() raises ValueError saying how to set one; get_url() uses
        the production host."""
        with pytest.raises(ValueError, match="TCC_API_KEY"):
            tcc.get_api_key()
        assert tcc.get_url("/v1/traces") == "https://api.thecontext.company/v1/traces"

    def test_base_url_from_the_environment_wins(
        self, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """TCC_BASE_URL is used whatever the key's prefix."""
        monkeypatch.setenv("TCC_BASE_URL", "http://localhost:4318/")
        assert tcc.get_url("/v1/traces", api_key="dev_x") == "http://localhost:4318/v1/traces"

    def test_configured(self, client: Client) -> None:
        """Values given to configure() are the ones in force."""
        tcc.configure(api_key="key-1", base_url="http://127.0.0.1:9")
        assert (tcc.get_api_key(), tcc.get_url("/x")) == ("key-1", "http://127.0.0.1:9/x")


class TestUnconvertibleRequiredValue:
    @pytest.mark.parametrize(
        ("make", "message"),
        [
            pytest.param(
                lambda: tcc.run(run_id="run-1").prompt(BadStr()),
                "Run.end() needs run.prompt(...) first",
                id="run-prompt",
            ),
            pytest.param(
                lambda: tcc.step("run-1").prompt(BadStr()).response("r"),
                "Step.end() needs step.prompt(...) first",
                id="step-prompt",
            ),
            pytest.param(
                lambda: tcc.step("run-1").prompt("p").response(BadStr()),
                "Step.end() needs step.response(...) first",
                id="step-response",
            ),
            pytest.param(
                lambda: tcc.tool_call("run-1").name(BadStr()),
                "ToolCall.end() needs tool_call.name(...) first",
                id="tool-name",
            ),
        ],
    )
    def test_end_says_what_happened(
        self,
        captured: CapturedSpans,
        caplog: pytest.LogCaptureFixture,
        make: Callable[[], Any],
        message: str,
    ) -> None:
        """After the warning, ``end()`` raises ValueError naming the value's type and the
        exception its ``str()`` raised, not only that the call is missing."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        record = make()
        expected = (
            f"{message}: the value given to it, of type BadStr, could not be converted to "
            "text (str() raised RuntimeError: no text for you), so it was left out. Pass a "
            f"str, or call {type(record).__name__}.error() to end it as failed."
        )
        with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
            record.end()
        assert len(messages(caplog.records)) == 1

    def test_a_later_good_value_wins(self, captured: CapturedSpans) -> None:
        """A value that converts, given after one that did not, ends the record normally."""
        r = tcc.run(run_id="run-1").prompt(BadStr())
        r.prompt("hello").end()
        assert captured.by_name("invoke_agent").attributes["tcc.run.user_prompt"] == "hello"

    def test_with_block_says_it_too(self, captured: CapturedSpans) -> None:
        """Leaving a ``with`` block raises the same explanation."""
        run = tcc.run(run_id="run-1")
        with pytest.raises(ValueError, match="of type BadStr, could not be converted"), run:
            run.prompt(BadStr())
