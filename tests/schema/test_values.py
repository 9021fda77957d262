"""Caller values into attribute values (tcc_otel/_schema/_values.py), through the records'
setters: text fields take any value, bad values are warned about and left out instead of
raised, and text that protobuf cannot carry is replaced."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from helpers.records import (
    attributes,
    new_run,
    new_step,
    new_tool_call,
    only,
    run_attrs,
    step_attrs,
    tool_attrs,
    typed,
    warnings_of,
)
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

import tcc_otel as tcc
from tcc_otel.testing import CapturedSpans

BAD_TEXT = "a\ud800b\x00c"
"""A lone surrogate and a NUL: text that protobuf cannot carry."""
CLEAN_TEXT = "a\ufffdb\ufffdc"
"""``BAD_TEXT`` once each offending character is replaced."""


class BadStr:
    """A value whose ``str()`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class TestAnyValueForText:
    def test_text_fields_convert(
        self, captured: CapturedSpans, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Text fields take any value: lists and dicts become JSON, anything else ``str()``."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        tcc.run(run_id="run-1").prompt(["hi", 2], system_prompt=3.5).response({"answer": 42}).end()
        s = tcc.step("run-1", step_id="step-1").prompt(123).response(None).response(True)
        s.finish_reason(7).end()
        tcc.tool_call("run-1", tool_call_id="call-1").name(404).end()
        got = {
            span.name: {
                key: value
                for key, value in attributes(span).items()
                if key.startswith(("tcc.run.", "tcc.step.", "tcc.tool_call."))
            }
            for span in captured.spans
        }
        assert got == {
            "invoke_agent": {
                "tcc.run.user_prompt": '["hi", 2]',
                "tcc.run.system_prompt": "3.5",
                "tcc.run.response": '{"answer": 42}',
            },
            "chat": {
                "tcc.step.prompt": "123",
                "tcc.step.response": "True",
                "tcc.step.finish_reason": "7",
            },
            "execute_tool 404": {"tcc.tool_call.name": "404"},
        }
        assert warnings_of(caplog) == []

    def test_json_fields_keep_strings_and_serialise_the_rest(
        self, captured: CapturedSpans, caplog: pytest.LogCaptureFixture
    ) -> None:
        """``args``/``result``/``tool_definitions`` keep a string as is and serialise any other
        JSON value."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        new_tool_call().args("city=London").result([1, "two", None]).end()
        new_tool_call().args({"city": "Zürich"}).result(5).end()
        new_step().tool_definitions('[{"name": "x"}]').end()
        new_step().tool_definitions({"name": "x"}).end()
        got = [
            {
                key: value
                for key, value in attributes(span).items()
                if key
                in ("tcc.tool_call.args", "tcc.tool_call.result", "tcc.step.tool_definitions")
            }
            for span in captured.spans
        ]
        assert got == [
            {"tcc.tool_call.args": "city=London", "tcc.tool_call.result": '[1, "two", null]'},
            {"tcc.tool_call.args": '{"city": "Zürich"}', "tcc.tool_call.result": "5"},
            {"tcc.step.tool_definitions": '[{"name": "x"}]'},
            {"tcc.step.tool_definitions": '{"name": "x"}'},
        ]
        assert warnings_of(caplog) == []


def _circular() -> dict[str, object]:
    loop: dict[str, object] = {}
    loop["self"] = loop
    return loop


class TestBadValuesWarn:
    @pytest.mark.parametrize(
        ("make", "call", "method", "type_name", "expected"),
        [
            pytest.param(
                new_step,
                lambda s: s.tokens(prompt_uncached=True, completion=3),
                "Step.tokens()",
                "bool",
                step_attrs(**{"tcc.step.completion_tokens": 3, "gen_ai.usage.output_tokens": 3}),
                id="tokens-bool",
            ),
            pytest.param(
                new_step,
                lambda s: s.tokens(prompt_cached=-1, completion=3),
                "Step.tokens()",
                "int",
                step_attrs(**{"tcc.step.completion_tokens": 3, "gen_ai.usage.output_tokens": 3}),
                id="tokens-negative",
            ),
            pytest.param(
                new_step,
                lambda s: s.tokens(prompt_uncached=5, completion=2.0),
                "Step.tokens()",
                "float",
                step_attrs(
                    **{
                        "tcc.step.prompt_uncached_tokens": 5,
                        "gen_ai.usage.input_tokens": 5,
                    }
                ),
                id="tokens-float",
            ),
            pytest.param(
                new_step,
                lambda s: s.tokens(completion="12"),
                "Step.tokens()",
                "str",
                step_attrs(),
                id="tokens-str",
            ),
            pytest.param(
                new_step,
                lambda s: s.tokens(prompt_uncached=2**64, completion=3),
                "Step.tokens()",
                "int",
                step_attrs(**{"tcc.step.completion_tokens": 3, "gen_ai.usage.output_tokens": 3}),
                id="tokens-beyond-int64",
            ),
            pytest.param(
                new_step,
                lambda s: s.cost(float("nan")),
                "Step.cost()",
                "float",
                step_attrs(),
                id="cost-nan",
            ),
            pytest.param(
                new_step,
                lambda s: s.cost(float("inf")),
                "Step.cost()",
                "float",
                step_attrs(),
                id="cost-inf",
            ),
            pytest.param(
                new_step,
                lambda s: s.cost(-0.01),
                "Step.cost()",
                "float",
                step_attrs(),
                id="cost-negative",
            ),
            pytest.param(
                new_step,
                lambda s: s.cost("0.10"),
                "Step.cost()",
                "str",
                step_attrs(),
                id="cost-str",
            ),
            pytest.param(
                new_step,
                lambda s: s.cost(True),
                "Step.cost()",
                "bool",
                step_attrs(),
                id="cost-bool",
            ),
            pytest.param(
                new_step,
                lambda s: s.tool_definitions([{"name": "x", "schema": object()}]),
                "Step.tool_definitions()",
                "list",
                step_attrs(),
                id="tool_definitions-unserialisable",
            ),
            pytest.param(
                new_step,
                lambda s: s.tool_definitions(_circular()),
                "Step.tool_definitions()",
                "dict",
                step_attrs(),
                id="tool_definitions-circular",
            ),
            pytest.param(
                new_step,
                lambda s: s.finish_reason(BadStr()),
                "Step.finish_reason()",
                "BadStr",
                step_attrs(),
                id="finish_reason-str-raises",
            ),
            pytest.param(
                new_run,
                lambda r: r.status(1, "partial"),
                "Run.status()",
                "int",
                run_attrs(),
                id="status-1",
            ),
            pytest.param(
                new_run,
                lambda r: r.status("0"),
                "Run.status()",
                "str",
                run_attrs(),
                id="status-str",
            ),
            pytest.param(
                new_run,
                lambda r: r.status(False),
                "Run.status()",
                "bool",
                run_attrs(),
                id="status-bool",
            ),
            pytest.param(
                new_run,
                lambda r: r.metadata({"plan": ["pro"]}, seats=2),
                "Run.metadata()",
                "list",
                run_attrs(**{"tcc.metadata.seats": 2}),
                id="metadata-list",
            ),
            pytest.param(
                new_run,
                lambda r: r.metadata({"plan": "pro", "owner": object()}),
                "Run.metadata()",
                "object",
                run_attrs(**{"tcc.metadata.plan": "pro"}),
                id="metadata-object",
            ),
            pytest.param(
                new_run,
                lambda r: r.metadata(seats=2, big=2**63),
                "Run.metadata()",
                "int",
                run_attrs(**{"tcc.metadata.seats": 2}),
                id="metadata-int-beyond-int64",
            ),
            pytest.param(
                new_run,
                lambda r: r.response(BadStr()),
                "Run.response()",
                "BadStr",
                run_attrs(),
                id="response-str-raises",
            ),
            pytest.param(
                new_tool_call,
                lambda t: t.args({"when": object()}).result("ok"),
                "ToolCall.args()",
                "dict",
                tool_attrs(**{"tcc.tool_call.result": "ok", "gen_ai.tool.call.result": "ok"}),
                id="args-unserialisable",
            ),
            pytest.param(
                new_tool_call,
                lambda t: t.args("q").result({1, 2}),
                "ToolCall.result()",
                "set",
                tool_attrs(**{"tcc.tool_call.args": "q", "gen_ai.tool.call.arguments": "q"}),
                id="result-set",
            ),
        ],
    )
    def test_one_warning_and_the_rest_kept(
        self,
        captured: CapturedSpans,
        caplog: pytest.LogCaptureFixture,
        make: Callable[[], Any],
        call: Callable[[Any], Any],
        method: str,
        type_name: str,
        expected: dict[str, object],
    ) -> None:
        """A bad value does not raise: one warning names the method and the value's type, the
        field is left out and the rest of the record is exported."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        record = make()
        assert call(record) is record
        record.end()
        messages = warnings_of(caplog)
        assert len(messages) == 1, messages
        assert (method in messages[0], re.search(rf"\b{type_name}\b", messages[0]) is not None) == (
            True,
            True,
        ), messages[0]
        span = only(captured)
        assert (typed(attributes(span)), span.status.status_code) == (
            typed(expected),
            StatusCode.UNSET,
        )


class TestUnexportableText:
    @staticmethod
    def encoded(spans: list[ReadableSpan]) -> dict[str, int]:
        """Encode ``spans`` to OTLP protobuf as the exporter does: span name -> attributes kept."""
        request = encode_spans(spans)
        assert len(request.SerializeToString()) > 0
        return {
            span.name: len(span.attributes)
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        }

    def test_content_fields(self, captured: CapturedSpans) -> None:
        """Lone surrogates and NULs in content, names, session id and metadata values are
        replaced (in JSON a NUL may stay escaped as ``\\u0000``), so every attribute exports."""
        r = tcc.run(run_id="run-1", session_id=BAD_TEXT).prompt(BAD_TEXT, system_prompt=BAD_TEXT)
        r.response(BAD_TEXT).metadata(note=BAD_TEXT)
        s = r.step(step_id="step-1").prompt(BAD_TEXT).response(BAD_TEXT)
        s.model(requested=BAD_TEXT).finish_reason(BAD_TEXT).tool_definitions({"d": BAD_TEXT})
        s.end()
        r.tool_call(BAD_TEXT, tool_call_id="call-1").args({"q": BAD_TEXT}).result(BAD_TEXT).end()
        r.end()
        texts = {
            key: value
            for span in captured.spans
            for key, value in attributes(span).items()
            if key.startswith(("tcc.", "gen_ai.request", "gen_ai.conversation"))
            and key not in ("tcc.type", "tcc.runId", "tcc.stepId", "tcc.toolCallId")
        }
        assert texts == {
            "tcc.step.prompt": CLEAN_TEXT,
            "tcc.step.response": CLEAN_TEXT,
            "tcc.step.model_requested": CLEAN_TEXT,
            "tcc.step.finish_reason": CLEAN_TEXT,
            "tcc.step.tool_definitions": '{"d": "a\ufffdb\\u0000c"}',
            "gen_ai.request.model": CLEAN_TEXT,
            "tcc.tool_call.name": CLEAN_TEXT,
            "tcc.tool_call.args": '{"q": "a\ufffdb\\u0000c"}',
            "tcc.tool_call.result": CLEAN_TEXT,
            "tcc.sessionId": CLEAN_TEXT,
            "gen_ai.conversation.id": CLEAN_TEXT,
            "tcc.run.user_prompt": CLEAN_TEXT,
            "tcc.run.system_prompt": CLEAN_TEXT,
            "tcc.run.response": CLEAN_TEXT,
            "tcc.metadata.note": CLEAN_TEXT,
        }
        assert attributes(captured.by_name("invoke_agent"))["gen_ai.input.messages"] == (
            '[{"role": "user", "parts": [{"type": "text", "content": "a\ufffdb\ufffdc"}]}]'
        )
        assert self.encoded(captured.spans) == {
            span.name: len(attributes(span)) for span in captured.spans
        }
        assert [span.name for span in captured.spans] == [
            f"chat {CLEAN_TEXT}",
            f"execute_tool {CLEAN_TEXT}",
            "invoke_agent",
        ]

    @pytest.mark.parametrize(
        "fail",
        [
            pytest.param(lambda r: r.error(BAD_TEXT), id="error"),
            pytest.param(lambda r: r.prompt("hi").status(2, BAD_TEXT).end(), id="status"),
        ],
    )
    def test_status_message(self, captured: CapturedSpans, fail: Callable[[Any], None]) -> None:
        """Lone surrogates and NULs in a status message are replaced, so the span still
        exports."""
        fail(tcc.run())
        assert [s.status.description for s in captured.spans] == [CLEAN_TEXT]
        assert self.encoded(captured.spans) == {"invoke_agent": len(attributes(only(captured)))}

    def test_exception_message(self, captured: CapturedSpans) -> None:
        """Lone surrogates and NULs in an exception caught by ``with`` are replaced in the status
        description, so the span still exports."""
        with pytest.raises(ValueError, match="a"), tcc.run():
            raise ValueError(BAD_TEXT)
        assert [s.status.description for s in captured.spans] == [f"ValueError: {CLEAN_TEXT}"]
        assert self.encoded(captured.spans) == {"invoke_agent": 4}

    def test_metadata_key(self, captured: CapturedSpans) -> None:
        """Lone surrogates and NULs in a metadata key are replaced, so the key still exports."""
        new_run().metadata({BAD_TEXT: "v"}).end()
        assert typed(attributes(only(captured))) == typed(
            run_attrs(**{f"tcc.metadata.{CLEAN_TEXT}": "v"})
        )
        assert self.encoded(captured.spans) == {"invoke_agent": 6}

    def test_ids(self, captured: CapturedSpans) -> None:
        """Lone surrogates and NULs in run, step and tool call ids are replaced, so
        ``tcc.runId`` and the other ids still export."""
        r = tcc.run(run_id=BAD_TEXT).prompt("hi")
        r.step(step_id=BAD_TEXT).prompt("p").response("r").end()
        r.tool_call("search", tool_call_id=BAD_TEXT).end()
        r.end()
        ids = [
            {key: value for key, value in attributes(span).items() if key.endswith(("Id", ".id"))}
            for span in captured.spans
        ]
        assert ids == [
            {"tcc.runId": CLEAN_TEXT, "tcc.stepId": CLEAN_TEXT},
            {
                "tcc.runId": CLEAN_TEXT,
                "tcc.toolCallId": CLEAN_TEXT,
                "gen_ai.tool.call.id": CLEAN_TEXT,
            },
            {"tcc.runId": CLEAN_TEXT},
        ]
        assert self.encoded(captured.spans) == {
            span.name: len(attributes(span)) for span in captured.spans
        }
