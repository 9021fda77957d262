"""Spans of other GenAI instrumentations, read as steps and tool calls.

Pure functions. ``read`` takes what another instrumentation wrote on a span inside a run (its
attributes, and the content events it emitted as log records or span events) and returns the
``Call`` it describes: an LLM request (a step) or a tool invocation (a tool call), or ``None``
for any other span. ``fields`` turns a ``Call`` into the same fields a manual record has, so the
builders of ``_schema._build`` write its attributes the way they write a manual step's.

One reader per family of conventions: ``_from_semconv`` (OpenTelemetry GenAI conventions,
including openai-v2 and OpenLLMetry, old and new content formats), ``_from_openinference``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.util.types import AttributeValue

from tcc_otel._schema import _from_openinference, _from_semconv
from tcc_otel._schema import _keys as keys
from tcc_otel._schema._build import TOOL_CALL
from tcc_otel._schema._calls import Call, Event, Message, dumps


def read(
    attributes: Mapping[str, Any], events: Sequence[Event] = (), *, content: bool = True
) -> Call | None:
    """The step or tool call a span with ``attributes`` and content ``events`` describes;
    ``None`` when it is neither (an HTTP call, an agent or chain span, an embedding). Without
    ``content``: its kind, models, tokens and finish reasons only, which is cheap (the caller's
    thread reads that much; the export thread reads the rest)."""
    if _from_openinference.KIND in attributes:
        return _from_openinference.read(attributes, content=content)
    return _from_semconv.read(attributes, events, content=content)


def fields(call: Call) -> dict[str, AttributeValue]:
    """A ``Call`` as a record's fields (``tcc.*`` keys, plus the GenAI messages when the call
    has more than one text): what ``_build.attributes`` takes."""
    out: dict[str, AttributeValue] = {}
    if call.kind == TOOL_CALL:
        _put(out, keys.TOOL_CALL_NAME, call.tool_name)
        _put(out, keys.TCC_TOOL_CALL_ID, call.tool_call_id)
        _put(out, keys.GEN_AI_TOOL_CALL_ID, call.tool_call_id)
        _put(out, keys.TOOL_CALL_ARGS, call.tool_args)
        _put(out, keys.TOOL_CALL_RESULT, call.tool_result)
        return out
    _put(out, keys.STEP_MODEL_REQUESTED, call.request_model)
    _put(out, keys.STEP_MODEL_USED, call.response_model)
    if call.input_tokens is not None:
        cached = call.cached_tokens or 0
        out[keys.STEP_PROMPT_UNCACHED_TOKENS] = max(call.input_tokens - cached, 0)
    _put(out, keys.STEP_PROMPT_CACHED_TOKENS, call.cached_tokens)
    _put(out, keys.STEP_COMPLETION_TOKENS, call.output_tokens)
    if call.finish_reasons:
        out[keys.STEP_FINISH_REASON] = call.finish_reasons[0]
    _put(out, keys.STEP_TOOL_DEFINITIONS, call.tool_definitions)
    if call.system:
        out[keys.GEN_AI_SYSTEM_INSTRUCTIONS] = dumps(call.system)
    if call.inputs and _said(call.inputs):
        _put(out, keys.STEP_PROMPT, as_text(call.inputs))
        out[keys.GEN_AI_INPUT_MESSAGES] = dumps(call.inputs)
    if call.outputs and _said(call.outputs):
        _put(out, keys.STEP_RESPONSE, as_text(call.outputs))
        out[keys.GEN_AI_OUTPUT_MESSAGES] = dumps(call.outputs)
    return out


_MESSAGES_OF = {
    keys.GEN_AI_INPUT_MESSAGES: keys.STEP_PROMPT,
    keys.GEN_AI_OUTPUT_MESSAGES: keys.STEP_RESPONSE,
}
"""A call's messages, and the field whose own value they would contradict."""


def gaps(own: Mapping[str, Any], found: Mapping[str, AttributeValue]) -> dict[str, AttributeValue]:
    """What a record with fields ``own`` takes of the ``found`` fields of a call made inside
    it: only what it lacks; a call's messages only where the record has no text of its own
    for them (its own prompt and response win)."""
    return {
        key: value
        for key, value in found.items()
        if key not in own and _MESSAGES_OF.get(key) not in own
    }


def as_text(messages: Sequence[Message]) -> str | None:
    """Messages as one text for ``tcc.step.prompt``/``response``: the text itself when they
    are a single message of text parts, else the messages as JSON."""
    if len(messages) == 1:
        parts = messages[0].get("parts") or []
        texts = [p.get("content") for p in parts if isinstance(p, dict)]
        if (
            parts
            and all(p.get("type") == "text" for p in parts)
            and all(isinstance(t, str) for t in texts)
        ):
            return "".join(t for t in texts if isinstance(t, str))
    return dumps(messages) if messages else None


def _said(messages: list[Message]) -> bool:
    """Whether messages carry content: instrumentations that keep content out still emit one
    message per turn, with no parts, or tool calls without their arguments."""
    return any(_has_content(part) for m in messages for part in m.get("parts") or ())


def _has_content(part: Any) -> bool:
    if not isinstance(part, dict):
        return False
    return any(part.get(key) not in (None, "") for key in ("content", "arguments", "response"))


def _put(out: dict[str, AttributeValue], key: str, value: AttributeValue | None) -> None:
    if value is not None:
        out[key] = value
