"""``tcc-otel doctor``'s look at the GenAI instrumentations installed (``_cli._genai``)."""

from __future__ import annotations

import pytest

from tcc_otel._cli._genai import CONTRIB_CONTENT, CONTRIB_LATEST, Found, Installed, findings

V2 = Installed(
    "opentelemetry-instrumentation-openai-v2",
    "2.4b0",
    frozenset({"opentelemetry-util-genai", "opentelemetry-api"}),
)
TRACELOOP = Installed(
    "opentelemetry-instrumentation-openai",
    "0.62.4",
    frozenset({"opentelemetry-semantic-conventions-ai"}),
)
ARIZE = Installed("openinference-instrumentation-langchain", "0.1.80", frozenset())
OTHERS = [
    Installed("opentelemetry-instrumentation-requests", "0.59b0", frozenset()),
    Installed("openinference-instrumentation", "0.1.72", frozenset()),  # the shared base
    Installed("requests", "2.32.0", frozenset()),
]


def content_of(dist: Installed, env: dict[str, str]) -> str:
    (found,) = findings([dist, *OTHERS], env)
    return found.content


def test_families_and_nothing_else() -> None:
    found = findings([ARIZE, TRACELOOP, V2, *OTHERS], {})
    assert [(f.package, f.version, f.family) for f in found] == [
        ("openinference-instrumentation-langchain", "0.1.80", "openinference"),
        ("opentelemetry-instrumentation-openai", "0.62.4", "openllmetry"),
        ("opentelemetry-instrumentation-openai-v2", "2.4b0", "opentelemetry"),
    ]
    assert all(isinstance(f, Found) for f in found)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "not recorded: set " + CONTRIB_CONTENT + "=SPAN_ONLY"),
        ({CONTRIB_CONTENT: "true"}, "in log records: the application needs an SDK LoggerProvider"),
        (
            {CONTRIB_CONTENT: "SPAN_ONLY", CONTRIB_LATEST: "gen_ai_latest_experimental"},
            "on the span",
        ),
        ({CONTRIB_CONTENT: "EVENT_ONLY"}, "in log records"),
        ({CONTRIB_CONTENT: "maybe"}, "is not a value it knows"),
        (
            {CONTRIB_CONTENT: "SPAN_ONLY", "TCC_CAPTURE_CONTENT": "false"},
            "TCC_CAPTURE_CONTENT is off",
        ),
    ],
)
def test_opentelemetry_content_settings(env: dict[str, str], says: str) -> None:
    assert says in content_of(V2, env)


def test_openllmetry_and_openinference() -> None:
    assert content_of(TRACELOOP, {}).startswith("on the span")
    assert "TRACELOOP_TRACE_CONTENT=false" in content_of(
        TRACELOOP, {"TRACELOOP_TRACE_CONTENT": "false"}
    )
    assert content_of(ARIZE, {}) == "on the span"
    assert content_of(ARIZE, {"OPENINFERENCE_HIDE_OUTPUTS": "true"}) == (
        "partly hidden: OPENINFERENCE_HIDE_OUTPUTS=true"
    )
