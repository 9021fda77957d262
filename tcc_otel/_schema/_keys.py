"""Span attribute keys and span names written by tcc_otel. Names only; no logic lives here."""

from __future__ import annotations

from enum import Enum
from typing import Final


class SpanKind(str, Enum):
    """Value of ``TCC_TYPE`` on every span we create; always write ``.value``."""

    RUN = "run"
    STEP = "step"
    TOOL_CALL = "tool_call"


# --- on every span of a run -------------------------------------------------------------------

TCC_TYPE: Final = "tcc.type"
"""Which record the span carries; a SpanKind value."""
TCC_RUN_ID: Final = "tcc.runId"
"""Id of the run the span belongs to."""

# --- run ----------------------------------------------------------------------------------------

TCC_SESSION_ID: Final = "tcc.sessionId"
"""Session the run belongs to."""
TCC_CONVERSATIONAL: Final = "tcc.conversational"
"""Whether the run is one turn of a conversation (bool)."""
RUN_USER_PROMPT: Final = "tcc.run.user_prompt"
"""The user's prompt that started the run."""
RUN_SYSTEM_PROMPT: Final = "tcc.run.system_prompt"
"""The system prompt of the run."""
RUN_RESPONSE: Final = "tcc.run.response"
"""The run's final answer."""
METADATA_PREFIX: Final = "tcc.metadata."
"""Prefix of user metadata keys that are not reserved."""
RESERVED_METADATA_KEYS: Final = frozenset(
    {"tcc.agent", "tcc.userId", "tcc.userName", "tcc.orgId", "tcc.orgName"}
)
"""Metadata keys written as they are, without ``METADATA_PREFIX``."""
TCC_AGENT: Final = "tcc.agent"
"""Reserved metadata key naming the agent; also names the run span."""

# --- step ---------------------------------------------------------------------------------------

TCC_STEP_ID: Final = "tcc.stepId"
"""Id of the step."""
STEP_PROMPT: Final = "tcc.step.prompt"
"""Prompt sent to the LLM."""
STEP_RESPONSE: Final = "tcc.step.response"
"""Response returned by the LLM."""
STEP_MODEL_REQUESTED: Final = "tcc.step.model_requested"
"""Model the caller asked for."""
STEP_MODEL_USED: Final = "tcc.step.model_used"
"""Model that actually served the step."""
STEP_PROMPT_UNCACHED_TOKENS: Final = "tcc.step.prompt_uncached_tokens"
"""Prompt tokens not served from a cache."""
STEP_PROMPT_CACHED_TOKENS: Final = "tcc.step.prompt_cached_tokens"
"""Prompt tokens served from a cache."""
STEP_COMPLETION_TOKENS: Final = "tcc.step.completion_tokens"
"""Completion tokens."""
STEP_REAL_TOTAL_COST: Final = "tcc.step.real_total_cost"
"""Total cost of the step as the caller reported it (double)."""
STEP_FINISH_REASON: Final = "tcc.step.finish_reason"
"""Why the LLM stopped: ``stop``, ``tool_call``, ..."""
STEP_TOOL_DEFINITIONS: Final = "tcc.step.tool_definitions"
"""Tools offered to the LLM, as a JSON string."""
STEP_ESTIMATED_COST: Final = "tcc.step.estimated_cost"
"""USD estimated from model and tokens when no cost was given (``tcc-otel[cost]``)."""
RUN_TOTAL_TOKENS: Final = "tcc.run.total_tokens"
"""Input + output tokens of the run's steps (``tcc-otel[cost]``)."""
RUN_TOTAL_COST: Final = "tcc.run.total_cost"
"""USD of the run's steps: real cost where given, estimated otherwise (``tcc-otel[cost]``)."""

# --- tool call ----------------------------------------------------------------------------------

TCC_TOOL_CALL_ID: Final = "tcc.toolCallId"
"""Id of the tool call."""
TOOL_CALL_NAME: Final = "tcc.tool_call.name"
"""Name of the tool."""
TOOL_CALL_ARGS: Final = "tcc.tool_call.args"
"""Arguments passed to the tool (dicts as JSON)."""
TOOL_CALL_RESULT: Final = "tcc.tool_call.result"
"""What the tool returned (dicts as JSON)."""

# --- OpenTelemetry GenAI semantic conventions ---------------------------------------------------

GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
"""``invoke_agent``, ``chat`` or ``execute_tool``."""
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
"""The session id."""
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
"""The agent's name (``tcc.agent``)."""
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
"""Input messages as JSON in the semconv message shape."""
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
"""Output messages as JSON in the semconv message shape."""
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
"""System instructions as JSON parts."""
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
"""Input tokens: uncached + cached on a step, the sum over steps on a run."""
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
"""Output tokens: completion on a step, the sum over steps on a run."""
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
"""Input tokens served from a cache."""
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
"""Model the caller asked for."""
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
"""Model that answered."""
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
"""Finish reasons, a string array."""
GEN_AI_TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
"""Tools offered to the model, as JSON."""
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
"""Name of the tool."""
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
"""Id of the tool call."""
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
"""Arguments passed to the tool."""
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
"""What the tool returned."""
ERROR_TYPE: Final = "error.type"
"""Exception class name, or ``_OTHER`` when ``.error()`` was called directly."""
ERROR_TYPE_OTHER: Final = "_OTHER"
"""``error.type`` when no exception class is known."""

# --- operation names, which are also the span name prefixes -------------------------------------

OP_INVOKE_AGENT: Final = "invoke_agent"
OP_CHAT: Final = "chat"
OP_EXECUTE_TOOL: Final = "execute_tool"

TCC_CONTENT_COPIES: Final = frozenset(
    {RUN_USER_PROMPT, RUN_RESPONSE, STEP_PROMPT, STEP_RESPONSE, TOOL_CALL_ARGS, TOOL_CALL_RESULT}
)
"""Content under TCC's names whose GenAI copy TCC's ingestion reads (messages, tool arguments and
results); ``TCC_CONTENT_ONCE`` leaves them out."""
CONTENT_KEYS: Final = TCC_CONTENT_COPIES | frozenset(
    {
        RUN_SYSTEM_PROMPT,
        STEP_TOOL_DEFINITIONS,
        GEN_AI_INPUT_MESSAGES,
        GEN_AI_OUTPUT_MESSAGES,
        GEN_AI_SYSTEM_INSTRUCTIONS,
        GEN_AI_TOOL_DEFINITIONS,
        GEN_AI_TOOL_CALL_ARGUMENTS,
        GEN_AI_TOOL_CALL_RESULT,
    }
)
"""Keys that carry content; left out everywhere when ``TCC_CAPTURE_CONTENT=false``."""
