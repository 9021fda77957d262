"""ToolCall: one tool invocation, an INTERNAL child span of its run (or of the step that asked)."""

from __future__ import annotations

from typing import Any, ClassVar

from opentelemetry.trace import Span, SpanKind

from tcc_otel._records._record import Record
from tcc_otel._records._road import Road, open_span
from tcc_otel._records._span import id_or_new
from tcc_otel._schema import _keys as attrs
from tcc_otel._schema._build import TOOL_CALL


class ToolCall(Record):
    """One tool invocation. Create with ``run.tool_call()``, ``step.tool_call()`` or
    ``tcc.tool_call(run_id=...)``."""

    __slots__ = ("_tool_call_id",)

    _KIND: ClassVar[str] = TOOL_CALL
    _REQUIRED: ClassVar[dict[str, str]] = {attrs.TOOL_CALL_NAME: "tool_call.name(...)"}
    _CONTENT: ClassVar[tuple[str, ...]] = (attrs.TOOL_CALL_ARGS, attrs.TOOL_CALL_RESULT)

    def __init__(
        self,
        road: Road,
        run_id: str,
        parent: Span | None,
        tool_name: Any = None,
        tool_call_id: str | None = None,
        *,
        local: bool = True,
    ) -> None:
        """Start a tool call of ``run_id`` under ``parent`` (``None``: the active span)."""
        cid = id_or_new(tool_call_id)
        span = open_span(
            road,
            attrs.OP_EXECUTE_TOOL,
            parent,
            SpanKind.INTERNAL,
            {
                attrs.TCC_TYPE: TOOL_CALL,
                attrs.TCC_RUN_ID: run_id,
                attrs.TCC_TOOL_CALL_ID: cid,
                attrs.GEN_AI_TOOL_CALL_ID: cid,
                attrs.GEN_AI_OPERATION_NAME: attrs.OP_EXECUTE_TOOL,
            },
            run_id,
            local=local,
        )
        super().__init__(road, span, run_id)
        self._tool_call_id = cid
        if tool_name is not None:
            self.name(tool_name)

    @property
    def tool_call_id(self) -> str:
        """This tool call's id (a UUID4 unless one was given)."""
        return self._tool_call_id

    def name(self, name: Any) -> ToolCall:
        """Record the tool's name; required before ``end()``."""
        return self._set("name", attrs.TOOL_CALL_NAME, self._text(name, "ToolCall.name()"))

    def args(self, args: Any) -> ToolCall:
        """Record the arguments: a string as is, any other JSON-serialisable value as JSON."""
        value = self._content(args, "ToolCall.args()", as_json=True)
        return self._set("args", attrs.TOOL_CALL_ARGS, value)

    def result(self, result: Any) -> ToolCall:
        """Record what the tool returned: a string as is, any other value as JSON."""
        value = self._content(result, "ToolCall.result()", as_json=True)
        return self._set("result", attrs.TOOL_CALL_RESULT, value)
