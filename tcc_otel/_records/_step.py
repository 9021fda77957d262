"""Step: one LLM request and its response, a CLIENT child span of its run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from opentelemetry.trace import Span, SpanKind

from tcc_otel._records._record import Record
from tcc_otel._records._road import Road, open_span
from tcc_otel._records._span import id_or_new
from tcc_otel._records._tool_call import ToolCall
from tcc_otel._schema import _keys as attrs
from tcc_otel._schema._build import STEP, Fields, Snapshot
from tcc_otel._schema._values import to_cost, to_count


class Step(Record):
    """One LLM request and response. Create with ``run.step()`` or ``tcc.step(run_id=...)``."""

    __slots__ = ("_on_end", "_step_id")

    _KIND: ClassVar[str] = STEP
    _REQUIRED: ClassVar[dict[str, str]] = {
        attrs.STEP_PROMPT: "step.prompt(...)",
        attrs.STEP_RESPONSE: "step.response(...)",
    }
    _CONTENT: ClassVar[tuple[str, ...]] = (attrs.STEP_PROMPT, attrs.STEP_RESPONSE)

    def __init__(
        self,
        road: Road,
        run_id: str,
        parent: Span | None,
        step_id: str | None = None,
        *,
        local: bool = True,
        on_end: Callable[[Fields], None] | None = None,
    ) -> None:
        """Start a step of ``run_id`` under ``parent`` (``None``: the active span);
        ``on_end`` gets its fields when it ends (its open run's totals)."""
        sid = id_or_new(step_id)
        span = open_span(
            road,
            attrs.OP_CHAT,
            parent,
            SpanKind.CLIENT,
            {
                attrs.TCC_TYPE: STEP,
                attrs.TCC_RUN_ID: run_id,
                attrs.TCC_STEP_ID: sid,
                attrs.GEN_AI_OPERATION_NAME: attrs.OP_CHAT,
            },
            run_id,
            local=local,
        )
        super().__init__(road, span, run_id)
        self._step_id = sid
        self._on_end = on_end

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
        return self._set_all("model", {attrs.STEP_MODEL_REQUESTED: req, attrs.STEP_MODEL_USED: use})

    def tokens(
        self, prompt_uncached: Any = None, prompt_cached: Any = None, completion: Any = None
    ) -> Step:
        """Record token counts; each must be a non-negative ``int`` or it is left out."""
        uncached = cached = done = None
        if prompt_uncached is not None:
            uncached = to_count(prompt_uncached, "Step.tokens()", "prompt_uncached")
        if prompt_cached is not None:
            cached = to_count(prompt_cached, "Step.tokens()", "prompt_cached")
        if completion is not None:
            done = to_count(completion, "Step.tokens()", "completion")
        self._require_open("tokens")
        fields = self._fields
        if uncached is not None:
            fields[attrs.STEP_PROMPT_UNCACHED_TOKENS] = uncached
        if cached is not None:
            fields[attrs.STEP_PROMPT_CACHED_TOKENS] = cached
        if done is not None:
            fields[attrs.STEP_COMPLETION_TOKENS] = done
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
        self._require_open("tool_call")
        return ToolCall(self._road, self._run_id, self._span, tool_name, tool_call_id)

    def _after_end(self, snapshot: Snapshot | None) -> None:
        if self._on_end is not None:
            self._on_end(dict(self._fields) if snapshot is None else snapshot.fields)
