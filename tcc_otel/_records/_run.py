"""Run: one agent execution, the parent span of its steps and tool calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from tcc_otel._records._record import Record
from tcc_otel._records._road import Road, open_span
from tcc_otel._records._span import id_or_new
from tcc_otel._records._step import Step
from tcc_otel._records._tool_call import ToolCall
from tcc_otel._schema import _keys as attrs
from tcc_otel._schema._build import RUN, Fields, Snapshot
from tcc_otel._schema._values import clean_text, to_metadata_value, to_text, warn_dropped


class Run(Record):
    """One agent execution. Create with ``tcc.run()``; end with ``end()`` or ``error()``."""

    __slots__ = ("_steps",)

    _KIND: ClassVar[str] = RUN
    _REQUIRED: ClassVar[dict[str, str]] = {attrs.RUN_USER_PROMPT: "run.prompt(...)"}

    def __init__(
        self,
        road: Road,
        run_id: str | None = None,
        session_id: str | None = None,
        conversational: bool | None = None,
    ) -> None:
        """Start a run whose span's parent is the active span."""
        rid = id_or_new(run_id)
        initial: dict[str, AttributeValue] = {
            attrs.TCC_TYPE: RUN,
            attrs.TCC_RUN_ID: rid,
            attrs.GEN_AI_OPERATION_NAME: attrs.OP_INVOKE_AGENT,
        }
        if session_id is not None:
            session = to_text(session_id, "tcc.run()")
            if session is not None:
                initial[attrs.TCC_SESSION_ID] = session
                initial[attrs.GEN_AI_CONVERSATION_ID] = session
        if conversational is not None:
            initial[attrs.TCC_CONVERSATIONAL] = bool(conversational)
        span = open_span(road, attrs.OP_INVOKE_AGENT, None, SpanKind.INTERNAL, initial, rid)
        super().__init__(road, span, rid)
        self._steps: list[Fields] = []  # fields of steps that ended while the run was open

    def prompt(self, user_prompt: Any, system_prompt: Any = None) -> Run:
        """Record the user's prompt (required before ``end()``) and the system prompt."""
        user = self._content(user_prompt, "Run.prompt()")
        system = self._content(system_prompt, "Run.prompt()")
        return self._set_all(
            "prompt", {attrs.RUN_USER_PROMPT: user, attrs.RUN_SYSTEM_PROMPT: system}
        )

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
        self._require_open("metadata")
        self._fields.update(items)
        return self

    def step(self, step_id: str | None = None) -> Step:
        """Start a step of this run; its span is the run's child."""
        self._require_open("step")
        return Step(self._road, self._run_id, self._span, step_id, on_end=self.count_step)

    def tool_call(self, tool_name: Any = None, tool_call_id: str | None = None) -> ToolCall:
        """Start a tool call of this run; its span is the run's child."""
        self._require_open("tool_call")
        return ToolCall(self._road, self._run_id, self._span, tool_name, tool_call_id)

    def feedback(self, score: str | None = None, text: str | None = None) -> bool:
        """Send user feedback on this run; ``True`` if the endpoint accepted it.

        Raises:
            ValueError: neither score nor text is given, or text is over 2,000 characters.
        """
        return self._road.feedback(self._run_id, score, text, "Run.feedback()")

    def count_step(self, fields: Fields) -> None:
        """A step of this run ended (one of its own, or an instrumented LLM call read as a
        step): its usage counts in the run's totals, if the run is still open."""
        if not self._ended:
            self._steps.append(fields)  # atomic; the run's snapshot copies the list

    def _snapshot(self) -> Snapshot:
        road = self._road
        steps = tuple(self._steps)
        return Snapshot(RUN, dict(self._fields), road.capture_content, steps, road.content_once)

    def _after_end(self, snapshot: Snapshot | None) -> None:
        self._road.run_ended(self._run_id, self._span.get_span_context())
