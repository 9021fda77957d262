"""Reads spans written in Arize's OpenInference conventions (``openinference-instrumentation-*``).

``openinference.span.kind`` says what a span is: ``LLM`` spans are steps, ``TOOL`` spans tool
calls; ``AGENT``, ``CHAIN`` and the other kinds are plain spans of the run. Messages are
flattened into ``llm.input_messages.N.message.*`` attributes; ``input.value`` and
``output.value`` hold the raw request and response where there are no messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tcc_otel._schema._build import STEP, TOOL_CALL
from tcc_otel._schema._calls import (
    Call,
    Message,
    as_count,
    as_str,
    dumps,
    loads,
    message,
    text_parts,
    tool_call_part,
)

KIND = "openinference.span.kind"
"""The attribute that marks an OpenInference span."""


def read(attributes: Mapping[str, Any], *, content: bool = True) -> Call | None:
    """The step or tool call an OpenInference span describes; ``None`` for other kinds.
    Without ``content``, only what is not content (kind, models, tokens): cheaper."""
    kind = str(attributes.get(KIND, "")).upper()
    if kind == "LLM":
        return _llm(attributes, content)
    if kind == "TOOL":
        return Call(
            TOOL_CALL,
            tool_name=as_str(attributes.get("tool.name")),
            tool_call_id=as_str(attributes.get("tool_call.id") or attributes.get("tool.id")),
            tool_args=(
                as_str(attributes.get("input.value")) or as_str(attributes.get("tool.parameters"))
            )
            if content
            else None,
            tool_result=as_str(attributes.get("output.value")) if content else None,
        )
    return None


def _llm(attributes: Mapping[str, Any], content: bool) -> Call:
    nested = _nest(attributes)
    llm = nested.get("llm", {})
    params = loads(llm["invocation_parameters"]) if "invocation_parameters" in llm else {}
    params = params if isinstance(params, dict) else {}
    counts = llm.get("token_count", {})
    details = counts.get("prompt_details", {}) if isinstance(counts, dict) else {}
    inputs = _messages(llm.get("input_messages")) if content else []
    outputs = _messages(llm.get("output_messages")) if content else []
    output_value = attributes.get("output.value") if content else None
    if content and not inputs and "input.value" in attributes:
        inputs = [message("user", text_parts(attributes["input.value"]))]
    if not outputs and isinstance(output_value, str) and not _is_json(attributes, "output"):
        outputs = [message("assistant", text_parts(output_value))]
    finish = as_str(llm.get("finish_reason"))
    reasons = (finish,) if finish else _finish_reasons(output_value)
    if outputs and reasons and len(outputs) == 1 and "finish_reason" not in outputs[0]:
        outputs[0]["finish_reason"] = reasons[0]
    system = [p for m in inputs if m["role"] == "system" for p in m["parts"]]
    tools = _tools(llm.get("tools")) if content else None
    metadata = loads(attributes["metadata"]) if "metadata" in attributes else {}
    requested = params.get("model") or params.get("model_name")
    if not requested and isinstance(metadata, dict):
        requested = metadata.get("ls_model_name")  # LangChain's name for the model asked for
    served = _served_model(output_value)
    return Call(
        STEP,
        request_model=as_str(requested) or as_str(attributes.get("gen_ai.request.model")),
        response_model=as_str(served) or as_str(llm.get("model_name")),
        input_tokens=as_count(_get(counts, "prompt")),
        cached_tokens=as_count(_get(details, "cache_read")),
        output_tokens=as_count(_get(counts, "completion")),
        finish_reasons=reasons,
        system=system or None,
        inputs=[m for m in inputs if m["role"] != "system"] or None,
        outputs=outputs or None,
        tool_definitions=tools,
    )


def _get(found: Any, key: str) -> Any:
    return found.get(key) if isinstance(found, dict) else None


def _nest(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys as nested dicts; numeric segments stay string keys (``{"0": ...}``)."""
    root: dict[str, Any] = {}
    for key, value in attributes.items():
        if not key.startswith("llm."):
            continue
        node = root
        *path, last = key.split(".")
        for segment in path:
            child = node.get(segment)
            if not isinstance(child, dict):
                child = node[segment] = {}
            node = child
        node[last] = value
    return root


def _ordered(node: Any) -> list[Any]:
    """The children of a node whose keys are indexes, in index order."""
    if not isinstance(node, dict):
        return []
    return [node[k] for k in sorted((k for k in node if k.isdigit()), key=int)]


def _messages(node: Any) -> list[Message]:
    out: list[Message] = []
    for entry in _ordered(node):
        found = entry.get("message", {}) if isinstance(entry, dict) else {}
        role = str(found.get("role") or "user")
        if "content" in found:
            parts = text_parts(found["content"])
        else:
            parts = text_parts(
                [
                    {"type": "text", "text": c.get("message_content", {}).get("text", "")}
                    for c in _ordered(found.get("contents"))
                    if isinstance(c, dict)
                ]
            )
        for call in _ordered(found.get("tool_calls")):
            inner = call.get("tool_call", {}) if isinstance(call, dict) else {}
            function = inner.get("function", {})
            parts.append(
                tool_call_part(inner.get("id"), function.get("name"), function.get("arguments"))
            )
        if role == "tool" and found.get("tool_call_id") is not None:
            parts = [
                {
                    "type": "tool_call_response",
                    "id": str(found["tool_call_id"]),
                    "response": found.get("content"),
                }
            ]
        out.append(message(role, parts))
    return out


def _tools(node: Any) -> str | None:
    schemas = []
    for entry in _ordered(node):
        schema = entry.get("tool", {}).get("json_schema") if isinstance(entry, dict) else None
        if schema is not None:
            schemas.append(loads(schema) if isinstance(schema, str) else schema)
    return dumps(schemas) if schemas else None


def _is_json(attributes: Mapping[str, Any], which: str) -> bool:
    return attributes.get(f"{which}.mime_type") == "application/json"


def _served_model(output_value: Any) -> Any:
    """The model that answered, from a raw response in ``output.value``: OpenAI's ``model``,
    or LangChain's ``response_metadata.model_name``; ``None`` when it is not there."""
    if not isinstance(output_value, str) or not output_value.startswith("{"):
        return None
    response = loads(output_value)
    if not isinstance(response, dict):
        return None
    if "model" in response:
        return response["model"]
    generations = response.get("generations")
    try:
        kwargs = generations[0][0]["message"]["kwargs"]  # type: ignore[index]
        return kwargs["response_metadata"]["model_name"]
    except (LookupError, TypeError):
        return None


def _finish_reasons(output_value: Any) -> tuple[str, ...]:
    """Finish reasons from a raw OpenAI-style response in ``output.value``, when it is one."""
    if not isinstance(output_value, str) or not output_value.startswith("{"):
        return ()
    response = loads(output_value)
    choices = response.get("choices") if isinstance(response, dict) else None
    return tuple(
        str(c["finish_reason"])
        for c in choices or ()
        if isinstance(c, dict) and isinstance(c.get("finish_reason"), str)
    )
