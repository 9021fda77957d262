"""The OpenTelemetry GenAI semantic conventions, checked rather than assumed: every ``gen_ai.*``
name a recorded run emits is a constant of ``opentelemetry-semantic-conventions``, and every value
has the type (and, for JSON content, the shape) the conventions give."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GenAiOperationNameValues,
)
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.semconv.attributes.error_attributes import ErrorTypeValues
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

import tcc_otel as tcc
from tcc_otel._schema import _keys as attrs
from tcc_otel.testing import capture

USER_PROMPT = "What is the weather in London?"
SYSTEM_PROMPT = "You are a weather agent."
RUN_RESPONSE = "15°C and cloudy."
STEP_PROMPT = "Weather agent. User: What is the weather in London?"
STEP_RESPONSE = "It is 15°C and cloudy in London."
RETRY_PROMPT = "Weather agent. User: What is the weather in London? (retry)"
TOOL_DEFINITIONS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]
TOOL_ARGS = {"city": "London"}
TOOL_RESULT = {"celsius": 15, "sky": "cloudy"}

SEMCONV_TYPES: dict[str, str] = {
    "gen_ai.operation.name": "string",  # an enum of string members; see OPERATION_NAMES
    "gen_ai.conversation.id": "string",
    "gen_ai.agent.name": "string",
    "gen_ai.input.messages": "any",
    "gen_ai.output.messages": "any",
    "gen_ai.system_instructions": "any",
    "gen_ai.usage.input_tokens": "int",
    "gen_ai.usage.output_tokens": "int",
    "gen_ai.usage.cache_read.input_tokens": "int",
    "gen_ai.request.model": "string",
    "gen_ai.response.model": "string",
    "gen_ai.response.finish_reasons": "string[]",
    "gen_ai.tool.definitions": "any",
    "gen_ai.tool.name": "string",
    "gen_ai.tool.call.id": "string",
    "gen_ai.tool.call.arguments": "any",
    "gen_ai.tool.call.result": "any",
    "error.type": "string",
}
"""Value type of each semconv attribute we emit, as the conventions document it.

The semconv package gives names only (``GEN_AI_X: Final = "gen_ai.x"``), no machine-readable
types, so they are copied here from the attribute registry: "GenAI Attributes" in
open-telemetry/semantic-conventions ``docs/registry/attributes/gen-ai.md`` (``model/gen-ai/
registry.yaml`` in open-telemetry/semantic-conventions-genai, where GenAI now lives) and
"Error" (``docs/registry/attributes/error.md``) for ``error.type``.
"""

ON_SPANS: dict[str, str] = {
    "string": "string",
    "int": "int",
    "string[]": "string[]",
    "any": "JSON",
}
"""How a documented type is written on a span. ``any`` attributes (messages, system
instructions, tool definitions, tool call arguments/result) "MAY be recorded as a JSON string if
structured format is not supported" (GenAI registry notes): Python span attributes cannot hold
maps, so they must be JSON text that parses to an array or object."""

OPERATION_NAMES = {
    "run": GenAiOperationNameValues.INVOKE_AGENT.value,
    "step": GenAiOperationNameValues.CHAT.value,
    "tool_call": GenAiOperationNameValues.EXECUTE_TOOL.value,
}
"""``gen_ai.operation.name`` per record type, from the package's enum."""


def semconv_gen_ai_names() -> dict[str, str]:
    """Every ``GEN_AI_*`` string constant of the incubating GenAI attributes module."""
    return {
        name: value
        for name, value in vars(gen_ai_attributes).items()
        if name.startswith("GEN_AI_") and isinstance(value, str)
    }


def tcc_gen_ai_names() -> dict[str, str]:
    """Every ``GEN_AI_*`` constant of ``tcc_otel._schema._keys``."""
    return {
        name: value
        for name, value in vars(attrs).items()
        if name.startswith("GEN_AI_") and isinstance(value, str)
    }


def semconv_names() -> set[str]:
    """Attribute names the semconv package defines that tcc_otel may write: GenAI and error."""
    return set(semconv_gen_ai_names().values()) | {error_attributes.ERROR_TYPE}


def record_key(values: Mapping[str, AttributeValue]) -> str:
    """A readable key per record: ``run``, or the step / tool call id."""
    kind = values["tcc.type"]
    if kind == "step":
        return str(values["tcc.stepId"])
    if kind == "tool_call":
        return str(values["tcc.toolCallId"])
    return str(kind)


def record_everything() -> dict[str, ReadableSpan]:
    """Record a run with every field set, a step with every setter, a tool call with name, args
    and result, a step that raises and a tool call ended with ``error()``; spans by record."""
    with capture() as captured:
        with tcc.run(run_id="run-1", session_id="session-1", conversational=True) as run:
            run.prompt(USER_PROMPT, system_prompt=SYSTEM_PROMPT)
            run.metadata({"tcc.agent": "weather", "tcc.userId": "user-1"}, plan="pro")
            with run.step(step_id="step-1") as step:
                step.prompt(STEP_PROMPT).response(STEP_RESPONSE)
                step.model(requested="gpt-4o", used="gpt-4o-2024-08-06")
                step.tokens(prompt_uncached=100, prompt_cached=50, completion=20).cost(0.002)
                step.finish_reason("tool_call").tool_definitions(TOOL_DEFINITIONS)
            with run.tool_call(tool_name="get_weather", tool_call_id="call-1") as call:
                call.args(TOOL_ARGS).result(TOOL_RESULT)
            with pytest.raises(TimeoutError):
                fail_a_step(run)
            run.tool_call(tool_name="get_weather", tool_call_id="call-2").error("tool crashed")
            run.response(RUN_RESPONSE)
        return {record_key(span.attributes or {}): span for span in captured.spans}


def fail_a_step(run: tcc.Run) -> None:
    """Open step-2 in a ``with`` block and raise from it, as a timed-out LLM call would."""
    with run.step(step_id="step-2") as failing:
        failing.prompt(RETRY_PROMPT).model(requested="gpt-4o")
        raise TimeoutError("the model did not answer")


def attributes(span: ReadableSpan) -> dict[str, AttributeValue]:
    """The span's attributes as a plain dict."""
    return dict(span.attributes or {})


def gen_ai_keys(records: Mapping[str, ReadableSpan]) -> set[str]:
    """Every ``gen_ai.*`` attribute key on any of the spans."""
    return {
        key for span in records.values() for key in attributes(span) if key.startswith("gen_ai.")
    }


def semconv_attributes(span: ReadableSpan) -> dict[str, AttributeValue]:
    """The span's attributes that are not TCC's own ``tcc.*`` names."""
    return {key: value for key, value in attributes(span).items() if not key.startswith("tcc.")}


def written_as(value: AttributeValue) -> str:
    """How a value sits on the span, in the conventions' words (JSON for array/object text)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return "string"
        return "JSON" if isinstance(parsed, (list, dict)) else "string"
    if all(isinstance(item, str) for item in value):
        return "string[]"
    return f"{type(value).__name__} of {sorted({type(item).__name__ for item in value})}"


def json_value(span: ReadableSpan, key: str) -> Any:
    """The parsed JSON text of one attribute."""
    value = attributes(span)[key]
    assert isinstance(value, str), (key, value)
    return json.loads(value)


def check_text_part(part: Any) -> None:
    """A ``TextPart`` of the GenAI message schemas: ``type`` "text" and a string ``content``."""
    assert isinstance(part, dict), part
    assert part.get("type") == "text", part
    assert isinstance(part.get("content"), str), part


def check_messages(messages: Any, *, output: bool) -> None:
    """An input (``ChatMessage``) or output (``OutputMessage``) message array of the schemas
    ``gen-ai-input-messages.json`` / ``gen-ai-output-messages.json`` (semantic-conventions-genai,
    ``model/gen-ai/``): ``role`` and ``parts`` required; ``finish_reason``, on output only,
    optional (now deprecated there for ``gen_ai.response.finish_reasons``) and a string. The
    schemas allow extra keys; we allow only ``name`` besides, so nothing undocumented slips in."""
    assert isinstance(messages, list), messages
    assert messages, "no message"
    for message in messages:
        assert isinstance(message, dict), message
        allowed = {"role", "parts", "name"} | ({"finish_reason"} if output else set())
        assert {"role", "parts"} <= set(message) <= allowed, message
        assert message["role"] in ("system", "user", "assistant", "tool"), message
        assert isinstance(message["parts"], list), message
        assert message["parts"], message
        for part in message["parts"]:
            check_text_part(part)
        if "finish_reason" in message:
            assert isinstance(message["finish_reason"], str), message


@pytest.fixture
def records() -> dict[str, ReadableSpan]:
    """The spans of one fully populated run, by record: run, step-1, step-2, call-1, call-2."""
    return record_everything()


class TestRecording:
    def test_every_record_was_captured(self, records: dict[str, ReadableSpan]) -> None:
        """The recording holds the run, both steps and both tool calls."""
        assert sorted(records) == ["call-1", "call-2", "run", "step-1", "step-2"]

    def test_every_gen_ai_constant_is_emitted(self, records: dict[str, ReadableSpan]) -> None:
        """The recording writes every ``GEN_AI_*`` name tcc_otel defines, so the checks below
        cover them all (a new name needs a setter call added to ``record_everything``)."""
        assert sorted(gen_ai_keys(records)) == sorted(tcc_gen_ai_names().values())


class TestNames:
    def test_every_emitted_name_is_tcc_or_semconv(self, records: dict[str, ReadableSpan]) -> None:
        """Each attribute key on every span is a ``tcc.*`` name or a semconv constant."""
        known = semconv_names()
        unknown = {
            record: sorted(key for key in semconv_attributes(span) if key not in known)
            for record, span in records.items()
        }
        assert unknown == {record: [] for record in records}

    def test_every_emitted_gen_ai_name_is_a_semconv_constant(
        self, records: dict[str, ReadableSpan]
    ) -> None:
        """Each ``gen_ai.*`` key on every span is a constant of the incubating GenAI module."""
        known = set(semconv_gen_ai_names().values())
        assert sorted(gen_ai_keys(records) - known) == []

    def test_gen_ai_constants_match_semconv(self) -> None:
        """Every ``GEN_AI_*`` constant of ``_attributes`` has the semconv constant's name and
        value, so an unused one cannot drift either."""
        ours = tcc_gen_ai_names()
        theirs = semconv_gen_ai_names()
        assert ours == {name: theirs.get(name, "<not in semconv>") for name in ours}

    def test_error_type_matches_semconv(self) -> None:
        """``error.type`` and its ``_OTHER`` fallback are the stable error attribute's."""
        ours = {"key": attrs.ERROR_TYPE, "other": attrs.ERROR_TYPE_OTHER}
        assert ours == {"key": error_attributes.ERROR_TYPE, "other": ErrorTypeValues.OTHER.value}

    def test_operation_names_match_semconv(self) -> None:
        """The three operation names are members of ``GenAiOperationNameValues``."""
        assert {
            "run": attrs.OP_INVOKE_AGENT,
            "step": attrs.OP_CHAT,
            "tool_call": attrs.OP_EXECUTE_TOOL,
        } == OPERATION_NAMES

    def test_spans_carry_their_operation_name(self, records: dict[str, ReadableSpan]) -> None:
        """Each span's ``gen_ai.operation.name`` is the semconv operation of its record type."""
        assert {
            record: attributes(span)["gen_ai.operation.name"] for record, span in records.items()
        } == {
            "run": OPERATION_NAMES["run"],
            "step-1": OPERATION_NAMES["step"],
            "step-2": OPERATION_NAMES["step"],
            "call-1": OPERATION_NAMES["tool_call"],
            "call-2": OPERATION_NAMES["tool_call"],
        }

    def test_span_names_and_kinds(self, records: dict[str, ReadableSpan]) -> None:
        """Spans are named ``{operation} {agent|model|tool}`` with the conventions' kinds:
        in-process ``invoke_agent`` and ``execute_tool`` INTERNAL, inference (``chat``) CLIENT."""
        assert {record: (span.name, span.kind) for record, span in records.items()} == {
            "run": ("invoke_agent weather", SpanKind.INTERNAL),
            "step-1": ("chat gpt-4o-2024-08-06", SpanKind.CLIENT),
            "step-2": ("chat gpt-4o", SpanKind.CLIENT),
            "call-1": ("execute_tool get_weather", SpanKind.INTERNAL),
            "call-2": ("execute_tool get_weather", SpanKind.INTERNAL),
        }


class TestValueTypes:
    def test_type_table_covers_every_name_we_define(self) -> None:
        """The documented-type table lists exactly our ``GEN_AI_*`` names plus ``error.type``."""
        assert sorted(SEMCONV_TYPES) == sorted(
            set(tcc_gen_ai_names().values()) | {attrs.ERROR_TYPE}
        )

    def test_every_value_has_its_documented_type(self, records: dict[str, ReadableSpan]) -> None:
        """Every semconv attribute on every span is written as its documented type: string, int,
        string[] or, for ``any``, JSON text of an array or object."""
        written = {
            record: {key: written_as(value) for key, value in semconv_attributes(span).items()}
            for record, span in records.items()
        }
        documented = {
            record: {
                key: ON_SPANS[SEMCONV_TYPES[key]] if key in SEMCONV_TYPES else "<undocumented>"
                for key in semconv_attributes(span)
            }
            for record, span in records.items()
        }
        assert written == documented

    def test_error_type_values(self, records: dict[str, ReadableSpan]) -> None:
        """A raised exception gives its class name, ``error()`` the semconv ``_OTHER`` value, and
        records that succeeded carry no ``error.type``."""
        assert {record: attributes(span).get("error.type") for record, span in records.items()} == {
            "run": None,
            "step-1": None,
            "step-2": "TimeoutError",
            "call-1": None,
            "call-2": ErrorTypeValues.OTHER.value,
        }

    def test_finish_reasons_is_a_string_array(self, records: dict[str, ReadableSpan]) -> None:
        """``gen_ai.response.finish_reasons`` is a one-element string array of the reason."""
        assert attributes(records["step-1"])["gen_ai.response.finish_reasons"] == ("tool_call",)

    def test_cached_tokens_are_part_of_input_tokens(self, records: dict[str, ReadableSpan]) -> None:
        """``gen_ai.usage.cache_read.input_tokens`` is included in ``gen_ai.usage.input_tokens``,
        as the conventions ask (uncached 100 + cached 50)."""
        values = attributes(records["step-1"])
        assert (
            values["gen_ai.usage.input_tokens"],
            values["gen_ai.usage.cache_read.input_tokens"],
            values["gen_ai.usage.output_tokens"],
        ) == (150, 50, 20)


class TestMessageShapes:
    def test_input_messages(self, records: dict[str, ReadableSpan]) -> None:
        """Run and step input messages are one user ``ChatMessage`` with one text part."""
        run = json_value(records["run"], "gen_ai.input.messages")
        step = json_value(records["step-1"], "gen_ai.input.messages")
        for messages in (run, step):
            check_messages(messages, output=False)
        assert (run, step) == (
            [{"role": "user", "parts": [{"type": "text", "content": USER_PROMPT}]}],
            [{"role": "user", "parts": [{"type": "text", "content": STEP_PROMPT}]}],
        )

    def test_output_messages(self, records: dict[str, ReadableSpan]) -> None:
        """Output messages are one assistant ``OutputMessage`` with one text part; the step's
        carries its finish reason, the run's (which has none) leaves it out."""
        run = json_value(records["run"], "gen_ai.output.messages")
        step = json_value(records["step-1"], "gen_ai.output.messages")
        for messages in (run, step):
            check_messages(messages, output=True)
        assert (run, step) == (
            [{"role": "assistant", "parts": [{"type": "text", "content": RUN_RESPONSE}]}],
            [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": STEP_RESPONSE}],
                    "finish_reason": "tool_call",
                }
            ],
        )

    def test_output_finish_reason_agrees_with_finish_reasons(
        self, records: dict[str, ReadableSpan]
    ) -> None:
        """The message's ``finish_reason`` is the one in ``gen_ai.response.finish_reasons``."""
        step = records["step-1"]
        reasons = [
            message["finish_reason"] for message in json_value(step, "gen_ai.output.messages")
        ]
        assert tuple(reasons) == attributes(step)["gen_ai.response.finish_reasons"]

    def test_system_instructions(self, records: dict[str, ReadableSpan]) -> None:
        """System instructions are an array of parts (not messages): one text part."""
        parts = json_value(records["run"], "gen_ai.system_instructions")
        assert isinstance(parts, list)
        for part in parts:
            check_text_part(part)
        assert parts == [{"type": "text", "content": SYSTEM_PROMPT}]

    def test_tool_definitions(self, records: dict[str, ReadableSpan]) -> None:
        """Tool definitions given in the schema's shape (an array of tools, each with ``type``
        and ``name``) arrive as that same JSON array."""
        definitions = json_value(records["step-1"], "gen_ai.tool.definitions")
        assert isinstance(definitions, list)
        assert [(tool["type"], tool["name"]) for tool in definitions] == [
            ("function", "get_weather")
        ]
        assert definitions == TOOL_DEFINITIONS

    def test_tool_call_arguments_and_result(self, records: dict[str, ReadableSpan]) -> None:
        """Dict arguments and results are JSON objects, as the conventions expect."""
        call = records["call-1"]
        assert (
            json_value(call, "gen_ai.tool.call.arguments"),
            json_value(call, "gen_ai.tool.call.result"),
        ) == (TOOL_ARGS, TOOL_RESULT)
