"""Render received spans as a readable run tree. Pure functions: text in, text out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tcc_otel._local._model import ReceivedSpan, SpanKey
from tcc_otel._local._rollup import Totals, totals, usage_of
from tcc_otel._local._runs import group_runs
from tcc_otel._local._values import as_count, as_number
from tcc_otel._schema import _keys as attrs
from tcc_otel._schema._kinds import is_run, run_id_of

_RED = "\x1b[31m"
_DIM = "\x1b[2m"
_RESET = "\x1b[0m"
_MAX_TEXT = 80
"""Longest name, model or message shown; longer text is cut with an ellipsis."""


def render_run(spans: Sequence[ReceivedSpan], *, color: bool = False) -> str:
    """Render spans as trees, one line per span, without a trailing newline.

    Roots are the spans whose parent is not among ``spans``; roots and siblings are ordered by
    start time. Each line shows the name, duration and status, then when present: the run id,
    model, tokens (input→output), cost, finish reason, tool name and error message. A run span
    shows its run's tokens and cost (``_rollup.totals``). Columns are aligned across lines.

    Args:
        spans: The spans to draw, in any order.
        color: Use ANSI colors: red for errors, dim for ids.
    """
    ordered = sorted(spans, key=lambda s: (s.start_ns, s.name, s.span_id))
    ids = {(span.trace_id, span.span_id) for span in ordered}
    children: dict[tuple[str, str], list[ReceivedSpan]] = {}
    roots: list[ReceivedSpan] = []
    for span in ordered:
        parent = span.parent_span_id
        if parent is not None and (span.trace_id, parent) in ids and parent != span.span_id:
            children.setdefault((span.trace_id, parent), []).append(span)
        else:
            roots.append(span)

    rows: list[tuple[str, ReceivedSpan]] = []
    placed: set[int] = set()
    for root in roots + ordered:  # spans caught in a parent cycle have no root: shown as roots
        if id(root) not in placed:
            _place(root, children, rows, placed)

    return _format_rows(rows, _run_totals(spans), color)


def _run_totals(spans: Sequence[ReceivedSpan]) -> dict[SpanKey, Totals]:
    """Each run span's run totals, over the spans of its run among ``spans``."""
    found: dict[SpanKey, Totals] = {}
    for group in group_runs(spans).values():
        heads = [span for span in group if is_run(span.attributes)]
        if heads:
            usages = [usage_of(span.attributes) for span in group]
            run = totals(usage for usage in usages if usage is not None)
            found.update((head.key, run) for head in heads)
    return found


def _place(
    root: ReceivedSpan,
    children: Mapping[tuple[str, str], list[ReceivedSpan]],
    rows: list[tuple[str, ReceivedSpan]],
    placed: set[int],
) -> None:
    """Append ``root`` and its descendants depth-first, with box-drawing prefixes."""
    stack: list[tuple[ReceivedSpan, str, str]] = [(root, "", "")]
    while stack:  # a loop, not recursion: a deep chain of spans must not exhaust the stack
        span, lead, connector = stack.pop()
        if id(span) in placed:
            continue
        placed.add(id(span))
        rows.append((lead + connector, span))
        kids = [k for k in children.get((span.trace_id, span.span_id), []) if id(k) not in placed]
        deeper = lead + ("" if not connector else "   " if connector == "└─ " else "│  ")
        for index in reversed(range(len(kids))):
            stack.append((kids[index], deeper, "└─ " if index == len(kids) - 1 else "├─ "))


def _format_rows(
    rows: list[tuple[str, ReceivedSpan]], run_totals: Mapping[SpanKey, Totals], color: bool
) -> str:
    lefts = [prefix + _clean(span.name) for prefix, span in rows]
    durations = [_duration(span.duration_ms) for _, span in rows]
    statuses = ["ERROR" if span.status_code == "ERROR" else "OK" for _, span in rows]
    left_width = max((len(text) for text in lefts), default=0)
    duration_width = max((len(text) for text in durations), default=0)
    status_width = max((len(text) for text in statuses), default=0)
    lines: list[str] = []
    for (_, span), left, duration, status in zip(rows, lefts, durations, statuses):
        status_cell = status.ljust(status_width)
        if color and status == "ERROR":
            status_cell = _RED + status + _RESET + status_cell[len(status) :]
        cells = [left.ljust(left_width), duration.rjust(duration_width), status_cell]
        cells.extend(_details(span, run_totals.get(span.key), color))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _details(span: ReceivedSpan, run: Totals | None, color: bool) -> list[str]:
    """The detail cells of one line; ``run`` holds the totals when ``span`` is a run span."""
    values = span.attributes
    details: list[str] = []
    run_id = run_id_of(values)
    if run_id is not None and is_run(values):
        short = _clean(run_id)
        short = short if len(short) <= 8 else short[:8] + "…"
        details.append("run " + (_DIM + short + _RESET if color else short))
    model = _text(values.get(attrs.GEN_AI_RESPONSE_MODEL)) or _text(
        values.get(attrs.GEN_AI_REQUEST_MODEL)
    )
    if model and not span.name.endswith(" " + model):  # "chat gpt-4o" already names it
        details.append("model " + model)
    if run is None:
        tokens_in = as_count(values.get(attrs.GEN_AI_USAGE_INPUT_TOKENS))
        tokens_out = as_count(values.get(attrs.GEN_AI_USAGE_OUTPUT_TOKENS))
        cost = as_number(values.get(attrs.STEP_REAL_TOTAL_COST))
    else:
        tokens_in, tokens_out, _, cost = run
    if tokens_in is not None or tokens_out is not None:
        details.append(f"tokens {_or_unknown(tokens_in)}→{_or_unknown(tokens_out)}")
    if cost is not None:
        details.append("cost " + _dollars(cost))
    finish = _text(values.get(attrs.STEP_FINISH_REASON))
    if not finish:
        reasons = values.get(attrs.GEN_AI_RESPONSE_FINISH_REASONS)
        if isinstance(reasons, list):
            finish = ",".join(_text(reason) for reason in reasons)
    if finish:
        details.append("finish " + finish)
    tool = _text(values.get(attrs.GEN_AI_TOOL_NAME))
    if tool and not span.name.endswith(" " + tool):  # "execute_tool search" already names it
        details.append("tool " + tool)
    if span.status_code == "ERROR" and span.status_message:
        message = "error: " + _clean(span.status_message)
        details.append(_RED + message + _RESET if color else message)
    return details


def _duration(ms: float) -> str:
    ms = max(ms, 0.0)
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.2f} s"


def _dollars(cost: float) -> str:
    digits = f"{cost:.6f}".rstrip("0")
    whole, _, fraction = digits.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def _or_unknown(value: int | None) -> str:
    return "?" if value is None else str(value)


def _text(value: Any) -> str:
    return _clean(value) if isinstance(value, str) else ""


def _clean(text: str) -> str:
    """Make network-supplied text safe for one terminal line: no control characters, bounded."""
    text = "".join(char if char.isprintable() else " " for char in text)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"
