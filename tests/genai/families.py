"""The third-party GenAI instrumentation families we record fixtures from, with pinned packages.

Each family gets its own venv (``bash tests/genai/venv.sh <family>``), with ``tcc_otel`` installed
editable beside the pins; ``tests/genai/capture.py`` runs in it and writes
``tests/schema/fixtures/genai/<family>-<case>-<mode>.json``. Stdlib only: ``venv.sh`` runs
``python3 tests/genai/families.py pins <family>`` before any venv exists.

Every pin below was installed together in one venv (Python 3.11: these releases need 3.10+, and
langchain-core 1.x needs 3.11+) and resolved opentelemetry-api/sdk 1.45.2, which our
``opentelemetry-sdk>=1.24`` admits.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "auto_instrumentation"


def _example_pins(family: str) -> tuple[str, ...]:
    """The pins of a family that has an example: its requirements file, which users install."""
    path = EXAMPLES / f"requirements-{family}.txt"
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return tuple(line for line in lines if line)


# Shared by every family: the OpenTelemetry core and the real OpenAI client.
_CORE = (
    "openai==3.63.0",
    "opentelemetry-api==1.45.2",
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-instrumentation==0.66b2",
    "opentelemetry-semantic-conventions==0.66b2",
    "pytest>=7,<9",
)

# The OpenAI requests every family records; OpenInference adds its LangChain cases.
OPENAI_CASES = ("chat", "stream", "tools", "tools-stream")
LANGCHAIN_CASES = ("langchain-chat", "langchain-tool", "langchain-chain")


@dataclass(frozen=True)
class Mode:
    """One content setting of a family: environment variables and instrumentor keyword args."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    options: dict[str, bool] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Family:
    name: str
    pins: tuple[str, ...]
    modes: tuple[Mode, ...]
    cases: tuple[str, ...] = OPENAI_CASES
    note: str = ""


_LATEST = {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental"}
_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="openai-v2",
            note="OpenTelemetry's own: opentelemetry.instrumentation.openai_v2.OpenAIInstrumentor",
            # Why these: examples/auto_instrumentation/requirements-openai-v2.txt says.
            pins=(*_example_pins("openai-v2"), "pytest>=7,<9"),
            modes=(
                Mode("legacy-nocontent", note="the default: semconv 1.30, no content"),
                Mode("legacy-content", {_CONTENT: "true"}, note="semconv 1.30, content in logs"),
                Mode("latest-nocontent", dict(_LATEST), note="latest semconv, no content"),
                Mode("latest-span_only", {**_LATEST, _CONTENT: "SPAN_ONLY"}),
                Mode("latest-event_only", {**_LATEST, _CONTENT: "EVENT_ONLY"}),
                Mode("latest-span_and_event", {**_LATEST, _CONTENT: "SPAN_AND_EVENT"}),
            ),
        ),
        Family(
            name="openllmetry",
            note="Traceloop's: opentelemetry.instrumentation.openai.OpenAIInstrumentor",
            pins=(*_CORE, "opentelemetry-instrumentation-openai==0.62.4"),
            modes=(
                Mode("attributes", note="the default: content as span attributes"),
                Mode(
                    "events",
                    options={"use_attributes": False},
                    note="use_attributes=False (use_legacy_attributes=False): content in logs",
                ),
                Mode("nocontent", {"TRACELOOP_TRACE_CONTENT": "false"}),
            ),
        ),
        Family(
            name="openllmetry-legacy",
            note="OpenLLMetry 0.54.0, the last release writing gen_ai.prompt.N.* / llm.* keys",
            pins=(*_CORE, "opentelemetry-instrumentation-openai==0.54.0"),
            modes=(
                Mode("attributes", note="the default: gen_ai.prompt.N.* / gen_ai.completion.N.*"),
                Mode(
                    "events",
                    options={"use_legacy_attributes": False},
                    note="use_legacy_attributes=False: content in logs",
                ),
                Mode("nocontent", {"TRACELOOP_TRACE_CONTENT": "false"}),
            ),
        ),
        Family(
            name="openinference",
            note="Arize's: openinference.instrumentation.{openai,langchain}",
            pins=(*_example_pins("openinference"), "pytest>=7,<9"),
            modes=(
                Mode("default"),
                Mode(
                    "genai",
                    {"OPENINFERENCE_ENABLE_GENAI_SEMCONV": "true"},
                    note="gen_ai.* attributes alongside OpenInference's",
                ),
            ),
            cases=(*OPENAI_CASES, *LANGCHAIN_CASES),
        ),
    )
}


def main(argv: list[str]) -> int:
    """``families.py pins FAMILY``: the family's pins, one a line; ``families.py names``."""
    if argv[:1] == ["names"]:
        sys.stdout.write("".join(name + "\n" for name in FAMILIES))
        return 0
    if len(argv) == 2 and argv[0] == "pins" and argv[1] in FAMILIES:
        sys.stdout.write("".join(pin + "\n" for pin in FAMILIES[argv[1]].pins))
        return 0
    sys.stderr.write(f"usage: families.py names | pins {{{','.join(FAMILIES)}}}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
