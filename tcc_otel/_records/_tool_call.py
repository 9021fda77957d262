"""ToolCall: one tool invocation, an INTERNAL child span of its run (or of the step that asked)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from tcc_otel._records._record import Record
from tcc_otel._schema import _keys as attrs

if TYPE_CHECKING:
    from tcc_otel._client import Client, Pipeline


class ToolCall(Record):
    """One tool invocation. Create with ``run.tool_call()``, ``step.tool_call()`` or
    ``tcc.tool_call(run_id=...)``."""

    __slots__ = ("_tool_call_id",)

    _NAME: ClassVar[str] = "ToolCall"
    _REQUIRED: ClassVar[dict[str, str]] = {attrs.TOOL_CALL_NAME: "tool_call.name(...)"}

    def __init__(
        self, client: Client, pipeline: Pipeline, span: Span, run_id: str, tool_call_id: str
    ) -> None:
        super().__init__(client, pipeline, span, run_id)
        self._tool_call_id = tool_call_id

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

    def _attributes(self) -> dict[str, AttributeValue]:
        fields = self._fields
        out = dict(fields)
        for tcc_key, gen_ai_key in (
            (attrs.TOOL_CALL_NAME, attrs.GEN_AI_TOOL_NAME),
            (attrs.TOOL_CALL_ARGS, attrs.GEN_AI_TOOL_CALL_ARGUMENTS),
            (attrs.TOOL_CALL_RESULT, attrs.GEN_AI_TOOL_CALL_RESULT),
        ):
            value = fields.get(tcc_key)
            if value is not None:
                out[gen_ai_key] = value
        return out

    def _span_name(self) -> str:
        name = self._fields.get(attrs.TOOL_CALL_NAME)
        return f"{attrs.OP_EXECUTE_TOOL} {name}" if name else attrs.OP_EXECUTE_TOOL
