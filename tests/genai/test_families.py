"""The GenAI instrumentations teams already run, with the real packages, beside tcc_otel.

Each family lives in its own venv (``tests/genai/venv.sh``, built on first use, reused after);
each case runs ``scenario.py`` there: an application with its own global SDK tracer and logger
providers, the family's instrumentors, and one ``tcc.run()`` in the default mode around real
``openai`` (or LangChain) calls to ``FakeOpenAI``. TCC's side is a loopback receiver here that
keeps duplicates. Checked for every case: one step per LLM request (tool calls for tool spans),
nothing sent twice, run totals = the sum over steps, what the dev receiver's tree and store
compute agrees, and the team's exporter got a whole tree with its instrumentation's spans as
written (plus ``tcc.runId``).

Outside CI a family whose venv cannot be built (no package index) is skipped; with ``CI=true`` it
fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tcc_otel._local._model import ReceivedSpan
from tcc_otel._local._server import Receiver
from tcc_otel._local._store import Store
from tcc_otel._local._tree import _run_totals
from tcc_otel._schema import _keys as keys

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUN_ID = "run-genai"
HANG_GUARD = 180.0
"""Seconds a venv build or a scenario may take before it is considered hung (a guard)."""

QUESTION = "What is OpenTelemetry?"
ASYNC_QUESTIONS = (QUESTION, "What is a span?")
"""The questions of case ``async`` (``scenario.py``), asked at once."""
WEATHER = "What is the weather in Paris?"
REQUESTS = {
    "chat": 1,
    "stream": 1,
    "tools": 2,
    "async": 2,
    "langchain-chat": 1,
    "langchain-tool": 2,
}
"""LLM requests each case makes."""


class Case(NamedTuple):
    family: str
    mode: str
    style: str
    case: str
    content: bool = True
    """Whether the instrumentation records content in this mode."""

    @property
    def id(self) -> str:
        return "-".join(self[:4])


CASES = [
    # openai-v2: content in log records (legacy), on the span, or in one details log record
    Case("openai-v2", "legacy-content", "auto", "chat"),
    Case("openai-v2", "legacy-content", "auto", "tools"),
    Case("openai-v2", "legacy-nocontent", "auto", "chat", content=False),
    Case("openai-v2", "latest-span_only", "auto", "stream"),
    Case("openai-v2", "latest-event_only", "auto", "tools"),
    Case("openai-v2", "latest-span_and_event", "wrapped", "tools"),
    Case("openai-v2", "latest-event_only", "bare", "chat"),
    Case("openai-v2", "latest-span_only", "bare", "async"),
    Case("openai-v2", "legacy-content", "wrapped", "async"),
    # OpenLLMetry: content as attributes (new and old shapes) or log events
    Case("openllmetry", "attributes", "auto", "stream"),
    Case("openllmetry", "attributes", "wrapped", "chat"),
    Case("openllmetry", "events", "auto", "tools"),
    Case("openllmetry", "events", "bare", "chat"),
    Case("openllmetry-legacy", "attributes", "auto", "tools"),
    Case("openllmetry-legacy", "attributes", "bare", "stream"),
    # OpenInference: openai and LangChain
    Case("openinference", "default", "auto", "chat"),
    Case("openinference", "default", "auto", "stream"),
    Case("openinference", "default", "wrapped", "tools"),
    Case("openinference", "default", "auto", "langchain-tool"),
    Case("openinference", "default", "bare", "langchain-chat"),
    Case("openinference", "default", "auto", "async"),
    Case("openllmetry", "attributes", "bare", "async"),
]


@pytest.fixture(scope="session")
def venvs() -> dict[str, Path]:
    """Family -> its venv, built once per session (and kept between sessions)."""
    return {}


def venv_of(family: str, built: dict[str, Path]) -> Path:
    if family in built:
        return built[family]
    done = subprocess.run(
        ["bash", str(HERE / "venv.sh"), family],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD * 3,
        check=False,
    )
    if done.returncode != 0:
        message = f"cannot build the {family} venv: {done.stderr.strip()[-2000:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    built[family] = Path(done.stdout.strip().splitlines()[-1])
    return built[family]


class Result(NamedTuple):
    tcc: list[ReceivedSpan]
    team: list[dict[str, Any]]
    stats: dict[str, Any]

    def of_type(self, kind: str) -> list[ReceivedSpan]:
        return [s for s in self.tcc if s.attributes.get(keys.TCC_TYPE) == kind]

    @property
    def run(self) -> ReceivedSpan:
        (run,) = self.of_type("run")
        return run


def run_traced(python: Path, *args: str) -> tuple[list[ReceivedSpan], str]:
    """Run ``python args...`` with TCC_BASE_URL at a loopback receiver of our own; what the
    receiver got, and what the process printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TCC_"))}
    env["TCC_OTEL_RAISE_INTERNAL_ERRORS"] = "1"
    with Receiver(port=0) as receiver:
        env["TCC_BASE_URL"] = receiver.url
        done = subprocess.run(
            [str(python), *args],
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        return list(receiver.spans), done.stdout


def scenario(case: Case, built: dict[str, Path]) -> Result:
    python = venv_of(case.family, built) / "bin" / "python"
    spans, stdout = run_traced(python, str(HERE / "scenario.py"), *case[:4])
    out = json.loads(stdout)
    assert out["flushed"], out
    return Result(spans, out["team_spans"], out["stats"])


@pytest.fixture(scope="session")
def results() -> dict[Case, Result]:
    """Each case runs once; its four tests read the same result."""
    return {}


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def result(
    request: pytest.FixtureRequest, venvs: dict[str, Path], results: dict[Case, Result]
) -> tuple[Case, Result]:
    case: Case = request.param
    if case not in results:
        results[case] = scenario(case, venvs)
    return case, results[case]


def test_each_request_is_one_step(result: tuple[Case, Result]) -> None:
    case, got = result
    assert got.stats["dropped"] == 0
    ids = [s.span_id for s in got.tcc]
    assert len(ids) == len(set(ids)), "a span reached TCC twice"
    steps = got.of_type("step")
    assert len(steps) == REQUESTS[case.case]
    assert len(got.of_type("tool_call")) == (1 if case.case == "langchain-tool" else 0)
    for step in steps:
        values = step.attributes
        assert values[keys.GEN_AI_USAGE_INPUT_TOKENS] > 0
        assert values[keys.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
        assert values.get(keys.STEP_MODEL_USED) or values.get(keys.STEP_MODEL_REQUESTED)
        if case.style == "wrapped":
            assert values[keys.STEP_PROMPT] == "manual prompt"
            assert values[keys.STEP_RESPONSE] == "manual response"
        elif case.content:
            assert values[keys.STEP_PROMPT]
            assert values[keys.STEP_RESPONSE]
            assert json.loads(values[keys.GEN_AI_INPUT_MESSAGES])
        else:
            assert keys.STEP_PROMPT not in values
    if case.family != "openai-v2":  # openai-v2 records no cached tokens (README)
        assert all(s.attributes[keys.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] > 0 for s in steps)
    if case.case == "stream" and case.family != "openai-v2":  # it records no first token
        # time to first token: the instrumentation's per-chunk (or first-token) span events, on
        # the step, or on the call's span below a manual step
        for step in steps:
            below = [s for s in got.tcc if s.parent_span_id == step.span_id]
            assert step.events or any(s.events for s in below), "the stream's events were lost"
    if case.case == "async" and case.content and case.style != "wrapped":
        # each task's step took its own call, not the other task's
        assert sorted(s.attributes[keys.STEP_PROMPT] for s in steps) == sorted(ASYNC_QUESTIONS)
    elif case.content and case.style != "wrapped":
        first = steps[0].attributes
        question = WEATHER if case.case in ("tools", "langchain-tool") else QUESTION
        assert first[keys.STEP_PROMPT] == question


def test_instrumented_calls_in_a_manual_step_are_plain(result: tuple[Case, Result]) -> None:
    """Wrapped or bare: the instrumentation's LLM span is a plain child of the step at TCC."""
    case, got = result
    ours = {s.span_id for s in got.tcc if keys.TCC_TYPE in s.attributes}
    for span in got.tcc:
        if span.span_id in ours:
            continue
        if case.style == "auto":
            continue
        assert not any(
            k.startswith(("gen_ai.", "llm.", "openinference.")) for k in span.attributes
        ), span.name
    if case.style != "auto":
        step_ids = {s.span_id for s in got.of_type("step")}
        llm_children = [s for s in got.tcc if s.parent_span_id in step_ids]
        assert len(llm_children) >= REQUESTS[case.case]


def test_run_totals_count_each_step_once(result: tuple[Case, Result]) -> None:
    case, got = result
    steps = [s.attributes for s in got.of_type("step")]
    run = got.run.attributes
    for key in (keys.GEN_AI_USAGE_INPUT_TOKENS, keys.GEN_AI_USAGE_OUTPUT_TOKENS):
        assert run[key] == sum(step[key] for step in steps)
    if case.case == "chat" and case.family != "openinference":
        assert (run[keys.GEN_AI_USAGE_INPUT_TOKENS], run[keys.GEN_AI_USAGE_OUTPUT_TOKENS]) == (
            16,
            4,
        )
    store = Store(":memory:")
    try:
        store.add(got.tcc)
        found = store.run(RUN_ID)
    finally:
        store.close()
    assert found is not None
    summary = found["run"]
    assert (summary["input_tokens"], summary["output_tokens"]) == (
        run[keys.GEN_AI_USAGE_INPUT_TOKENS],
        run[keys.GEN_AI_USAGE_OUTPUT_TOKENS],
    )
    (tree,) = _run_totals(got.tcc).values()
    assert (tree.input_tokens, tree.output_tokens) == (
        summary["input_tokens"],
        summary["output_tokens"],
    )


def test_team_tree_is_whole(result: tuple[Case, Result]) -> None:
    """The team's exporter: no span points at a parent it never got; ours are there once; the
    instrumentation's spans carry nothing of ours but ``tcc.runId``."""
    _, got = result
    ids = [s["span_id"] for s in got.team]
    assert len(ids) == len(set(ids))
    orphans = [s["name"] for s in got.team if s["parent_id"] and s["parent_id"] not in ids]
    assert orphans == []
    ours = sorted(s["name"] for s in got.team if s["scope"] == "tcc_otel")
    sent = sorted(
        s.name for s in got.tcc if keys.TCC_TYPE in s.attributes and s.scope_name == "tcc_otel"
    )
    assert ours == sent
    for span in got.team:
        if span["scope"] == "tcc_otel":
            continue
        assert span["attributes"]["tcc.runId"] == RUN_ID
        assert [k for k in span["attributes"] if k.startswith("tcc.")] == ["tcc.runId"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


EXAMPLES = ROOT / "examples" / "auto_instrumentation"


@pytest.mark.parametrize(
    ("family", "script", "steps", "tool_calls"),
    [("openai-v2", "openai_agent.py", 2, 1), ("openinference", "langchain_agent.py", 2, 1)],
)
def test_examples(
    family: str, script: str, steps: int, tool_calls: int, venvs: dict[str, Path]
) -> None:
    """The README's examples run as documented: one step per LLM call, the run's totals."""
    python = venv_of(family, venvs) / "bin" / "python"
    spans, _ = run_traced(python, str(EXAMPLES / script))
    got = Result(spans, [], {})
    assert (len(got.of_type("step")), len(got.of_type("tool_call"))) == (steps, tool_calls)
    run = got.run.attributes
    assert run[keys.GEN_AI_USAGE_INPUT_TOKENS] == sum(
        s.attributes[keys.GEN_AI_USAGE_INPUT_TOKENS] for s in got.of_type("step")
    )


@pytest.mark.parametrize(
    ("family", "package", "family_name"),
    [
        ("openai-v2", "opentelemetry-instrumentation-openai-v2", "opentelemetry"),
        ("openllmetry", "opentelemetry-instrumentation-openai", "openllmetry"),
        ("openinference", "openinference-instrumentation-langchain", "openinference"),
    ],
)
def test_doctor_names_the_instrumentation(
    family: str, package: str, family_name: str, venvs: dict[str, Path]
) -> None:
    """``tcc-otel doctor`` in the family's venv lists it and says where its content goes."""
    doctor = venv_of(family, venvs) / "bin" / "tcc-otel"
    _, stdout = run_traced(doctor, "doctor", "--json", "--timeout", "5")
    found = {f["package"]: f for f in json.loads(stdout)["instrumentations"]}
    assert found[package]["family"] == family_name
    assert found[package]["content"]
