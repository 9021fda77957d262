"""The shapes the GenAI readers share: a content ``Event``, the ``Call`` a span describes, and
helpers that write messages in the GenAI conventions' shape. Pure; a leaf."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

Message = dict[str, Any]
"""A chat message in the GenAI conventions' shape: ``role``, ``parts``, maybe ``finish_reason``."""


class Event(NamedTuple):
    """A content event an instrumentation emitted for its span: a log record or a span event."""

    name: str
    body: Any
    attributes: Mapping[str, Any]


class Call(NamedTuple):
    """What an instrumented span describes, whatever conventions it was written in."""

    kind: str
    """``step`` or ``tool_call``."""
    request_model: str | None = None
    response_model: str | None = None
    input_tokens: int | None = None
    """All input tokens, cached ones included."""
    cached_tokens: int | None = None
    output_tokens: int | None = None
    finish_reasons: tuple[str, ...] = ()
    system: list[dict[str, Any]] | None = None
    """System instructions, as message parts."""
    inputs: list[Message] | None = None
    outputs: list[Message] | None = None
    tool_definitions: str | None = None
    """As JSON."""
    tool_name: str | None = None
    tool_call_id: str | None = None
    tool_args: str | None = None
    tool_result: str | None = None


CONTENT_PREFIXES = (
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.input.",
    "gen_ai.output.",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "llm.input_messages",
    "llm.output_messages",
    "llm.prompts",
    "llm.prompt_template",
    "llm.tools",
    "llm.request.functions",
    "input.value",
    "output.value",
    "tool.parameters",
    "traceloop.entity.input",
    "traceloop.entity.output",
)
"""Attribute key prefixes under which the instrumentations we read put content."""


def is_content_key(key: str) -> bool:
    """Whether another instrumentation's attribute ``key`` carries content (kept out of TCC's
    copy when ``TCC_CAPTURE_CONTENT=false``)."""
    return key.startswith(CONTENT_PREFIXES)


READ_PREFIXES = ("gen_ai.", "llm.", "openinference.", "input.", "output.", "tool.", "traceloop.")
"""Attribute key prefixes of everything the readers read: what makes a span an LLM or tool call."""


def is_read_key(key: str) -> bool:
    """Whether ``key`` is one the readers read (a call taken by a record of ours leaves them out
    of TCC's copy: its record carries them)."""
    return key.startswith(READ_PREFIXES)


def text_parts(content: Any) -> list[dict[str, Any]]:
    """Message parts from a plain content value: a string, a list of OpenAI-style content
    items (``{"type": "text", "text": ...}``), or parts already in the conventions' shape."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    if isinstance(content, list):
        parts: list[dict[str, Any]] = []
        for item in content:
            if isinstance(item, dict) and "parts" not in item:
                if item.get("type") == "text" and "content" in item:
                    parts.append(item)
                elif "text" in item:
                    parts.append({"type": "text", "content": str(item["text"])})
                else:
                    parts.append(dict(item))
            elif isinstance(item, str):
                parts.append({"type": "text", "content": item})
        return parts
    return [{"type": "text", "content": dumps(content)}]


def message(role: str, parts: list[dict[str, Any]], finish_reason: str | None = None) -> Message:
    """A message in the conventions' shape."""
    out: Message = {"role": role, "parts": parts}
    if finish_reason is not None:
        out["finish_reason"] = finish_reason
    return out


def tool_call_part(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    """A ``tool_call`` message part; ``arguments`` parsed from JSON where it is JSON."""
    part: dict[str, Any] = {"type": "tool_call", "name": "" if name is None else str(name)}
    if call_id is not None:
        part["id"] = str(call_id)
    if arguments is not None:
        part["arguments"] = loads(arguments) if isinstance(arguments, str) else arguments
    return part


def loads(text: str) -> Any:
    """``text`` parsed as JSON, or ``text`` itself when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def as_count(value: Any) -> int | None:
    """A token count as an ``int``; ``None`` unless it is a non-negative whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def as_str(value: Any) -> str | None:
    """A non-empty string value, else ``None``."""
    return value if isinstance(value, str) and value else None


def dumps(value: Any) -> str:
    """``value`` as compact-enough JSON, non-ASCII kept."""
    return json.dumps(value, ensure_ascii=False, default=str)
