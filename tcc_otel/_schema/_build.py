"""Attribute builders: a record's plain fields in, its span's TCC and GenAI attributes out.

Pure functions. A record hands a ``Snapshot`` to export when it ends; the batcher thread (or,
with the user's provider, the caller's) builds the attributes from it here, the same way in
both modes.
"""

from __future__ import annotations

import json.encoder
from collections.abc import Mapping, Sequence
from typing import Callable, NamedTuple

from opentelemetry.util.types import AttributeValue

from tcc_otel._schema import _cost as cost
from tcc_otel._schema import _keys as keys

RUN: str = keys.SpanKind.RUN.value
STEP: str = keys.SpanKind.STEP.value
TOOL_CALL: str = keys.SpanKind.TOOL_CALL.value

Fields = Mapping[str, AttributeValue]
"""A record's fields: its TCC attributes, as the setters stored them."""

_quote: Callable[[str], str] = json.encoder.encode_basestring  # json.dumps's own, in C


class Snapshot(NamedTuple):
    """What an ended record hands to export: frozen plain data, never the record."""

    kind: str
    """``run``, ``step`` or ``tool_call``."""
    fields: Fields
    """The record's fields; not written again once it ended."""
    capture_content: bool
    """Whether content (prompts, responses, arguments, ...) is kept."""
    steps: Sequence[Fields] = ()
    """A run's steps that ended while it was open: their fields, for the run's totals."""
    content_once: bool = False
    """Whether content goes under the GenAI names only, without the ``tcc.*`` copies."""


def attributes(
    snapshot: Snapshot, start: Mapping[str, AttributeValue] | None = None
) -> dict[str, AttributeValue]:
    """The span's attributes: ``start`` (those it already has), then the record's fields and
    the GenAI ones derived from them; without content when capture is off, and without the
    ``tcc.*`` copies of content with ``content_once``."""
    out = dict(snapshot.fields) if start is None else {**start, **snapshot.fields}
    kind = snapshot.kind
    content = snapshot.capture_content
    if kind == STEP:
        _step(out, snapshot.fields, content)
    elif kind == RUN:
        _run(out, snapshot.fields, snapshot.steps, content)
    else:
        _tool_call(out, snapshot.fields, content)
    if not content:
        _remove(out, keys.CONTENT_KEYS)
    elif snapshot.content_once:
        _remove(out, keys.TCC_CONTENT_COPIES)
    return out


def _remove(out: dict[str, AttributeValue], names: frozenset[str]) -> None:
    for key in names.intersection(out):
        del out[key]


def span_name(kind: str, fields: Fields) -> str:
    """``invoke_agent {agent}``, ``chat {model}`` (used, else requested) or
    ``execute_tool {name}``; the bare operation when that field is not set."""
    if kind == STEP:
        detail = fields.get(keys.STEP_MODEL_USED) or fields.get(keys.STEP_MODEL_REQUESTED)
        operation = keys.OP_CHAT
    elif kind == RUN:
        detail, operation = fields.get(keys.TCC_AGENT), keys.OP_INVOKE_AGENT
    else:
        detail, operation = fields.get(keys.TOOL_CALL_NAME), keys.OP_EXECUTE_TOOL
    return f"{operation} {detail}" if detail else operation


# --- GenAI messages (semantic conventions), as JSON ----------------------------------------


def messages_json(role: str, content: str, finish_reason: str | None = None) -> str:
    """One chat message as the JSON array the conventions specify; the same text as
    ``json.dumps([{"role": ..., "parts": [...], "finish_reason": ...}], ensure_ascii=False)``,
    written from a template."""
    tail = "}]" if finish_reason is None else f', "finish_reason": {_quote(finish_reason)}}}]'
    return f'[{{"role": {_quote(role)}, "parts": {parts_json(content)}{tail}'


def parts_json(content: str) -> str:
    """Message parts holding one text, as JSON (``gen_ai.system_instructions``)."""
    return f'[{{"type": "text", "content": {_quote(content)}}}]'


# --- tokens and cost ----------------------------------------------------------------------


def _count(fields: Fields, key: str) -> int | None:
    value = fields.get(key)
    return value if type(value) is int else None


def input_tokens(fields: Fields) -> int | None:
    """A step's input tokens: uncached + cached; ``None`` when neither is known."""
    uncached = _count(fields, keys.STEP_PROMPT_UNCACHED_TOKENS)
    cached = _count(fields, keys.STEP_PROMPT_CACHED_TOKENS)
    if uncached is None and cached is None:
        return None
    return (uncached or 0) + (cached or 0)


def estimated_cost(fields: Fields) -> float | None:
    """A step's cost estimated from its model and tokens (``tcc-otel[cost]``); ``None`` when
    the extra is missing, the model unknown, or no tokens were given."""
    if not cost.available():
        return None
    model = fields.get(keys.STEP_MODEL_USED) or fields.get(keys.STEP_MODEL_REQUESTED)
    counts = [
        _count(fields, key)
        for key in (
            keys.STEP_PROMPT_UNCACHED_TOKENS,
            keys.STEP_PROMPT_CACHED_TOKENS,
            keys.STEP_COMPLETION_TOKENS,
        )
    ]
    if not model or all(count is None for count in counts):
        return None
    uncached, cached, completion = (count or 0 for count in counts)
    return cost.estimate(str(model), uncached, cached, completion)


def step_cost(fields: Fields) -> float | None:
    """A step's cost: the real one when given, else the estimate."""
    real = fields.get(keys.STEP_REAL_TOTAL_COST)
    if isinstance(real, (int, float)) and not isinstance(real, bool):
        return float(real)
    return estimated_cost(fields)


# --- per record ---------------------------------------------------------------------------


def _run(
    out: dict[str, AttributeValue], fields: Fields, steps: Sequence[Fields], content: bool
) -> None:
    agent = fields.get(keys.TCC_AGENT)
    if agent is not None:
        out[keys.GEN_AI_AGENT_NAME] = str(agent)
    inputs = [n for n in map(input_tokens, steps) if n is not None]
    outputs = [n for n in (_count(s, keys.STEP_COMPLETION_TOKENS) for s in steps) if n is not None]
    if inputs:
        out[keys.GEN_AI_USAGE_INPUT_TOKENS] = sum(inputs)
    if outputs:
        out[keys.GEN_AI_USAGE_OUTPUT_TOKENS] = sum(outputs)
    if cost.available():
        if inputs or outputs:
            out[keys.RUN_TOTAL_TOKENS] = sum(inputs) + sum(outputs)
        costs = [c for c in map(step_cost, steps) if c is not None]
        if costs:
            out[keys.RUN_TOTAL_COST] = sum(costs)
    if content:
        system = fields.get(keys.RUN_SYSTEM_PROMPT)
        if system is not None:
            out[keys.GEN_AI_SYSTEM_INSTRUCTIONS] = parts_json(str(system))
        _messages(out, fields.get(keys.RUN_USER_PROMPT), fields.get(keys.RUN_RESPONSE), None)


def _messages(
    out: dict[str, AttributeValue],
    prompt: AttributeValue | None,
    response: AttributeValue | None,
    finish: str | None,
) -> None:
    """The GenAI message copies of a prompt (a user message) and a response (the assistant's)."""
    if prompt is not None:
        out[keys.GEN_AI_INPUT_MESSAGES] = messages_json("user", str(prompt))
    if response is not None:
        out[keys.GEN_AI_OUTPUT_MESSAGES] = messages_json("assistant", str(response), finish)


_STEP_COPIES = (
    (keys.STEP_MODEL_REQUESTED, keys.GEN_AI_REQUEST_MODEL),
    (keys.STEP_MODEL_USED, keys.GEN_AI_RESPONSE_MODEL),
    (keys.STEP_PROMPT_CACHED_TOKENS, keys.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
    (keys.STEP_COMPLETION_TOKENS, keys.GEN_AI_USAGE_OUTPUT_TOKENS),
)
"""Step fields whose GenAI attribute is the same value under another key."""
_STEP_CONTENT_COPIES = ((keys.STEP_TOOL_DEFINITIONS, keys.GEN_AI_TOOL_DEFINITIONS),)
"""The same for content, written only when content is copied."""


def _step(out: dict[str, AttributeValue], fields: Fields, content: bool) -> None:
    _copy(out, fields, _STEP_COPIES)
    tokens = input_tokens(fields)
    if tokens is not None:
        out[keys.GEN_AI_USAGE_INPUT_TOKENS] = tokens
    reason = fields.get(keys.STEP_FINISH_REASON)
    if reason is not None:
        out[keys.GEN_AI_RESPONSE_FINISH_REASONS] = (str(reason),)  # a tuple, as the SDK keeps it
    if keys.STEP_REAL_TOTAL_COST not in fields:
        estimate = estimated_cost(fields)
        if estimate is not None:
            out[keys.STEP_ESTIMATED_COST] = estimate
    if content:
        _copy(out, fields, _STEP_CONTENT_COPIES)
        finish = None if reason is None else str(reason)
        # Messages a step read from another instrumentation's span (``_genai``) are richer
        # than one text each: they stay as they are.
        prompt = None if keys.GEN_AI_INPUT_MESSAGES in fields else fields.get(keys.STEP_PROMPT)
        response = None if keys.GEN_AI_OUTPUT_MESSAGES in fields else fields.get(keys.STEP_RESPONSE)
        _messages(out, prompt, response, finish)


_TOOL_CONTENT_COPIES = (
    (keys.TOOL_CALL_ARGS, keys.GEN_AI_TOOL_CALL_ARGUMENTS),
    (keys.TOOL_CALL_RESULT, keys.GEN_AI_TOOL_CALL_RESULT),
)


def _tool_call(out: dict[str, AttributeValue], fields: Fields, content: bool) -> None:
    name = fields.get(keys.TOOL_CALL_NAME)
    if name is not None:
        out[keys.GEN_AI_TOOL_NAME] = name
    if content:
        _copy(out, fields, _TOOL_CONTENT_COPIES)


def _copy(
    out: dict[str, AttributeValue], fields: Fields, copies: Sequence[tuple[str, str]]
) -> None:
    """Each field that is set, again under its GenAI key."""
    for field, key in copies:
        value = fields.get(field)
        if value is not None:
            out[key] = value
