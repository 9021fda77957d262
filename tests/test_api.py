"""The run/step/tool-call API of README section 1: chaining, ids, misuse errors, ``None`` ignored,
bad values warned instead of raised, and text that cannot be exported replaced."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

import tcc_otel as tcc
from tcc_otel.testing import CapturedSpans

BAD_TEXT = "a\ud800b\x00c"
"""A lone surrogate and a NUL: text that protobuf cannot carry."""
CLEAN_TEXT = "a\ufffdb\ufffdc"
"""``BAD_TEXT`` once each offending character is replaced."""


def attributes(span: ReadableSpan) -> dict[str, object]:
    """The span's attributes as a plain dict."""
    return dict(span.attributes or {})


def typed(values: Mapping[str, object]) -> dict[str, tuple[str, object]]:
    """Pair each value with its type name, so ``True`` never equals ``1``."""
    return {key: (type(value).__name__, value) for key, value in values.items()}


def only(captured: CapturedSpans) -> ReadableSpan:
    """The single span captured."""
    spans = captured.spans
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Messages of the warnings (and worse) logged on ``tcc_otel``."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "tcc_otel" and record.levelno >= logging.WARNING
    ]


def step_attrs(**extra: object) -> dict[str, object]:
    """Attributes of ``tcc.step("run-1", step_id="step-1").prompt("p").response("r")``, plus
    ``extra``."""
    return {
        "tcc.type": "step",
        "tcc.runId": "run-1",
        "tcc.stepId": "step-1",
        "gen_ai.operation.name": "chat",
        "tcc.step.prompt": "p",
        "tcc.step.response": "r",
        "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "p"}]}]',
        "gen_ai.output.messages": (
            '[{"role": "assistant", "parts": [{"type": "text", "content": "r"}]}]'
        ),
        **extra,
    }


def run_attrs(**extra: object) -> dict[str, object]:
    """Attributes of ``tcc.run(run_id="run-1").prompt("hi")``, plus ``extra``."""
    return {
        "tcc.type": "run",
        "tcc.runId": "run-1",
        "gen_ai.operation.name": "invoke_agent",
        "tcc.run.user_prompt": "hi",
        "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
        **extra,
    }


def tool_attrs(**extra: object) -> dict[str, object]:
    """Attributes of ``tcc.tool_call("run-1", tool_call_id="call-1", tool_name="search")``, plus
    ``extra``."""
    return {
        "tcc.type": "tool_call",
        "tcc.runId": "run-1",
        "tcc.toolCallId": "call-1",
        "gen_ai.operation.name": "execute_tool",
        "tcc.tool_call.name": "search",
        "gen_ai.tool.name": "search",
        "gen_ai.tool.call.id": "call-1",
        **extra,
    }


def new_step() -> tcc.Step:
    return tcc.step("run-1", step_id="step-1").prompt("p").response("r")


def new_run() -> tcc.Run:
    return tcc.run(run_id="run-1").prompt("hi")


def new_tool_call() -> tcc.ToolCall:
    return tcc.tool_call("run-1", tool_call_id="call-1", tool_name="search")


class BadStr:
    """A value whose ``str()`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class TestIds:
    def test_run_id_defaults_to_uuid4(self, captured: CapturedSpans) -> None:
        """A run without ``run_id`` gets a UUID4 string, stamped on its span."""
        r = tcc.run()
        r.prompt("hi").end()
        assert (uuid.UUID(r.run_id).version, attributes(only(captured))["tcc.runId"]) == (
            4,
            r.run_id,
        )

    def test_step_and_tool_call_ids_default_to_uuid4(self, captured: CapturedSpans) -> None:
        """Steps and tool calls without ids get UUID4 strings, stamped on their spans."""
        r = tcc.run()
        s = r.step()
        t = r.tool_call("search")
        s.prompt("p").response("r").end()
        t.end()
        step_span, tool_span = captured.spans
        assert (
            uuid.UUID(s.step_id).version,
            uuid.UUID(t.tool_call_id).version,
            attributes(step_span)["tcc.stepId"],
            attributes(tool_span)["tcc.toolCallId"],
        ) == (4, 4, s.step_id, t.tool_call_id)

    def test_given_ids_are_kept(self, captured: CapturedSpans) -> None:
        """Ids passed in are used as they are, and every record knows its run's id."""
        r = tcc.run(run_id="run-7")
        s = r.step(step_id="step-7")
        t = tcc.tool_call(r.run_id, tool_call_id="call-7", tool_name="search")
        assert [r.run_id, s.run_id, s.step_id, t.run_id, t.tool_call_id] == [
            "run-7",
            "run-7",
            "step-7",
            "run-7",
            "call-7",
        ]


class TestChaining:
    def test_run_setters_return_the_run(self, captured: CapturedSpans) -> None:
        """Every Run setter returns the run itself."""
        r = tcc.run()
        assert [
            r.prompt("hi", system_prompt="sys") is r,
            r.response("bye") is r,
            r.metadata({"plan": "pro"}, seats=1) is r,
            r.status(0) is r,
        ] == [True, True, True, True]

    def test_step_setters_return_the_step(self, captured: CapturedSpans) -> None:
        """Every Step setter returns the step itself."""
        s = tcc.step("run-1")
        assert [
            s.prompt("p") is s,
            s.response("r") is s,
            s.model(requested="m", used="m2") is s,
            s.tokens(prompt_uncached=1, prompt_cached=2, completion=3) is s,
            s.cost(0.5) is s,
            s.finish_reason("stop") is s,
            s.tool_definitions("[]") is s,
        ] == [True] * 7

    def test_tool_call_setters_return_the_tool_call(self, captured: CapturedSpans) -> None:
        """Every ToolCall setter returns the tool call itself."""
        t = tcc.tool_call("run-1")
        assert [t.name("search") is t, t.args("q") is t, t.result("r") is t] == [True] * 3

    def test_one_chained_expression_records_everything(self, captured: CapturedSpans) -> None:
        """A whole step written as one chain is recorded with every field."""
        tcc.step("run-1", step_id="step-1").prompt("p").response("r").model(used="m").finish_reason(
            "stop"
        ).end()
        assert typed(attributes(only(captured))) == typed(
            step_attrs(
                **{
                    "tcc.step.model_used": "m",
                    "tcc.step.finish_reason": "stop",
                    "gen_ai.response.model": "m",
                    "gen_ai.response.finish_reasons": ("stop",),
                    "gen_ai.output.messages": (
                        '[{"role": "assistant", "parts": [{"type": "text", "content": "r"}], '
                        '"finish_reason": "stop"}]'
                    ),
                }
            )
        )


class TestRequiredFields:
    @pytest.mark.parametrize(
        ("make", "message"),
        [
            pytest.param(
                lambda: tcc.run(),
                "Run.end() needs run.prompt(...) first (or call Run.error() to end it as failed).",
                id="run",
            ),
            pytest.param(
                lambda: tcc.step("run-1"),
                "Step.end() needs step.prompt(...) and step.response(...) first "
                "(or call Step.error() to end it as failed).",
                id="step",
            ),
            pytest.param(
                lambda: tcc.step("run-1").response("r"),
                "Step.end() needs step.prompt(...) first "
                "(or call Step.error() to end it as failed).",
                id="step-without-prompt",
            ),
            pytest.param(
                lambda: tcc.step("run-1").prompt("p"),
                "Step.end() needs step.response(...) first "
                "(or call Step.error() to end it as failed).",
                id="step-without-response",
            ),
            pytest.param(
                lambda: tcc.tool_call("run-1"),
                "ToolCall.end() needs tool_call.name(...) first "
                "(or call ToolCall.error() to end it as failed).",
                id="tool_call",
            ),
        ],
    )
    def test_end_without_required_field(
        self, captured: CapturedSpans, make: Callable[[], Any], message: str
    ) -> None:
        """``end()`` without a required field raises ValueError naming the missing call, and
        records nothing."""
        record = make()
        with pytest.raises(ValueError, match=r"\.end\(\) needs ") as raised:
            record.end()
        assert (str(raised.value), record.ended, captured.spans) == (message, False, [])

    def test_record_stays_open_after_the_value_error(self, captured: CapturedSpans) -> None:
        """After that ValueError the caller can add the missing field and end normally."""
        s = tcc.step("run-1", step_id="step-1").prompt("p")
        with pytest.raises(ValueError, match=re.escape("step.response(...)")):
            s.end()
        s.response("r").end()
        assert typed(attributes(only(captured))) == typed(step_attrs())

    @pytest.mark.parametrize(
        "make",
        [
            pytest.param(lambda: tcc.run(), id="run"),
            pytest.param(lambda: tcc.step("run-1"), id="step"),
            pytest.param(lambda: tcc.tool_call("run-1"), id="tool_call"),
        ],
    )
    def test_error_needs_no_field(self, captured: CapturedSpans, make: Callable[[], Any]) -> None:
        """``error()`` ends a record that has no required field set."""
        record = make()
        record.error("failed")
        assert (record.ended, [s.status.status_code for s in captured.spans]) == (
            True,
            [StatusCode.ERROR],
        )

    def test_failed_step_does_not_fail_the_run(self, captured: CapturedSpans) -> None:
        """A run whose step failed still ends successfully."""
        r = tcc.run().prompt("hi")
        r.step().error("model overloaded")
        r.tool_call("search").error("tool timed out")
        r.end()
        assert [(s.name, s.status.status_code) for s in captured.spans] == [
            ("chat", StatusCode.ERROR),
            ("execute_tool search", StatusCode.ERROR),
            ("invoke_agent", StatusCode.UNSET),
        ]


class TestUseAfterEnd:
    @pytest.mark.parametrize("ending", ["end", "error"])
    @pytest.mark.parametrize(
        ("make", "call", "message"),
        [
            pytest.param(
                new_run,
                lambda r: r.prompt("again"),
                "Run.prompt() was called after the run already ended; "
                "set every field before Run.end() or Run.error().",
                id="run.prompt",
            ),
            pytest.param(
                new_run,
                lambda r: r.response("late"),
                "Run.response() was called after the run already ended; "
                "set every field before Run.end() or Run.error().",
                id="run.response",
            ),
            pytest.param(
                new_run,
                lambda r: r.metadata(plan="pro"),
                "Run.metadata() was called after the run already ended; "
                "set every field before Run.end() or Run.error().",
                id="run.metadata",
            ),
            pytest.param(
                new_run,
                lambda r: r.status(0),
                "Run.status() was called after the run already ended; "
                "set every field before Run.end() or Run.error().",
                id="run.status",
            ),
            pytest.param(
                new_step,
                lambda s: s.model(used="m"),
                "Step.model() was called after the step already ended; "
                "set every field before Step.end() or Step.error().",
                id="step.model",
            ),
            pytest.param(
                new_step,
                lambda s: s.tokens(completion=1),
                "Step.tokens() was called after the step already ended; "
                "set every field before Step.end() or Step.error().",
                id="step.tokens",
            ),
            pytest.param(
                new_step,
                lambda s: s.cost(0.1),
                "Step.cost() was called after the step already ended; "
                "set every field before Step.end() or Step.error().",
                id="step.cost",
            ),
            pytest.param(
                new_step,
                lambda s: s.finish_reason("stop"),
                "Step.finish_reason() was called after the step already ended; "
                "set every field before Step.end() or Step.error().",
                id="step.finish_reason",
            ),
            pytest.param(
                new_step,
                lambda s: s.tool_definitions([]),
                "Step.tool_definitions() was called after the step already ended; "
                "set every field before Step.end() or Step.error().",
                id="step.tool_definitions",
            ),
            pytest.param(
                new_tool_call,
                lambda t: t.args({"q": 1}),
                "ToolCall.args() was called after the toolcall already ended; "
                "set every field before ToolCall.end() or ToolCall.error().",
                id="tool_call.args",
            ),
            pytest.param(
                new_tool_call,
                lambda t: t.result("r"),
                "ToolCall.result() was called after the toolcall already ended; "
                "set every field before ToolCall.end() or ToolCall.error().",
                id="tool_call.result",
            ),
        ],
    )
    def test_setter_after_end_raises(
        self,
        captured: CapturedSpans,
        ending: str,
        make: Callable[[], Any],
        call: Callable[[Any], object],
        message: str,
    ) -> None:
        """A setter called after ``end()``/``error()`` raises RuntimeError naming the method, and
        the recorded span is unchanged."""
        record = make()
        getattr(record, ending)()
        before = attributes(only(captured))
        with pytest.raises(RuntimeError) as raised:
            call(record)
        assert (str(raised.value), attributes(only(captured))) == (message, before)

    @pytest.mark.parametrize(
        ("make", "name"),
        [
            pytest.param(new_run, "Run", id="run"),
            pytest.param(new_step, "Step", id="step"),
            pytest.param(new_tool_call, "ToolCall", id="tool_call"),
        ],
    )
    @pytest.mark.parametrize("first", ["end", "error"])
    @pytest.mark.parametrize("second", ["end", "error"])
    def test_second_ending_raises(
        self,
        captured: CapturedSpans,
        make: Callable[[], Any],
        name: str,
        first: str,
        second: str,
    ) -> None:
        """A second ``end()``/``error()`` raises RuntimeError saying the record already ended, and
        the span is recorded once."""
        record = make()
        getattr(record, first)()
        with pytest.raises(RuntimeError) as raised:
            getattr(record, second)()
        assert (str(raised.value), len(captured.spans)) == (
            f"{name}.{second}() was called after the {name.lower()} already ended; "
            f"set every field before {name}.end() or {name}.error().",
            1,
        )


class TestNoneIsIgnored:
    def test_run_setters(self, captured: CapturedSpans, caplog: pytest.LogCaptureFixture) -> None:
        """``None`` passed to any Run setter changes nothing and logs nothing."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        r = tcc.run(run_id="run-1", session_id=None, conversational=None).prompt("hi")
        r.prompt(None).response(None).metadata(None).status(None).end()
        assert (typed(attributes(only(captured))), only(captured).status.status_code) == (
            typed(run_attrs()),
            StatusCode.UNSET,
        )
        assert warnings_of(caplog) == []

    def test_step_setters(self, captured: CapturedSpans, caplog: pytest.LogCaptureFixture) -> None:
        """``None`` passed to any Step setter keeps the value set before and logs nothing."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        s = new_step().model(requested="m").tokens(completion=3).cost(0.5).finish_reason("stop")
        s.tool_definitions("[]")
        s.prompt(None).response(None).model(None, None).tokens(None, None, None).cost(None)
        s.finish_reason(None).tool_definitions(None).end()
        assert typed(attributes(only(captured))) == typed(
            step_attrs(
                **{
                    "tcc.step.model_requested": "m",
                    "tcc.step.completion_tokens": 3,
                    "tcc.step.real_total_cost": 0.5,
                    "tcc.step.finish_reason": "stop",
                    "tcc.step.tool_definitions": "[]",
                    "gen_ai.request.model": "m",
                    "gen_ai.usage.output_tokens": 3,
                    "gen_ai.response.finish_reasons": ("stop",),
                    "gen_ai.tool.definitions": "[]",
                    "gen_ai.output.messages": (
                        '[{"role": "assistant", "parts": [{"type": "text", "content": "r"}], '
                        '"finish_reason": "stop"}]'
                    ),
                }
            )
        )
        assert warnings_of(caplog) == []

    def test_tool_call_setters(
        self, captured: CapturedSpans, caplog: pytest.LogCaptureFixture
    ) -> None:
        """``None`` passed to any ToolCall setter keeps the value set before and logs nothing."""
        caplog.set_level(logging.WARNING, logger="tcc_otel")
        t = new_tool_call().args("q").result("r")
        t.name(None).args(None).result(None).end()
        assert typed(attributes(only(captured))) == typed(
            tool_attrs(
                **{
                    "tcc.tool_call.args": "q",
                    "tcc.tool_call.result": "r",
                    "gen_ai.tool.call.arguments": "q",
                    "gen_ai.tool.call.result": "r",
                }
            )
        )
        assert warnings_of(caplog) == []


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
