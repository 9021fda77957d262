"""Run: one agent execution, the parent span of its steps and tool calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from tcc_otel._records._record import Record, messages_json, parts_json
from tcc_otel._schema import _cost as cost
from tcc_otel._schema import _keys as attrs
from tcc_otel._schema._values import clean_text, to_metadata_value, warn_dropped

if TYPE_CHECKING:
    from tcc_otel._client import Client, Pipeline
    from tcc_otel._records._step import Step
    from tcc_otel._records._tool_call import ToolCall


class Run(Record):
    """One agent execution. Create with ``tcc.run()``; end with ``end()`` or ``error()``."""

    __slots__ = ("_input_tokens", "_output_tokens", "_priced_steps")

    _NAME: ClassVar[str] = "Run"
    _REQUIRED: ClassVar[dict[str, str]] = {attrs.RUN_USER_PROMPT: "run.prompt(...)"}

    def __init__(self, client: Client, pipeline: Pipeline, span: Span, run_id: str) -> None:
        super().__init__(client, pipeline, span, run_id)
        self._input_tokens: int | None = None
        self._output_tokens: int | None = None
        self._priced_steps: list[Step] | None = None  # for run totals, with tcc-otel[cost]

    def prompt(self, user_prompt: Any, system_prompt: Any = None) -> Run:
        """Record the user's prompt (required before ``end()``) and the system prompt."""
        user = self._content(user_prompt, "Run.prompt()")
        system = self._content(system_prompt, "Run.prompt()")
        with self._lock:
            self._require_open("prompt")
            self._store(attrs.RUN_USER_PROMPT, user)
            self._store(attrs.RUN_SYSTEM_PROMPT, system)
        return self

    def response(self, text: Any) -> Run:
        """Record the run's final answer."""
        return self._set("response", attrs.RUN_RESPONSE, self._content(text, "Run.response()"))

    def metadata(self, data: Mapping[str, Any] | None = None, **more: Any) -> Run:
        """Merge metadata from a dict and/or keywords; values must be str, int, float or bool.

        Reserved keys (``tcc.agent``, ``tcc.userId``, ``tcc.userName``, ``tcc.orgId``,
        ``tcc.orgName``) are written as they are, others as ``tcc.metadata.<key>``.
        """
        items: dict[str, AttributeValue] = {}
        if data is not None and not isinstance(data, Mapping):
            warn_dropped("Run.metadata()", "the first argument must be a dict", data)
            data = None
        for source in (data or {}, more):
            for raw_key, value in source.items():
                if not isinstance(raw_key, str) or not raw_key:
                    warn_dropped("Run.metadata()", "metadata keys must be non-empty str", raw_key)
                    continue
                key = clean_text(raw_key)
                clean = to_metadata_value(value, "Run.metadata()", key)
                if clean is not None:
                    name = (
                        key if key in attrs.RESERVED_METADATA_KEYS else attrs.METADATA_PREFIX + key
                    )
                    items[name] = clean
        with self._lock:
            self._require_open("metadata")
            self._fields.update(items)
        return self

    def step(self, step_id: str | None = None) -> Step:
        """Start a step of this run; its span is the run's child."""
        with self._lock:
            self._require_open("step")
        return self._client.start_step(self._run_id, step_id, run=self)

    def tool_call(self, tool_name: Any = None, tool_call_id: str | None = None) -> ToolCall:
        """Start a tool call of this run; its span is the run's child."""
        with self._lock:
            self._require_open("tool_call")
        return self._client.start_tool_call(
            self._run_id, self._pipeline, self._span, tool_name, tool_call_id
        )

    def feedback(self, score: str | None = None, text: str | None = None) -> bool:
        """Send user feedback on this run; ``True`` if the endpoint accepted it.

        Raises:
            ValueError: neither score nor text is given, or text is over 2,000 characters.
        """
        return self._client.submit_feedback(self._run_id, score, text, self._pipeline)

    def _step_ended(self, step: Step, input_tokens: int | None, output_tokens: int | None) -> None:
        """Add a finished step's tokens (and, for totals, the step) to the run, if still open."""
        with self._lock:
            if self._ended:
                return
            if cost.available():
                if self._priced_steps is None:
                    self._priced_steps = []
                self._priced_steps.append(step)
            if input_tokens is not None:
                self._input_tokens = (self._input_tokens or 0) + input_tokens
            if output_tokens is not None:
                self._output_tokens = (self._output_tokens or 0) + output_tokens

    def _attributes(self) -> dict[str, AttributeValue]:
        fields = self._fields
        out = dict(fields)
        agent = fields.get(attrs.TCC_AGENT)
        if agent is not None:
            out[attrs.GEN_AI_AGENT_NAME] = str(agent)
        if self._input_tokens is not None:
            out[attrs.GEN_AI_USAGE_INPUT_TOKENS] = self._input_tokens
        if self._output_tokens is not None:
            out[attrs.GEN_AI_USAGE_OUTPUT_TOKENS] = self._output_tokens
        if cost.available():
            if self._input_tokens is not None or self._output_tokens is not None:
                out[attrs.RUN_TOTAL_TOKENS] = (self._input_tokens or 0) + (self._output_tokens or 0)
            costs = [c for c in (s._cost() for s in self._priced_steps or ()) if c is not None]
            if costs:
                out[attrs.RUN_TOTAL_COST] = sum(costs)
        if self._pipeline.capture_content:
            prompt = fields.get(attrs.RUN_USER_PROMPT)
            if prompt is not None:
                out[attrs.GEN_AI_INPUT_MESSAGES] = messages_json("user", str(prompt))
            system = fields.get(attrs.RUN_SYSTEM_PROMPT)
            if system is not None:
                out[attrs.GEN_AI_SYSTEM_INSTRUCTIONS] = parts_json(str(system))
            response = fields.get(attrs.RUN_RESPONSE)
            if response is not None:
                out[attrs.GEN_AI_OUTPUT_MESSAGES] = messages_json("assistant", str(response))
        return out

    def _span_name(self) -> str:
        agent = self._fields.get(attrs.TCC_AGENT)
        return f"{attrs.OP_INVOKE_AGENT} {agent}" if agent else attrs.OP_INVOKE_AGENT

    def _after_end(self) -> None:
        self._client.run_ended(self)
