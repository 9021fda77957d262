"""``tcc-otel doctor``'s look at the GenAI instrumentations installed beside tcc_otel: which
family each belongs to, and whether, with the environment as it is, its calls will reach TCC
with their prompts and responses (see the README, "With auto-instrumentation")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import NamedTuple

CONTRIB_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
CONTRIB_LATEST = "OTEL_SEMCONV_STABILITY_OPT_IN"
_CONTRIB = frozenset(
    {
        "opentelemetry-instrumentation-openai-v2",
        "opentelemetry-instrumentation-google-genai",
        "opentelemetry-instrumentation-vertexai",
    }
)
_SPAN_MODES = frozenset({"span_only", "span_and_event"})
_LOG_MODES = frozenset({"true", "event_only", "span_and_event"})


class Found(NamedTuple):
    """One installed instrumentation and what it means for TCC."""

    package: str
    version: str
    family: str
    """``opentelemetry`` (contrib GenAI), ``openllmetry`` or ``openinference``."""
    content: str
    """How its prompts and responses reach TCC, or why they do not."""


class Installed(NamedTuple):
    """An installed distribution: name, version and the names it requires."""

    name: str
    version: str
    requires: frozenset[str]


def installed() -> list[Installed]:
    """The distributions of this environment."""
    found = []
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        requires = frozenset(_requirement_name(r) for r in dist.requires or ())
        found.append(Installed(name, dist.version, requires))
    return found


def _requirement_name(requirement: str) -> str:
    name = requirement.split(";")[0].strip()
    for stop in "<>=!~[ (":
        name = name.split(stop)[0]
    return name.lower()


def findings(dists: Iterable[Installed], env: Mapping[str, str]) -> list[Found]:
    """The GenAI instrumentations among ``dists``, with what ``env`` makes of their content."""
    out = []
    for dist in sorted(dists):
        family = _family(dist)
        if family is not None:
            out.append(Found(dist.name, dist.version, family, _content(family, env)))
    return out


def _family(dist: Installed) -> str | None:
    name = dist.name
    if name in _CONTRIB or "opentelemetry-util-genai" in dist.requires:
        return "opentelemetry"
    if name.startswith("openinference-instrumentation-"):
        return "openinference"
    if name.startswith("opentelemetry-instrumentation-") and (
        "opentelemetry-semantic-conventions-ai" in dist.requires
    ):
        return "openllmetry"
    return None


def _content(family: str, env: Mapping[str, str]) -> str:
    if env.get("TCC_CAPTURE_CONTENT", "").strip().lower() in ("0", "false", "no", "off"):
        return "kept out of TCC's copy: TCC_CAPTURE_CONTENT is off"
    if family == "opentelemetry":
        mode = env.get(CONTRIB_CONTENT, "").strip().lower()
        latest = "gen_ai_latest_experimental" in env.get(CONTRIB_LATEST, "")
        if not mode or mode == "false" or mode == "no_content":
            return (
                f"not recorded: set {CONTRIB_CONTENT}=SPAN_ONLY and "
                f"{CONTRIB_LATEST}=gen_ai_latest_experimental"
            )
        if latest and mode in _SPAN_MODES:
            return "on the span"
        if mode in _LOG_MODES:
            return "in log records: the application needs an SDK LoggerProvider"
        return f"{CONTRIB_CONTENT}={env[CONTRIB_CONTENT]!r} is not a value it knows"
    if family == "openllmetry":
        if env.get("TRACELOOP_TRACE_CONTENT", "").strip().lower() == "false":
            return "not recorded: TRACELOOP_TRACE_CONTENT=false"
        return "on the span (unless the instrumentor was made with use_attributes=False)"
    hidden = [
        name
        for name in ("OPENINFERENCE_HIDE_INPUTS", "OPENINFERENCE_HIDE_OUTPUTS")
        if env.get(name, "").strip().lower() == "true"
    ]
    if hidden:
        return "partly hidden: " + ", ".join(f"{name}=true" for name in hidden)
    return "on the span"
