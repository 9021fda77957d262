"""Reads spans written in the OpenTelemetry GenAI conventions: openai-v2 and other
``opentelemetry-instrumentation-*`` packages, and Traceloop's OpenLLMetry.

Content is found wherever these put it, newest format first: the ``gen_ai.input.messages`` /
``gen_ai.output.messages`` / ``gen_ai.system_instructions`` attributes (or the same keys on a
``gen_ai.client.inference.operation.details`` event), OpenLLMetry's indexed
``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` attributes, and the older per-message events
(``gen_ai.user.message``, ``gen_ai.choice``, ...), emitted as log records or span events.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tcc_otel._schema import _keys as keys
from tcc_otel._schema._build import STEP, TOOL_CALL
from tcc_otel._schema._calls import (
    Call,
    Event,
    Message,
    as_count,
    as_str,
    dumps,
    loads,
    message,
    text_parts,
    tool_call_part,
)

_STEP_OPERATIONS = frozenset({"chat", "text_completion", "completion", "generate_content"})
_DETAILS_EVENT = "gen_ai.client.inference.operation.details"
_ROLE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_CHOICE_EVENT = "gen_ai.choice"
CONTENT_EVENTS = frozenset(
    {
        _DETAILS_EVENT,
        *_ROLE_EVENTS,
        _CHOICE_EVENT,
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
    }
)
"""Events that carry a call's messages (log records or span events); others, such as the
per-chunk events of a stream (time to first token), are not content."""


def read(
    attributes: Mapping[str, Any], events: Sequence[Event] = (), *, content: bool = True
) -> Call | None:
    """The step or tool call the span describes; ``None`` for anything else. Without
    ``content``, only what is not content (kind, models, tokens, finish reasons): cheaper."""
    operation = attributes.get(keys.GEN_AI_OPERATION_NAME) or attributes.get("llm.request.type")
    if operation in _STEP_OPERATIONS:
        return _step(attributes, events, content)
    if operation == keys.OP_EXECUTE_TOOL:
        return Call(
            TOOL_CALL,
            tool_name=as_str(attributes.get(keys.GEN_AI_TOOL_NAME)),
            tool_call_id=as_str(attributes.get(keys.GEN_AI_TOOL_CALL_ID)),
            tool_args=_text(attributes.get(keys.GEN_AI_TOOL_CALL_ARGUMENTS)) if content else None,
            tool_result=_text(attributes.get(keys.GEN_AI_TOOL_CALL_RESULT)) if content else None,
        )
    if attributes.get("traceloop.span.kind") == "tool":
        return Call(
            TOOL_CALL,
            tool_name=as_str(attributes.get("traceloop.entity.name")),
            tool_args=_text(attributes.get("traceloop.entity.input")) if content else None,
            tool_result=_text(attributes.get("traceloop.entity.output")) if content else None,
        )
    return None


def _step(attributes: Mapping[str, Any], events: Sequence[Event], content: bool) -> Call:
    system, inputs, outputs = _content(attributes, events) if content else (None, None, None)
    finish = attributes.get(keys.GEN_AI_RESPONSE_FINISH_REASONS)
    reasons = tuple(str(r) for r in finish) if isinstance(finish, (list, tuple)) else ()
    if not reasons and outputs:
        reasons = tuple(m["finish_reason"] for m in outputs if m.get("finish_reason"))
    return Call(
        STEP,
        request_model=as_str(attributes.get(keys.GEN_AI_REQUEST_MODEL)),
        response_model=as_str(attributes.get(keys.GEN_AI_RESPONSE_MODEL)),
        input_tokens=_first_count(
            attributes, keys.GEN_AI_USAGE_INPUT_TOKENS, "gen_ai.usage.prompt_tokens"
        ),
        cached_tokens=_first_count(
            attributes,
            keys.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
            "gen_ai.usage.cache_read_input_tokens",
            "gen_ai.usage.cached_tokens",
        ),
        output_tokens=_first_count(
            attributes, keys.GEN_AI_USAGE_OUTPUT_TOKENS, "gen_ai.usage.completion_tokens"
        ),
        finish_reasons=reasons,
        system=system,
        inputs=inputs,
        outputs=outputs,
        tool_definitions=_tool_definitions(attributes) if content else None,
    )


def _first_count(attributes: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        count = as_count(attributes.get(name))
        if count is not None:
            return count
    return None


# --- content ------------------------------------------------------------------------------

Parts = list[dict[str, Any]]


def _content(
    attributes: Mapping[str, Any], events: Sequence[Event]
) -> tuple[Parts | None, list[Message] | None, list[Message] | None]:
    """System instructions, input and output messages, from the newest format present."""
    found: dict[str, Any] = {
        key: attributes[key]
        for key in (
            keys.GEN_AI_SYSTEM_INSTRUCTIONS,
            keys.GEN_AI_INPUT_MESSAGES,
            keys.GEN_AI_OUTPUT_MESSAGES,
        )
        if key in attributes
    }
    for event in events:
        if event.name == _DETAILS_EVENT:
            for key, value in _event_fields(event).items():
                found.setdefault(key, value)
    system = _parsed(found.get(keys.GEN_AI_SYSTEM_INSTRUCTIONS))
    inputs = _parsed(found.get(keys.GEN_AI_INPUT_MESSAGES))
    outputs = _parsed(found.get(keys.GEN_AI_OUTPUT_MESSAGES))
    if inputs is None:
        inputs = _indexed_messages(attributes, "gen_ai.prompt.") or None
    if outputs is None:
        outputs = _indexed_messages(attributes, "gen_ai.completion.") or None
    if inputs is None and outputs is None:
        inputs, outputs = _message_events(events)
    if inputs and system is None:
        system, inputs = _split_system(inputs)
    return system, inputs, outputs


def _event_fields(event: Event) -> dict[str, Any]:
    """An event's fields: its body when that is a mapping, else its attributes."""
    body = event.body
    if isinstance(body, Mapping):
        return {**event.attributes, **body}
    return dict(event.attributes)


def _parsed(value: Any) -> list[Any] | None:
    """A JSON list attribute (or an already structured one) as a list."""
    if isinstance(value, str):
        value = loads(value)
    if isinstance(value, (list, tuple)):
        return [dict(v) if isinstance(v, Mapping) else v for v in value]
    return None


def _split_system(messages: list[Message]) -> tuple[Parts | None, list[Message]]:
    """System messages taken out of the inputs, as the conventions' system instructions."""
    system: Parts = []
    rest: list[Message] = []
    for item in messages:
        if isinstance(item, dict) and item.get("role") == "system":
            system.extend(item.get("parts") or [])
        else:
            rest.append(item)
    return (system or None), rest


def _indexed(attributes: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``prefix.N.rest`` keys grouped by N, in order: one dict of ``rest -> value`` each."""
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if index.isdigit() and rest:
            groups.setdefault(int(index), {})[rest] = value
    return [groups[i] for i in sorted(groups)]


def _indexed_messages(attributes: Mapping[str, Any], prefix: str) -> list[Message]:
    """OpenLLMetry's ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` as messages."""
    out: list[Message] = []
    for entry in _indexed(attributes, prefix):
        role = str(entry.get("role") or ("assistant" if "completion" in prefix else "user"))
        parts = text_parts(_maybe_json_list(entry.get("content")))
        calls = _indexed(entry, "tool_calls.")
        for call in calls:
            parts.append(tool_call_part(call.get("id"), call.get("name"), call.get("arguments")))
        if role == "tool" and entry.get("tool_call_id") is not None:
            parts = [_tool_response(entry.get("tool_call_id"), entry.get("content"))]
        finish = as_str(entry.get("finish_reason"))
        out.append(message(role, parts, finish))
    return out


def _maybe_json_list(content: Any) -> Any:
    """OpenLLMetry writes list content (text items) as a JSON string."""
    if isinstance(content, str) and content.startswith("[{"):
        parsed = loads(content)
        if isinstance(parsed, list):
            return parsed
    return content


def _tool_response(call_id: Any, content: Any) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "tool_call_response", "response": content}
    if call_id is not None:
        part["id"] = str(call_id)
    return part


def _message_events(events: Sequence[Event]) -> tuple[list[Message] | None, list[Message] | None]:
    """The older per-message events: one per input message, one ``gen_ai.choice`` per output."""
    inputs: list[Message] = []
    outputs: list[Message] = []
    for event in events:
        role = _ROLE_EVENTS.get(event.name)
        if role is not None:
            inputs.append(_event_message(role, _event_fields(event)))
        elif event.name == _CHOICE_EVENT:
            fields = _event_fields(event)
            body = fields.get("message")
            inner = dict(body) if isinstance(body, Mapping) else {}
            if "tool_calls" not in inner and "tool_calls" in fields:  # OpenLLMetry puts them here
                inner["tool_calls"] = fields["tool_calls"]
            reason = as_str(fields.get("finish_reason"))
            outputs.append(_event_message(str(inner.get("role") or "assistant"), inner, reason))
    return inputs or None, outputs or None


def _event_message(role: str, fields: Mapping[str, Any], finish: str | None = None) -> Message:
    content = fields.get("content")
    if role == "tool":
        return message(role, [_tool_response(fields.get("id"), content)])
    parts = text_parts(content)
    for call in _tool_calls(fields.get("tool_calls")):
        parts.append(call)
    return message(role, parts, finish)


def _tool_calls(value: Any) -> Iterator[dict[str, Any]]:
    """OpenAI-style ``tool_calls`` (``{"id", "function": {"name", "arguments"}}``) as parts."""
    for call in value if isinstance(value, (list, tuple)) else ():
        if isinstance(call, Mapping):
            function = call.get("function")
            fn = function if isinstance(function, Mapping) else {}
            yield tool_call_part(call.get("id"), fn.get("name"), fn.get("arguments"))


def _tool_definitions(attributes: Mapping[str, Any]) -> str | None:
    """The tools offered: ``gen_ai.tool.definitions``, or OpenLLMetry's indexed
    ``llm.request.functions.N.*``; as JSON."""
    value = attributes.get(keys.GEN_AI_TOOL_DEFINITIONS)
    if value is not None:
        return _text(value)
    functions = _indexed(attributes, "llm.request.functions.")
    if not functions:
        return None
    tools = []
    for function in functions:
        tool: dict[str, Any] = {"type": "function", "name": function.get("name")}
        if function.get("description") is not None:
            tool["description"] = function["description"]
        parameters = function.get("parameters")
        if parameters is not None:
            tool["parameters"] = loads(parameters) if isinstance(parameters, str) else parameters
        tools.append(tool)
    return dumps(tools)


def _text(value: Any) -> str | None:
    """A value as text: strings as they are, anything else as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return dumps(list(value) if isinstance(value, tuple) else value)
