"""Reading other instrumentations' spans as steps and tool calls (``_schema._genai``), from
attributes written as each family writes them. ``tests/schema/test_genai_fixtures.py`` checks the
same readers on spans the real packages produced."""

from __future__ import annotations

import json
from typing import Any

from tcc_otel._schema import _keys as keys
from tcc_otel._schema._build import STEP, TOOL_CALL, Snapshot, attributes
from tcc_otel._schema._calls import Call, Event, is_content_key
from tcc_otel._schema._genai import as_text, fields, gaps, read


def text(role: str, content: str, **more: Any) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": content}], **more}


NEW_FORMAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.usage.input_tokens": 120,
    "gen_ai.usage.cache_read.input_tokens": 20,
    "gen_ai.usage.output_tokens": 9,
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
    "gen_ai.input.messages": json.dumps([text("user", "Weather in Paris?")]),
    "gen_ai.output.messages": json.dumps([text("assistant", "Sunny.", finish_reason="stop")]),
}


class TestConventions:
    def test_new_format_attributes(self) -> None:
        call = read(NEW_FORMAT)
        assert call == Call(
            STEP,
            request_model="gpt-4o-mini",
            response_model="gpt-4o-mini-2024-07-18",
            input_tokens=120,
            cached_tokens=20,
            output_tokens=9,
            finish_reasons=("stop",),
            system=[{"type": "text", "content": "Be brief."}],
            inputs=[text("user", "Weather in Paris?")],
            outputs=[text("assistant", "Sunny.", finish_reason="stop")],
        )

    def test_fields_are_a_manual_steps(self) -> None:
        """Cached tokens are part of the input count: uncached = input - cached."""
        call = read(NEW_FORMAT)
        assert call is not None
        found = fields(call)
        assert found == {
            keys.STEP_MODEL_REQUESTED: "gpt-4o-mini",
            keys.STEP_MODEL_USED: "gpt-4o-mini-2024-07-18",
            keys.STEP_PROMPT_UNCACHED_TOKENS: 100,
            keys.STEP_PROMPT_CACHED_TOKENS: 20,
            keys.STEP_COMPLETION_TOKENS: 9,
            keys.STEP_FINISH_REASON: "stop",
            keys.GEN_AI_SYSTEM_INSTRUCTIONS: '[{"type": "text", "content": "Be brief."}]',
            keys.STEP_PROMPT: "Weather in Paris?",
            keys.GEN_AI_INPUT_MESSAGES: json.dumps([text("user", "Weather in Paris?")]),
            keys.STEP_RESPONSE: "Sunny.",
            keys.GEN_AI_OUTPUT_MESSAGES: json.dumps(
                [text("assistant", "Sunny.", finish_reason="stop")]
            ),
        }

    def test_built_like_a_manual_step_keeping_the_calls_messages(self) -> None:
        call = read(NEW_FORMAT)
        assert call is not None
        built = attributes(Snapshot(STEP, fields(call), True))
        assert built[keys.GEN_AI_USAGE_INPUT_TOKENS] == 120
        assert built[keys.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
        assert json.loads(str(built[keys.GEN_AI_INPUT_MESSAGES])) == [
            text("user", "Weather in Paris?")
        ]

    def test_system_message_in_inputs_becomes_instructions(self) -> None:
        found = dict(NEW_FORMAT)
        del found["gen_ai.system_instructions"]
        found["gen_ai.input.messages"] = json.dumps(
            [text("system", "Be brief."), text("user", "Hi")]
        )
        call = read(found)
        assert call is not None
        assert call.system == [{"type": "text", "content": "Be brief."}]
        assert call.inputs == [text("user", "Hi")]

    def test_details_event(self) -> None:
        """openai-v2 with EVENT_ONLY: the messages are on a log record, structured."""
        bare = {k: v for k, v in NEW_FORMAT.items() if not is_content_key(k)}
        event = Event(
            "gen_ai.client.inference.operation.details",
            None,
            {
                "gen_ai.input.messages": (text("user", "Hi"),),
                "gen_ai.output.messages": (text("assistant", "Hello", finish_reason="stop"),),
            },
        )
        call = read(bare, [event])
        assert call is not None
        assert call.inputs == [text("user", "Hi")]
        assert call.outputs == [text("assistant", "Hello", finish_reason="stop")]

    def test_per_message_events(self) -> None:
        """The older event format: one event per input message, one ``gen_ai.choice``."""
        bare = {k: v for k, v in NEW_FORMAT.items() if not is_content_key(k)}
        events = [
            Event("gen_ai.system.message", {"content": "Be brief."}, {}),
            Event("gen_ai.user.message", {"content": "Hi"}, {}),
            Event(
                "gen_ai.choice",
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                            }
                        ]
                    },
                },
                {},
            ),
        ]
        call = read(bare, events)
        assert call is not None
        assert call.system == [{"type": "text", "content": "Be brief."}]
        assert call.inputs == [text("user", "Hi")]
        assert call.outputs == [
            {
                "role": "assistant",
                "parts": [
                    {
                        "type": "tool_call",
                        "name": "weather",
                        "id": "call_1",
                        "arguments": {"city": "Paris"},
                    }
                ],
                "finish_reason": "tool_calls",
            }
        ]
        found = fields(call)
        assert found[keys.STEP_PROMPT] == "Hi"
        assert json.loads(str(found[keys.STEP_RESPONSE]))[0]["parts"][0]["name"] == "weather"

    def test_openllmetry_indexed(self) -> None:
        found = {
            "llm.request.type": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.prompt_tokens": 50,
            "gen_ai.usage.completion_tokens": 5,
            "gen_ai.usage.cache_read_input_tokens": 10,
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": "Be brief.",
            "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": "Hi",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "Hello",
            "gen_ai.completion.0.finish_reason": "stop",
            "llm.request.functions.0.name": "weather",
            "llm.request.functions.0.parameters": '{"type": "object"}',
        }
        call = read(found)
        assert call is not None
        assert (call.input_tokens, call.cached_tokens, call.output_tokens) == (50, 10, 5)
        assert call.system == [{"type": "text", "content": "Be brief."}]
        assert call.inputs == [text("user", "Hi")]
        assert call.outputs == [text("assistant", "Hello", finish_reason="stop")]
        assert call.finish_reasons == ("stop",)
        assert json.loads(str(call.tool_definitions)) == [
            {"type": "function", "name": "weather", "parameters": {"type": "object"}}
        ]

    def test_tool_span(self) -> None:
        call = read(
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "weather",
                "gen_ai.tool.call.id": "call_1",
                "gen_ai.tool.call.arguments": '{"city": "Paris"}',
                "gen_ai.tool.call.result": "Sunny",
            }
        )
        assert call == Call(
            TOOL_CALL,
            tool_name="weather",
            tool_call_id="call_1",
            tool_args='{"city": "Paris"}',
            tool_result="Sunny",
        )
        assert fields(call)[keys.TOOL_CALL_NAME] == "weather"

    def test_other_spans_are_not_calls(self) -> None:
        assert read({"http.request.method": "POST"}) is None
        assert read({"gen_ai.operation.name": "embeddings"}) is None
        assert read({}) is None


class TestOpenInference:
    LLM = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o-mini-2024-07-18",
        "llm.invocation_parameters": '{"model": "gpt-4o-mini", "temperature": 0}',
        "llm.token_count.prompt": 30,
        "llm.token_count.completion": 4,
        "llm.token_count.prompt_details.cache_read": 10,
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "Be brief.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": "Hi",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "weather",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": "{}",
        "llm.tools.0.tool.json_schema": '{"type": "function", "function": {"name": "weather"}}',
        "output.value": '{"choices": [{"finish_reason": "tool_calls"}]}',
        "output.mime_type": "application/json",
    }

    def test_llm_span(self) -> None:
        call = read(self.LLM)
        assert call is not None
        assert (call.kind, call.request_model, call.response_model) == (
            STEP,
            "gpt-4o-mini",
            "gpt-4o-mini-2024-07-18",
        )
        assert (call.input_tokens, call.cached_tokens, call.output_tokens) == (30, 10, 4)
        assert call.system == [{"type": "text", "content": "Be brief."}]
        assert call.inputs == [text("user", "Hi")]
        assert call.outputs == [
            {
                "role": "assistant",
                "parts": [
                    {"type": "tool_call", "name": "weather", "id": "call_1", "arguments": {}}
                ],
                "finish_reason": "tool_calls",
            }
        ]
        assert call.finish_reasons == ("tool_calls",)
        assert json.loads(str(call.tool_definitions)) == [
            {"type": "function", "function": {"name": "weather"}}
        ]

    def test_plain_values_without_messages(self) -> None:
        call = read({"openinference.span.kind": "LLM", "input.value": "Hi", "output.value": "Yo"})
        assert call is not None
        assert (call.inputs, call.outputs) == ([text("user", "Hi")], [text("assistant", "Yo")])

    def test_tool_span(self) -> None:
        call = read(
            {
                "openinference.span.kind": "TOOL",
                "tool.name": "weather",
                "input.value": '{"city": "Paris"}',
                "output.value": "Sunny",
            }
        )
        assert call == Call(
            TOOL_CALL, tool_name="weather", tool_args='{"city": "Paris"}', tool_result="Sunny"
        )

    def test_chain_and_agent_spans_are_plain(self) -> None:
        assert read({"openinference.span.kind": "CHAIN", "input.value": "x"}) is None
        assert read({"openinference.span.kind": "AGENT"}) is None


class TestGaps:
    def test_own_fields_win(self) -> None:
        own = {keys.STEP_PROMPT: "mine", keys.STEP_MODEL_REQUESTED: "m"}
        found = {
            keys.STEP_PROMPT: "theirs",
            keys.GEN_AI_INPUT_MESSAGES: "[...]",
            keys.STEP_RESPONSE: "answer",
            keys.GEN_AI_OUTPUT_MESSAGES: "[...]",
            keys.STEP_MODEL_REQUESTED: "other",
            keys.STEP_COMPLETION_TOKENS: 3,
        }
        assert gaps(own, found) == {
            keys.STEP_RESPONSE: "answer",
            keys.GEN_AI_OUTPUT_MESSAGES: "[...]",
            keys.STEP_COMPLETION_TOKENS: 3,
        }


class TestAsText:
    def test_one_text_message_is_its_text(self) -> None:
        assert as_text([text("user", "Hi")]) == "Hi"

    def test_anything_else_is_json(self) -> None:
        messages = [text("user", "Hi"), text("assistant", "Yo")]
        assert json.loads(str(as_text(messages))) == messages
        assert as_text([]) is None
