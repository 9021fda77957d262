"""Step: one LLM request and its response, a CLIENT child span of its run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from tcc_otel._records._record import Record, messages_json
from tcc_otel._schema import _cost as cost
from tcc_otel._schema import _keys as attrs
from tcc_otel._schema._values import to_cost, to_count

if TYPE_CHECKING:
    from tcc_otel._client import Client, Pipeline
    from tcc_otel._records._run import Run
    from tcc_otel._records._tool_call import ToolCall


class Step(Record):
    """One LLM request and response. Create with ``run.step()`` or ``tcc.step(run_id=...)``."""

    __slots__ = ("_run", "_step_id")

    _NAME: ClassVar[str] = "Step"
    _REQUIRED: ClassVar[dict[str, str]] = {
        attrs.STEP_PROMPT: "step.prompt(...)",
        attrs.STEP_RESPONSE: "step.response(...)",
    }

    def __init__(
        self,
        client: Client,
        pipeline: Pipeline,
        span: Span,
        run_id: str,
        step_id: str,
        run: Run | None,
    ) -> None:
        super().__init__(client, pipeline, span, run_id)
        self._step_id = step_id
        self._run = run

    @property
    def step_id(self) -> str:
        """This step's id (a UUID4 unless one was given)."""
        return self._step_id

    def prompt(self, text: Any) -> Step:
        """Record the prompt sent to the LLM; required before ``end()``."""
        return self._set("prompt", attrs.STEP_PROMPT, self._content(text, "Step.prompt()"))

    def response(self, text: Any) -> Step:
        """Record the LLM's response; required before ``end()``."""
        value = self._content(text, "Step.response()")
        return self._set("response", attrs.STEP_RESPONSE, value)

    def model(self, requested: Any = None, used: Any = None) -> Step:
        """Record the model asked for and the one that answered. ``None`` leaves a field unset."""
        req = self._text(requested, "Step.model()")
        use = self._text(used, "Step.model()")
        with self._lock:
            self._require_open("model")
            self._store(attrs.STEP_MODEL_REQUESTED, req)
            self._store(attrs.STEP_MODEL_USED, use)
        return self

    def tokens(
        self, prompt_uncached: Any = None, prompt_cached: Any = None, completion: Any = None
    ) -> Step:
        """Record token counts; each must be a non-negative ``int`` or it is left out."""
        values = (
            (attrs.STEP_PROMPT_UNCACHED_TOKENS, prompt_uncached, "prompt_uncached"),
            (attrs.STEP_PROMPT_CACHED_TOKENS, prompt_cached, "prompt_cached"),
            (attrs.STEP_COMPLETION_TOKENS, completion, "completion"),
        )
        counts = {
            key: to_count(value, "Step.tokens()", name)
            for key, value, name in values
            if value is not None
        }
        with self._lock:
            self._require_open("tokens")
            for key, count in counts.items():
                if count is not None:
                    self._fields[key] = count
        return self

    def cost(self, real_total: Any) -> Step:
        """Record the step's total cost, a finite non-negative number."""
        value = None if real_total is None else to_cost(real_total, "Step.cost()")
        return self._set("cost", attrs.STEP_REAL_TOTAL_COST, value)

    def finish_reason(self, reason: Any) -> Step:
        """Record why the LLM stopped (``"stop"``, ``"tool_call"``, ...)."""
        value = self._text(reason, "Step.finish_reason()")
        return self._set("finish_reason", attrs.STEP_FINISH_REASON, value)

    def tool_definitions(self, definitions: Any) -> Step:
        """Record the tools offered to the LLM: a JSON string, or a list/dict serialised to JSON."""
        value = self._content(definitions, "Step.tool_definitions()", as_json=True)
        return self._set("tool_definitions", attrs.STEP_TOOL_DEFINITIONS, value)

    def tool_call(self, tool_name: Any = None, tool_call_id: str | None = None) -> ToolCall:
        """Start a tool call that this step asked for; its span is the step's child."""
        with self._lock:
            self._require_open("tool_call")
        return self._client.start_tool_call(
            self._run_id, self._pipeline, self._span, tool_name, tool_call_id
        )

    def _attributes(self) -> dict[str, AttributeValue]:
        fields = self._fields
        out = dict(fields)
        requested = fields.get(attrs.STEP_MODEL_REQUESTED)
        used = fields.get(attrs.STEP_MODEL_USED)
        if requested is not None:
            out[attrs.GEN_AI_REQUEST_MODEL] = requested
        if used is not None:
            out[attrs.GEN_AI_RESPONSE_MODEL] = used
        input_tokens = self._input_tokens()
        if input_tokens is not None:
            out[attrs.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
        cached = fields.get(attrs.STEP_PROMPT_CACHED_TOKENS)
        if cached is not None:
            out[attrs.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cached
        completion = fields.get(attrs.STEP_COMPLETION_TOKENS)
        if completion is not None:
            out[attrs.GEN_AI_USAGE_OUTPUT_TOKENS] = completion
        reason = fields.get(attrs.STEP_FINISH_REASON)
        if reason is not None:
            out[attrs.GEN_AI_RESPONSE_FINISH_REASONS] = [str(reason)]
        if attrs.STEP_REAL_TOTAL_COST not in fields:
            estimated = self._estimated_cost()
            if estimated is not None:
                out[attrs.STEP_ESTIMATED_COST] = estimated
        definitions = fields.get(attrs.STEP_TOOL_DEFINITIONS)
        if definitions is not None:
            out[attrs.GEN_AI_TOOL_DEFINITIONS] = definitions
        if self._pipeline.capture_content:
            prompt = fields.get(attrs.STEP_PROMPT)
            if prompt is not None:
                out[attrs.GEN_AI_INPUT_MESSAGES] = messages_json("user", str(prompt))
            response = fields.get(attrs.STEP_RESPONSE)
            if response is not None:
                finish = None if reason is None else str(reason)
                out[attrs.GEN_AI_OUTPUT_MESSAGES] = messages_json(
                    "assistant", str(response), finish
                )
        return out

    def _count(self, key: str) -> int | None:
        value = self._fields.get(key)
        return value if isinstance(value, int) else None

    def _input_tokens(self) -> int | None:
        uncached = self._count(attrs.STEP_PROMPT_UNCACHED_TOKENS)
        cached = self._count(attrs.STEP_PROMPT_CACHED_TOKENS)
        if uncached is None and cached is None:
            return None
        return (uncached or 0) + (cached or 0)

    def _span_name(self) -> str:
        model = self._fields.get(attrs.STEP_MODEL_USED) or self._fields.get(
            attrs.STEP_MODEL_REQUESTED
        )
        return f"{attrs.OP_CHAT} {model}" if model else attrs.OP_CHAT

    def _after_end(self) -> None:
        run = self._run
        if run is None:
            return
        run._step_ended(self, self._input_tokens(), self._count(attrs.STEP_COMPLETION_TOKENS))

    def _cost(self) -> float | None:
        """The real cost if given, else an estimate from model and tokens (``tcc-otel[cost]``)."""
        real = self._fields.get(attrs.STEP_REAL_TOTAL_COST)
        if isinstance(real, (int, float)):
            return float(real)
        return self._estimated_cost()

    def _estimated_cost(self) -> float | None:
        if not cost.available():
            return None
        model = self._fields.get(attrs.STEP_MODEL_USED) or self._fields.get(
            attrs.STEP_MODEL_REQUESTED
        )
        counts = [
            self._count(key)
            for key in (
                attrs.STEP_PROMPT_UNCACHED_TOKENS,
                attrs.STEP_PROMPT_CACHED_TOKENS,
                attrs.STEP_COMPLETION_TOKENS,
            )
        ]
        if not model or all(count is None for count in counts):
            return None
        uncached, cached, completion = (count or 0 for count in counts)
        return cost.estimate(str(model), uncached, cached, completion)
