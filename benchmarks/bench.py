"""Side-by-side benchmark: tcc_otel vs raw OpenTelemetry SDK spans vs ``contextcompany``.

Same workload for every contender (1 run + 3 steps + 2 tool calls per run, ~13.6 KB of content
built once with a fixed seed), all pointed at one loopback sink (``benchmarks/sink.py``) running in
its own process. Each contender runs in fresh subprocesses, one after another: one for the closed
loop and the paced loop, one for the burst (so its peak RSS is the burst's alone) and one for the
burst with new content strings every run (as real agents record them). The cost extra
(``genai-prices``) is hidden in every child, so tcc_otel writes what the raw contender writes.

    python benchmarks/bench.py            # the full thing (what `make bench` runs)
    python benchmarks/bench.py --quick    # a ~15 s smoke run
    python benchmarks/bench.py --only tcc,raw-bsp --runs 500 --paced-runs 100 --burst 5000

Prints a Markdown report and writes it to ``benchmarks/results.md``; see benchmarks/README.md
for what each column means.
"""

from __future__ import annotations

import argparse
import functools
import gc
import http.client
import importlib
import importlib.util
import itertools
import json
import math
import os
import platform
import random
import re
import resource
import shlex
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import Tracer

HERE = Path(__file__).resolve().parent
SPANS_PER_RUN = 6  # 1 run + 3 steps + 2 tool calls
STEPS_PER_RUN = 3
SEED = 20240613
API_KEY = "bench-key"
FLUSH_TIMEOUT = 120.0  # seconds a contender may take to deliver what it has queued
CHILD_TIMEOUT = 900.0  # seconds one child process may take before it is killed

TCC = "tcc"
TCC_ONCE = "tcc-once"
TCC_ZLIB = "tcc-zlib"
RAW_BSP = "raw-bsp"
RAW_NOPROC = "raw-noproc"
CC = "contextcompany"
CONTENDERS = (TCC, TCC_ZLIB, TCC_ONCE, RAW_BSP, RAW_NOPROC, CC)
ALIASES = {"tcc_otel": TCC, "raw": RAW_BSP, "cc": CC, "raw-noproc": RAW_NOPROC}
LABELS = {
    TCC: "tcc_otel (default pipeline, tcc-otel[fast] installed)",
    TCC_ZLIB: "tcc_otel, plain install (no tcc-otel[fast]: zlib's gzip)",
    TCC_ONCE: "tcc_otel, opt-in content_once=True (GenAI names only)",
    RAW_BSP: "raw OTel SDK + BatchSpanProcessor + OTLP/HTTP",
    RAW_NOPROC: "raw OTel SDK spans, no processor",
    CC: "contextcompany 2.0.0 (blocking POST per .end())",
}

# --- the workload's content, built once --------------------------------------------------------

# Characters of each content string; all ASCII, so characters are bytes.
SIZES = {
    "system_prompt": 1200,
    "user_prompt": 600,
    "response": 1000,
    "step_prompt": 1500,  # x3 steps
    "step_response": 700,  # x3 steps
    "tool_definitions": 800,  # one string, sent by each of the 3 steps
    "tool_args": 150,  # x2 tool calls
    "tool_result": 750,  # x2 tool calls
}
_VOCABULARY = (
    "the weather agent checks forecast for city and returns temperature wind humidity "
    "rain chance pressure visibility sunrise sunset alerts outlook tomorrow today week "
    "please answer in short sentences using metric units when the user asks about travel "
    "plans clothing umbrella cold warm front storm coast mountain valley river morning "
    "evening night cloud cover snow fog breeze gust degrees celsius percent kilometres"
)
_WORDS = _VOCABULARY.split()
_FILL = "@@FILL@@"


def _text(rng: random.Random, size: int) -> str:
    words: list[str] = []
    length = -1
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    text = " ".join(words)[:size]
    return text[:-1] + "." if text.endswith(" ") else text


def _json_of_size(rng: random.Random, template: Any, size: int) -> str:
    """``template`` as JSON, its one ``_FILL`` string padded so the JSON is ``size`` chars."""
    skeleton = json.dumps(template)
    out = skeleton.replace(_FILL, _text(rng, size - (len(skeleton) - len(_FILL))))
    assert len(out) == size, (len(out), size)
    return out


@dataclass(frozen=True)
class Content:
    """Every value the workload records, identical for every contender and every run."""

    session_id: str
    agent: str
    system_prompt: str
    user_prompt: str
    response: str
    step_prompts: tuple[str, ...]
    step_responses: tuple[str, ...]
    tool_definitions: str
    tool_name: str
    tool_args: tuple[str, ...]
    tool_results: tuple[str, ...]
    model_requested: str
    model_used: str
    tokens: tuple[tuple[int, int, int], ...]  # (prompt_uncached, prompt_cached, completion)
    costs: tuple[float, ...]
    finish_reasons: tuple[str, ...]

    def bytes_per_run(self) -> int:
        """UTF-8 bytes of content one run records (tool definitions once per step)."""
        texts = [
            self.system_prompt,
            self.user_prompt,
            self.response,
            *self.step_prompts,
            *self.step_responses,
            *([self.tool_definitions] * STEPS_PER_RUN),
            *self.tool_args,
            *self.tool_results,
        ]
        return sum(len(text.encode()) for text in texts)


def build_content(seed: int = SEED) -> Content:
    rng = random.Random(seed)
    tool_template = [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": _FILL if name == "get_weather" else "Look up a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "units": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
        for name in ("get_weather", "find_city")
    ]
    cities = ("Paris", "Lisbon")
    return Content(
        session_id="bench-session-0001",
        agent="weather",
        system_prompt=_text(rng, SIZES["system_prompt"]),
        user_prompt=_text(rng, SIZES["user_prompt"]),
        response=_text(rng, SIZES["response"]),
        step_prompts=tuple(_text(rng, SIZES["step_prompt"]) for _ in range(STEPS_PER_RUN)),
        step_responses=tuple(_text(rng, SIZES["step_response"]) for _ in range(STEPS_PER_RUN)),
        tool_definitions=_json_of_size(rng, tool_template, SIZES["tool_definitions"]),
        tool_name="get_weather",
        tool_args=tuple(
            _json_of_size(rng, {"city": city, "units": "metric", "note": _FILL}, SIZES["tool_args"])
            for city in cities
        ),
        tool_results=tuple(
            _json_of_size(
                rng, {"city": city, "temp_c": 18.5, "forecast": _FILL}, SIZES["tool_result"]
            )
            for city in cities
        ),
        model_requested="gpt-4o",
        model_used="gpt-4o-2024-08-06",
        tokens=tuple((812 + 37 * i, 1024, 160 + 20 * i) for i in range(STEPS_PER_RUN)),
        costs=tuple(0.0041 + 0.001 * i for i in range(STEPS_PER_RUN)),
        finish_reasons=("tool_call", "tool_call", "stop"),
    )


# --- new content strings every run (the "new strings" burst) ------------------------------------

TAG_WIDTH = 8  # digits of the run number written into every content string of a run
_PLAIN_RUN = re.compile(r"[a-z .]+")


def _split_for_tag(text: str) -> tuple[str, str]:
    """``text`` cut around ``TAG_WIDTH`` characters at the start of its longest run of plain
    words (inside a JSON string value for the JSON contents): ``head + tag + tail`` is a new
    string of the same length, still valid JSON where ``text`` was."""
    longest = max(_PLAIN_RUN.finditer(text), key=lambda match: match.end() - match.start())
    if longest.end() - longest.start() < TAG_WIDTH:
        raise ValueError(f"no room for a {TAG_WIDTH}-digit tag in {text[:40]!r}")
    return text[: longest.start()], text[longest.start() + TAG_WIDTH :]


class FreshContents:
    """For run ``i``, a ``Content`` whose 14 content strings (prompts, responses, system prompt,
    tool definitions, tool arguments and results) are new string objects with new text: the
    fixed content with ``i`` written over ``TAG_WIDTH`` characters of each, same sizes. Session
    id, agent, model names, token counts and costs stay as they are (they repeat in real use).

    One join per string: ~14 allocations and ~13.6 KB copied per run, a few µs, the same for
    every contender; the child times it alone and leaves it out of the runs' timings."""

    def __init__(self, base: Content) -> None:
        self.base = base
        self._system = _split_for_tag(base.system_prompt)
        self._user = _split_for_tag(base.user_prompt)
        self._response = _split_for_tag(base.response)
        self._tools = _split_for_tag(base.tool_definitions)
        self._step_prompts = tuple(map(_split_for_tag, base.step_prompts))
        self._step_responses = tuple(map(_split_for_tag, base.step_responses))
        self._tool_args = tuple(map(_split_for_tag, base.tool_args))
        self._tool_results = tuple(map(_split_for_tag, base.tool_results))

    def build(self, i: int) -> Content:
        tag = f"{i:0{TAG_WIDTH}d}"[-TAG_WIDTH:]
        b = self.base
        return Content(
            session_id=b.session_id,
            agent=b.agent,
            system_prompt=tag.join(self._system),
            user_prompt=tag.join(self._user),
            response=tag.join(self._response),
            step_prompts=tuple(tag.join(parts) for parts in self._step_prompts),
            step_responses=tuple(tag.join(parts) for parts in self._step_responses),
            tool_definitions=tag.join(self._tools),
            tool_name=b.tool_name,
            tool_args=tuple(tag.join(parts) for parts in self._tool_args),
            tool_results=tuple(tag.join(parts) for parts in self._tool_results),
            model_requested=b.model_requested,
            model_used=b.model_used,
            tokens=b.tokens,
            costs=b.costs,
            finish_reasons=b.finish_reasons,
        )


# --- the workload, written as a user of each API would ------------------------------------------


def run_tcc_api(tcc: Any, c: Content) -> None:
    """One run through TCC's API: ``tcc`` is ``tcc_otel`` or ``contextcompany`` (same calls)."""
    r = tcc.run(session_id=c.session_id)
    r.prompt(c.user_prompt, system_prompt=c.system_prompt)
    r.metadata({"tcc.agent": c.agent})
    for i in range(STEPS_PER_RUN):
        s = r.step()
        s.prompt(c.step_prompts[i]).response(c.step_responses[i])
        s.model(requested=c.model_requested, used=c.model_used)
        uncached, cached, completion = c.tokens[i]
        s.tokens(prompt_uncached=uncached, prompt_cached=cached, completion=completion)
        s.cost(c.costs[i])
        s.finish_reason(c.finish_reasons[i])
        s.tool_definitions(c.tool_definitions)
        s.end()
        if i < len(c.tool_args):
            t = r.tool_call(c.tool_name)
            t.args(c.tool_args[i]).result(c.tool_results[i]).end()
    r.response(c.response)
    r.end()


def _messages_json(role: str, content: str, finish_reason: str | None = None) -> str:
    message: dict[str, Any] = {"role": role, "parts": [{"type": "text", "content": content}]}
    if finish_reason is not None:
        message["finish_reason"] = finish_reason
    return json.dumps([message], ensure_ascii=False)


def run_raw(tracer: Tracer, c: Content) -> None:
    """One run as raw SDK spans carrying the attributes tcc_otel writes (TCC + GenAI schema)."""
    from opentelemetry.trace import SpanKind

    run_id = str(uuid.uuid4())
    with tracer.start_as_current_span(
        f"invoke_agent {c.agent}",
        kind=SpanKind.INTERNAL,
        attributes={
            "tcc.type": "run",
            "tcc.runId": run_id,
            "gen_ai.operation.name": "invoke_agent",
            "tcc.sessionId": c.session_id,
            "gen_ai.conversation.id": c.session_id,
        },
    ) as run_span:
        input_tokens = output_tokens = 0
        for i in range(STEPS_PER_RUN):
            step_id = str(uuid.uuid4())
            with tracer.start_as_current_span(
                f"chat {c.model_used}",
                kind=SpanKind.CLIENT,
                attributes={
                    "tcc.type": "step",
                    "tcc.runId": run_id,
                    "tcc.stepId": step_id,
                    "gen_ai.operation.name": "chat",
                },
            ) as step_span:
                uncached, cached, completion = c.tokens[i]
                reason = c.finish_reasons[i]
                step_span.set_attributes(
                    {
                        "tcc.step.prompt": c.step_prompts[i],
                        "tcc.step.response": c.step_responses[i],
                        "tcc.step.model_requested": c.model_requested,
                        "tcc.step.model_used": c.model_used,
                        "tcc.step.prompt_uncached_tokens": uncached,
                        "tcc.step.prompt_cached_tokens": cached,
                        "tcc.step.completion_tokens": completion,
                        "tcc.step.real_total_cost": c.costs[i],
                        "tcc.step.finish_reason": reason,
                        "tcc.step.tool_definitions": c.tool_definitions,
                        "gen_ai.request.model": c.model_requested,
                        "gen_ai.response.model": c.model_used,
                        "gen_ai.usage.input_tokens": uncached + cached,
                        "gen_ai.usage.cache_read.input_tokens": cached,
                        "gen_ai.usage.output_tokens": completion,
                        "gen_ai.response.finish_reasons": [reason],
                        "gen_ai.tool.definitions": c.tool_definitions,
                        "gen_ai.input.messages": _messages_json("user", c.step_prompts[i]),
                        "gen_ai.output.messages": _messages_json(
                            "assistant", c.step_responses[i], reason
                        ),
                    }
                )
            input_tokens += uncached + cached
            output_tokens += completion
            if i < len(c.tool_args):
                call_id = str(uuid.uuid4())
                with tracer.start_as_current_span(
                    f"execute_tool {c.tool_name}",
                    kind=SpanKind.INTERNAL,
                    attributes={
                        "tcc.type": "tool_call",
                        "tcc.runId": run_id,
                        "tcc.toolCallId": call_id,
                        "gen_ai.tool.call.id": call_id,
                        "gen_ai.operation.name": "execute_tool",
                    },
                ) as tool_span:
                    tool_span.set_attributes(
                        {
                            "tcc.tool_call.name": c.tool_name,
                            "tcc.tool_call.args": c.tool_args[i],
                            "tcc.tool_call.result": c.tool_results[i],
                            "gen_ai.tool.name": c.tool_name,
                            "gen_ai.tool.call.arguments": c.tool_args[i],
                            "gen_ai.tool.call.result": c.tool_results[i],
                        }
                    )
        run_span.set_attributes(
            {
                "tcc.run.user_prompt": c.user_prompt,
                "tcc.run.system_prompt": c.system_prompt,
                "tcc.run.response": c.response,
                "tcc.agent": c.agent,
                "gen_ai.agent.name": c.agent,
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
                "gen_ai.input.messages": _messages_json("user", c.user_prompt),
                "gen_ai.system_instructions": json.dumps(
                    [{"type": "text", "content": c.system_prompt}], ensure_ascii=False
                ),
                "gen_ai.output.messages": _messages_json("assistant", c.response),
            }
        )


# --- contenders -------------------------------------------------------------------------------


@dataclass
class Harness:
    """How the child drives one contender."""

    run: Callable[[Content], None]  # one run of the workload with these contents
    flush: Callable[[float], bool]
    shutdown: Callable[[], None]
    stats: Callable[[], dict[str, Any]]
    path: str | None  # where its spans arrive at the sink; None: it exports nothing


def _no_stats() -> dict[str, Any]:
    return {}


def make_harness(name: str, port: int) -> Harness:
    base_url = f"http://127.0.0.1:{port}"
    if name in (TCC, TCC_ONCE, TCC_ZLIB):
        import tcc_otel as tcc

        tcc.configure(base_url=base_url, api_key=API_KEY, content_once=name == TCC_ONCE)

        def tcc_shutdown() -> None:
            tcc.shutdown(timeout=10.0)

        return Harness(
            run=functools.partial(run_tcc_api, tcc),
            flush=lambda timeout: tcc.flush(timeout=timeout),
            shutdown=tcc_shutdown,
            stats=tcc.stats,
            path="/v1/traces",
        )
    if name in (RAW_BSP, RAW_NOPROC):
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        provider = TracerProvider(resource=Resource.create({"service.name": "bench-raw"}))
        if name == RAW_BSP:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            exporter = OTLPSpanExporter(
                endpoint=base_url + "/v1/traces",
                headers={"Authorization": f"Bearer {API_KEY}"},
            )
            provider.add_span_processor(BatchSpanProcessor(exporter))  # default settings
        tracer = provider.get_tracer("bench.raw")
        return Harness(
            run=functools.partial(run_raw, tracer),
            flush=lambda timeout: provider.force_flush(int(timeout * 1000)),
            shutdown=provider.shutdown,
            stats=_no_stats,
            path="/v1/traces" if name == RAW_BSP else None,
        )
    if name == CC:
        # TCC_BASE_URL and TCC_API_KEY are set in this child's environment by the parent.
        cc = importlib.import_module("contextcompany")
        return Harness(
            run=functools.partial(run_tcc_api, cc),
            flush=lambda timeout: True,  # every .end() already waited for its POST
            shutdown=lambda: None,
            stats=_no_stats,
            path="/v1/custom",
        )
    raise ValueError(f"unknown contender {name!r}; choose from {', '.join(CONTENDERS)}")


# --- talking to the sink ----------------------------------------------------------------------


def sink_counts(port: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/counts")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"sink answered {response.status} to GET /counts")
        result: dict[str, Any] = json.loads(body)
        return result
    finally:
        conn.close()


def settled_counts(port: int, limit: float = 10.0) -> dict[str, Any]:
    """The sink's counts once no POST is in flight (two quiet reads in a row)."""
    deadline = time.monotonic() + limit
    quiet = 0
    counts = sink_counts(port)
    while time.monotonic() < deadline:
        quiet = quiet + 1 if counts["in_flight"] == 0 else 0
        if quiet >= 2:
            break
        time.sleep(0.02)
        counts = sink_counts(port)
    return counts


def items_at(counts: dict[str, Any], path: str | None) -> int:
    if path is None:
        return 0
    return int(counts["paths"].get(path, {}).get("items", 0))


def requests_at(counts: dict[str, Any], path: str | None) -> int:
    if path is None:
        return 0
    return int(counts["paths"].get(path, {}).get("requests", 0))


# --- the child process: one contender, one phase -----------------------------------------------


def _us(ns: float) -> float:
    return ns / 1000.0


def _p99(samples: list[int]) -> float:
    ordered = sorted(samples)
    return float(ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)])


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _helper_processes() -> dict[int, tuple[float, float]]:
    """This process's running children (tcc_otel's encoding helpers), from ``/proc``: pid ->
    (CPU seconds so far, peak RSS MB). Their CPU is export CPU, their memory the export's."""
    found: dict[int, tuple[float, float]] = {}
    me, tick = os.getpid(), os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != me:  # field 4 of stat: the parent's pid
                continue
            with open(f"/proc/{entry}/status") as f:
                hwm = next((line.split()[1] for line in f if line.startswith("VmHWM:")), "0")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        found[int(entry)] = ((int(fields[11]) + int(fields[12])) / tick, int(hwm) / 1024.0)
    return found


def _helpers_cpu_s(before: dict[int, tuple[float, float]]) -> float:
    """CPU seconds the helper processes spent since ``before`` (a ``_helper_processes()``)."""
    now = _helper_processes()
    return sum(cpu - before.get(pid, (0.0, 0.0))[0] for pid, (cpu, _) in now.items())


def _helpers_peak_mb() -> float:
    """The helper processes' peak RSS, summed."""
    return sum(peak for _, peak in _helper_processes().values())


def child_main(args: argparse.Namespace) -> dict[str, Any]:
    """Warm-up, closed loop (timed + CPU), paced loop; delivery read after shutdown."""
    content = build_content(args.seed)
    h = make_harness(args.contender, args.port)
    run_once = functools.partial(h.run, content)
    before = settled_counts(args.port)

    for _ in range(args.warmup):
        run_once()
    h.flush(FLUSH_TIMEOUT)
    warm = settled_counts(args.port)
    gc.collect()  # every contender starts its timed loop with the warm-up's garbage gone

    samples: list[int] = []
    clock = time.perf_counter_ns
    helpers0 = _helper_processes()
    cpu0, thread0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
    for _ in range(args.runs):
        start = clock()
        run_once()
        samples.append(clock() - start)
    thread1, wall1 = time.thread_time(), time.perf_counter()
    threads_in_loop = threading.active_count()
    closed_flushed = h.flush(FLUSH_TIMEOUT)
    cpu1, wall2 = time.process_time(), time.perf_counter()
    helpers_cpu = _helpers_cpu_s(helpers0)
    closed = settled_counts(args.port)

    gc.collect()
    paced: list[int] = []
    interval = 1.0 / args.rate
    due = time.perf_counter()
    for _ in range(args.paced_runs):
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        start = clock()
        run_once()
        paced.append(clock() - start)
        due += interval

    final_flushed = h.flush(FLUSH_TIMEOUT)
    stats = h.stats()
    h.shutdown()
    after = settled_counts(args.port)

    spans = args.runs * SPANS_PER_RUN
    # export CPU is charged to the spans that were exported (a processor that drops spans
    # does not get cheaper per span); a contender that exports nothing is charged per span made
    exported = items_at(closed, h.path) - items_at(warm, h.path) if h.path else spans
    cpu_total = cpu1 - cpu0 + helpers_cpu
    caller_cpu = thread1 - thread0
    caller_wall = sum(samples) / 1e9
    produced = (args.warmup + args.runs + args.paced_runs) * SPANS_PER_RUN
    return {
        "contender": args.contender,
        "content_bytes_per_run": content.bytes_per_run(),
        "warmup": args.warmup,
        "runs": args.runs,
        "paced_runs": args.paced_runs,
        "rate": args.rate,
        "median_us": _us(statistics.median(samples)),
        "p99_us": _us(_p99(samples)),
        "max_us": _us(max(samples)),
        "paced_median_us": _us(statistics.median(paced)) if paced else None,
        "paced_p99_us": _us(_p99(paced)) if paced else None,
        "runs_per_s": args.runs / (wall1 - wall0),
        "closed_flush_s": wall2 - wall1,
        "closed_flushed": closed_flushed,
        "final_flushed": final_flushed,
        "cpu_total_s": cpu_total,
        "helpers_cpu_s": helpers_cpu,
        "caller_cpu_s": caller_cpu,
        "caller_wall_s": caller_wall,
        "closed_spans": spans,
        "closed_exported": exported,
        "export_cpu_us_per_span": (cpu_total - caller_cpu) / max(1, exported) * 1e6,
        "export_cpu_wall_us_per_span": (cpu_total - caller_wall) / max(1, exported) * 1e6,
        "export_cpu_per_made_span_us": (cpu_total - caller_cpu) / spans * 1e6,
        "threads": threads_in_loop,
        "produced": produced,
        "delivered": items_at(after, h.path) - items_at(before, h.path),
        "requests": requests_at(after, h.path) - requests_at(before, h.path),
        "exports": h.path is not None,
        "sink_errors": after["errors"] - before["errors"],
        "peak_rss_mb": _maxrss_mb(),
        "stats": stats,
    }


BUILD_SAMPLE = 1000  # contents built alone, timed, before a new-strings burst


def child_burst(args: argparse.Namespace) -> dict[str, Any]:
    """``--burst`` runs back to back, then flush; caller time, flush time, delivery, peak RSS.

    Phase ``burst`` reuses the fixed contents every run; phase ``fresh`` gives each run new
    content strings (``FreshContents``), built between runs and left out of the runs' timings.
    The burst's time is its wall time less, for ``fresh``, the building's cost timed alone
    beforehand (``BUILD_SAMPLE`` builds): the caller's waits for the GIL between runs stay in."""
    fresh = args.child == "fresh"
    content = build_content(args.seed)
    h = make_harness(args.contender, args.port)
    run = h.run
    run(content)  # imports and first-call work happen before the baseline
    h.flush(FLUSH_TIMEOUT)
    build_us = None
    contents: Iterable[Content] = itertools.repeat(content, args.burst)
    if fresh:
        maker = FreshContents(content)
        started = time.perf_counter()
        for i in range(BUILD_SAMPLE):
            maker.build(i)
        build_us = (time.perf_counter() - started) / BUILD_SAMPLE * 1e6
        contents = map(maker.build, range(1, args.burst + 1))
    gc.collect()
    rss_before = _maxrss_mb()
    before = settled_counts(args.port)
    samples: list[int] = []
    clock = time.perf_counter_ns
    wall0 = time.perf_counter()
    for c in contents:
        start = clock()
        run(c)
        samples.append(clock() - start)
    wall1 = time.perf_counter()
    flushed = h.flush(FLUSH_TIMEOUT)
    wall2 = time.perf_counter()
    stats = h.stats()
    helpers_peak = _helpers_peak_mb()  # before shutdown lets them go
    h.shutdown()
    after = settled_counts(args.port)
    wall_s = wall1 - wall0
    burst_s = wall_s - (build_us or 0.0) * args.burst / 1e6
    flush_s = wall2 - wall1
    return {
        "contender": args.contender,
        "content_bytes_per_run": content.bytes_per_run(),
        "fresh": fresh,
        "burst": args.burst,
        "burst_s": burst_s,
        "burst_wall_s": wall_s,
        "runs_s": sum(samples) / 1e9,
        "build_us_per_run": build_us,
        "gap_us_per_run": (wall_s - sum(samples) / 1e9) / args.burst * 1e6,
        "burst_runs_per_s": args.burst / burst_s,
        "burst_median_us": _us(statistics.median(samples)),
        "burst_p99_us": _us(_p99(samples)),
        "flush_s": flush_s,
        "sustained_runs_per_s": args.burst / (burst_s + flush_s),
        "flushed": flushed,
        "produced": args.burst * SPANS_PER_RUN,
        "delivered": items_at(after, h.path) - items_at(before, h.path),
        "requests": requests_at(after, h.path) - requests_at(before, h.path),
        "exports": h.path is not None,
        "sink_errors": after["errors"] - before["errors"],
        "rss_before_mb": rss_before,
        "process_peak_rss_mb": _maxrss_mb(),
        "helpers_peak_rss_mb": helpers_peak,
        "peak_rss_mb": _maxrss_mb() + helpers_peak,
        "stats": stats,
    }


def _span_view(span: ReadableSpan) -> tuple[str, str, dict[str, Any]]:
    ids = ("tcc.runId", "tcc.stepId", "tcc.toolCallId", "gen_ai.tool.call.id")
    attributes = {
        key: "<id>" if key in ids else (list(value) if isinstance(value, tuple) else value)
        for key, value in (span.attributes or {}).items()
    }
    return span.name, span.kind.name, attributes


def child_verify(args: argparse.Namespace) -> dict[str, Any]:
    """Record one run with tcc_otel and one with the raw contender into memory; compare."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import tcc_otel as tcc

    content = build_content(args.seed)
    try:  # a private module: only to state in the report whether cost estimates were on
        cost_extra_active: bool | None = bool(
            importlib.import_module("tcc_otel._schema._cost").available()
        )
    except (ImportError, AttributeError):
        cost_extra_active = None
    recorded: dict[str, list[ReadableSpan]] = {}
    for name in (TCC, RAW_BSP):
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        if name == TCC:
            tcc.configure(tracer_provider=provider, exporter="none")
            run_tcc_api(tcc, content)
            tcc.flush(5.0)
            tcc.shutdown(timeout=5.0)
        else:
            run_raw(provider.get_tracer("bench.raw"), content)
        provider.shutdown()
        recorded[name] = list(exporter.get_finished_spans())

    diffs: list[str] = []
    tcc_spans, raw_spans = recorded[TCC], recorded[RAW_BSP]
    if len(tcc_spans) != len(raw_spans):
        diffs.append(f"span count: tcc_otel {len(tcc_spans)}, raw {len(raw_spans)}")
    for ours, theirs in zip(tcc_spans, raw_spans):
        (name_a, kind_a, attrs_a), (name_b, kind_b, attrs_b) = _span_view(ours), _span_view(theirs)
        if (name_a, kind_a) != (name_b, kind_b):
            diffs.append(f"span: tcc_otel {name_a!r} {kind_a}, raw {name_b!r} {kind_b}")
        for key in sorted(set(attrs_a) | set(attrs_b)):
            if attrs_a.get(key) != attrs_b.get(key):
                diffs.append(
                    f"{name_a}: {key}: tcc_otel {str(attrs_a.get(key))[:60]!r}, "
                    f"raw {str(attrs_b.get(key))[:60]!r}"
                )
    for name, spans in recorded.items():
        roots = [s for s in spans if s.parent is None]
        if len(roots) != 1 or any(
            s.parent is None or s.parent.span_id != roots[0].context.span_id
            for s in spans
            if s is not roots[0]
        ):
            diffs.append(f"{name}: steps and tool calls are not all children of the run span")
    json_keys = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")
    return {
        "contender": "verify",
        "cost_extra_active": cost_extra_active,
        "match": not diffs,
        "diffs": diffs[:12],
        "diff_count": len(diffs),
        "attributes_per_run": {
            name: sum(len(s.attributes or {}) for s in spans) for name, spans in recorded.items()
        },
        "json_encodes_per_run": sum(
            key in (s.attributes or {}) for s in raw_spans for key in json_keys
        ),
        "content_bytes_per_run": content.bytes_per_run(),
    }


# --- the parent: plan, run the children, report -------------------------------------------------


@dataclass
class Plan:
    contender: str
    warmup: int
    runs: int
    paced_runs: int
    burst: int
    fresh: int  # runs of the new-strings burst; 0: not run


def _child_env(name: str, port: int) -> dict[str, str]:
    """A clean environment: no TCC_*/OTEL_* settings leak in; loopback never goes via a proxy."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TCC_", "OTEL_")) and key.lower() not in ("http_proxy", "all_proxy")
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    if name == CC:
        env["TCC_BASE_URL"] = f"http://127.0.0.1:{port}"
        env["TCC_API_KEY"] = API_KEY
    return env


def run_child(
    name: str, phase: str, port: int, extra: list[str], seed: int, timeout: float
) -> dict[str, Any]:
    """Run one phase of one contender in a fresh interpreter; its RESULT line, or an error."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        phase,
        "--contender",
        name,
        "--port",
        str(port),
        "--seed",
        str(seed),
        *extra,
    ]
    try:
        done = subprocess.run(
            command,
            env=_child_env(name, port),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # subprocess.run killed the child
        return {
            "contender": name,
            "error": f"{phase}: timed out after {timeout:.0f} s",
            "stderr": str(exc.stderr or "")[-2000:],
        }
    result: dict[str, Any] | None = None
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
    stderr_lines = [line for line in done.stderr.splitlines() if line.strip()]
    if done.returncode != 0 or result is None:
        tail = "\n".join(stderr_lines[-15:])
        return {"contender": name, "error": f"{phase}: exit {done.returncode}", "stderr": tail}
    result["stderr_lines"] = len(stderr_lines)
    unique: list[str] = []
    for line in stderr_lines:
        if line not in unique:
            unique.append(line)
    result["stderr_sample"] = [line[:200] for line in unique[:4]]
    return result


def start_sink() -> tuple[subprocess.Popen[str], int]:
    sink = subprocess.Popen(
        [sys.executable, str(HERE / "sink.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=_child_env("sink", 0),
    )
    assert sink.stdout is not None
    line = sink.stdout.readline().strip()
    if not line.isdigit():
        sink.kill()
        raise RuntimeError(f"the sink did not start (it printed {line!r})")
    return sink, int(line)


def stop_sink(sink: subprocess.Popen[str]) -> None:
    sink.terminate()
    try:
        sink.wait(timeout=10)
    except subprocess.TimeoutExpired:
        sink.kill()
        sink.wait()


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except (OSError, IndexError):
        return "unknown"


def _tcc_source() -> str:
    """Where the children import tcc_otel from, and its git state when it is in a checkout."""
    spec = importlib.util.find_spec("tcc_otel")
    if spec is None or spec.origin is None:
        return "not installed"
    package = Path(spec.origin).parent
    try:
        head = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(package), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return f"`{package}` (not a git checkout)"
    state = f"{len(changed)} files changed since" if changed else "as committed at"
    return f"`{package}`, {state} {head}"


def hide_cost_extra() -> None:
    """Make ``import genai_prices`` fail in this process, as if the ``tcc-otel[cost]`` extra
    were not installed: tcc_otel then writes no ``tcc.run.total_tokens``/``tcc.run.total_cost``
    (the raw contender writes neither) and spends no time estimating costs. Call it before
    ``tcc_otel`` is imported: ``tcc_otel._schema._cost`` looks for the extra at import."""
    cast("dict[str, Any]", sys.modules)["genai_prices"] = None


def hide_fast_extra() -> None:
    """Make ``import isal`` fail in this process, as without the ``tcc-otel[fast]`` extra:
    tcc_otel then compresses with zlib. Call it before ``tcc_otel`` is imported."""
    cast("dict[str, Any]", sys.modules)["isal"] = None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# --- the report ---------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _pct(delivered: int, produced: int) -> str:
    if produced == 0:
        return "n/a"
    share = 100.0 * delivered / produced
    return "100" if delivered == produced else f"{share:.2f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _verdict(ratio: float | None, target: float, at_most: bool) -> str:
    if ratio is None:
        return "n/a"
    ok = ratio <= target if at_most else ratio >= target
    return "meets target" if ok else "MISSES target"


def _ok(result: dict[str, Any]) -> bool:
    return bool(result) and "error" not in result


def _all_delivered(result: dict[str, Any]) -> bool:
    return _ok(result) and result["delivered"] == result["produced"]


def _main_table(plans: list[Plan], main_results: dict[str, dict[str, Any]]) -> list[str]:
    out = [
        "| contender | runs: closed / paced | median µs/run | p99 µs/run | paced median "
        "| paced p99 | delivered % | export CPU µs/span |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for plan in plans:
        name = plan.contender
        m = main_results.get(name, {})
        counts = f"{plan.runs:,} / {plan.paced_runs:,}"
        if not _ok(m):
            cells = ["failed"] * 6
        else:
            cells = [
                _fmt(m["median_us"]),
                _fmt(m["p99_us"]),
                _fmt(m["paced_median_us"]),
                _fmt(m["paced_p99_us"]),
                _pct(m["delivered"], m["produced"]) if m["exports"] else "n/a (no export)",
            ]
            if name == CC:
                cells.append("n/a (inline)")
            elif name == RAW_NOPROC:
                cells.append(f"{_fmt(m['export_cpu_us_per_span'], 1)} (no export)")
            else:
                cells.append(_fmt(m["export_cpu_us_per_span"], 1))
        out.append(f"| {LABELS[name]} | {counts} | " + " | ".join(cells) + " |")
    return out


def _burst_table(
    plans: list[Plan],
    burst_results: dict[str, dict[str, Any]],
    fresh_results: dict[str, dict[str, Any]],
) -> list[str]:
    out = [
        "| contender | content strings | runs | burst runs/s | caller median µs/run "
        "| caller p99 µs/run | flush s | sustained runs/s (burst + flush) | delivered % "
        "| peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for plan in plans:
        name = plan.contender
        rows = [("same every run", plan.burst, burst_results.get(name, {}))]
        if plan.fresh:
            rows.append(("new every run", plan.fresh, fresh_results.get(name, {})))
        for strings, runs, b in rows:
            if not _ok(b):
                cells = ["failed"] * 7
            else:
                exports = bool(b["exports"])
                cells = [
                    _fmt(b["burst_runs_per_s"]),
                    _fmt(b["burst_median_us"]),
                    _fmt(b["burst_p99_us"]),
                    _fmt(b["flush_s"], 2),
                    _fmt(b["sustained_runs_per_s"]) if exports else "n/a (no export)",
                    _pct(b["delivered"], b["produced"]) if exports else "n/a (no export)",
                    f"{b['rss_before_mb']:.0f} -> {b['peak_rss_mb']:.0f}",
                ]
            out.append(f"| {LABELS[name]} | {strings} | {runs:,} | " + " | ".join(cells) + " |")
    return out


def _targets(
    main_results: dict[str, dict[str, Any]],
    burst_results: dict[str, dict[str, Any]],
    fresh_results: dict[str, dict[str, Any]],
) -> list[str]:
    """The figures issue 10 sets targets on (and issue 4's that still say something)."""

    def get(results: dict[str, dict[str, Any]], name: str, key: str) -> float | None:
        result = results.get(name, {})
        value = result.get(key) if _ok(result) else None
        return None if value is None else float(value)

    rows: list[tuple[str, str, str, str]] = []

    def ratio_row(
        label: str, a: float | None, b: float | None, target: float, at_most: bool, note: str
    ) -> None:
        value = _ratio(a, b)
        shown = "n/a" if value is None else f"{value:.2f}x ({_fmt(a)} / {_fmt(b)})"
        sign = "≤" if at_most else "≥"
        rows.append((label, shown, f"{sign} {target:g}x {note}", _verdict(value, target, at_most)))

    ratio_row(
        "caller median µs/run, closed loop: tcc_otel / B0 (raw, no processor)",
        get(main_results, TCC, "median_us"),
        get(main_results, RAW_NOPROC, "median_us"),
        0.3,
        True,
        "(issue 10)",
    )
    ratio_row(
        "caller p99 µs/run, closed loop: tcc_otel / B (raw + BSP)",
        get(main_results, TCC, "p99_us"),
        get(main_results, RAW_BSP, "p99_us"),
        1.0,
        True,
        "(issue 10)",
    )
    ratio_row(
        "caller p99 µs/run, paced: tcc_otel / B",
        get(main_results, TCC, "paced_p99_us"),
        get(main_results, RAW_BSP, "paced_p99_us"),
        1.0,
        True,
        "(issue 4)",
    )
    ratio_row(
        "caller median µs/run, closed loop: tcc_otel / B",
        get(main_results, TCC, "median_us"),
        get(main_results, RAW_BSP, "median_us"),
        1.2,
        True,
        "(issue 4)",
    )
    for name in (TCC, TCC_ZLIB):
        cpu = get(main_results, name, "export_cpu_us_per_span")
        if cpu is None and name != TCC:
            continue
        rows.append(
            (
                f"export CPU per delivered span, {LABELS[name]} (gzip and helper processes "
                "included)",
                "n/a" if cpu is None else f"{cpu:.1f} µs",
                "≤ 50 µs (issue 10)",
                "n/a" if cpu is None else ("meets target" if cpu <= 50 else "MISSES target"),
            )
        )
    sustained = (
        (TCC, "same strings", burst_results),
        (TCC, "new strings", fresh_results),
        (TCC_ZLIB, "new strings", fresh_results),
        (TCC_ONCE, "new strings", fresh_results),
    )
    for name, strings, results in sustained:
        tcc = results.get(name, {})
        if not _ok(tcc):
            continue
        label = (
            f"sustained runs/s, 100% delivered, burst with {strings} every run: {LABELS[name]} "
            f"runs / (burst + flush) / B0's burst runs/s"
        )
        ratio_row(
            label,
            get(results, name, "sustained_runs_per_s"),
            get(results, RAW_NOPROC, "burst_runs_per_s"),
            1.2,
            False,
            "(issue 10)",
        )
        if not _all_delivered(tcc):
            label, shown, target, _ = rows[-1]
            share = _pct(tcc["delivered"], tcc["produced"])
            rows[-1] = (label, shown, target, f"MISSES target (only {share}% delivered)")
    fresh = fresh_results.get(TCC, {})
    if _ok(fresh):
        rows.append(
            (
                f"burst of {fresh['burst']:,} runs with new strings every run: tcc_otel "
                f"delivered %",
                _pct(fresh["delivered"], fresh["produced"]),
                "100 (issue 10)",
                "meets target" if _all_delivered(fresh) else "MISSES target",
            )
        )
        rows.append(
            (
                f"burst of {fresh['burst']:,} runs with new strings every run: tcc_otel peak RSS",
                f"{fresh['peak_rss_mb']:.0f} MB",
                "≤ 150 MB (issue 10, for 20,000 runs)",
                "meets target" if fresh["peak_rss_mb"] <= 150 else "MISSES target",
            )
        )
    tcc_main, tcc_burst = main_results.get(TCC, {}), burst_results.get(TCC, {})
    if _ok(tcc_main) and _ok(tcc_burst):
        rows.append(
            (
                "tcc_otel delivered %: closed + paced; burst with the same strings",
                f"{_pct(tcc_main['delivered'], tcc_main['produced'])}; "
                f"{_pct(tcc_burst['delivered'], tcc_burst['produced'])}",
                "100 (issue 4)",
                "meets target"
                if _all_delivered(tcc_main) and _all_delivered(tcc_burst)
                else "MISSES target",
            )
        )
        rows.append(
            (
                "burst with the same strings every run: tcc_otel peak RSS",
                f"{tcc_burst['peak_rss_mb']:.0f} MB",
                "≤ 200 MB (issue 4)",
                "meets target" if tcc_burst["peak_rss_mb"] <= 200 else "MISSES target",
            )
        )
    ratio_row(
        "caller median µs/run: contextcompany / tcc_otel",
        get(main_results, CC, "median_us"),
        get(main_results, TCC, "median_us"),
        40.0,
        False,
        "(issues 4, 10)",
    )
    out = ["| figure | value | target | verdict |", "|---|---:|---|---|"]
    out += [
        f"| {label} | {value} | {target} | {verdict} |" for label, value, target, verdict in rows
    ]
    return out


def _burst_detail(label: str, b: dict[str, Any]) -> str:
    text = (
        f"{label} {b['burst_runs_per_s']:,.0f} runs/s ({b['burst_wall_s']:.2f} s wall, "
        f"{b['runs_s']:.2f} s inside the timed runs), flush {b['flush_s']:.1f} s (complete: "
        f"{b['flushed']}), peak RSS {b['rss_before_mb']:.0f} MB before it -> "
        f"{b['peak_rss_mb']:.0f} MB"
    )
    if b.get("helpers_peak_rss_mb"):
        text += (
            f" (this process {b['process_peak_rss_mb']:.0f} MB + encoding helper processes "
            f"{b['helpers_peak_rss_mb']:.0f} MB)"
        )
    if b.get("build_us_per_run") is not None:
        text += (
            f", building a run's new strings {b['build_us_per_run']:.1f} µs timed alone "
            f"(burst time less that: {b['burst_s']:.2f} s; mean gap between the timed runs "
            f"{b['gap_us_per_run']:.1f} µs, GIL waits included)"
        )
    if b["exports"]:
        text += (
            f", {b['delivered']:,}/{b['produced']:,} spans delivered in {b['requests']:,} requests"
        )
    return text


def render(
    plans: list[Plan],
    main_results: dict[str, dict[str, Any]],
    burst_results: dict[str, dict[str, Any]],
    fresh_results: dict[str, dict[str, Any]],
    verify: dict[str, Any] | None,
    header: list[str],
) -> str:
    out = list(header)
    out += ["", "### Caller and export: closed and paced loops", ""]
    out += _main_table(plans, main_results)
    out += ["", "### Bursts: runs back to back, then flush", ""]
    out += _burst_table(plans, burst_results, fresh_results)
    out += ["", "### Targets", ""]
    out += _targets(main_results, burst_results, fresh_results)

    errors: list[str] = []
    for phase, results in (
        ("main", main_results),
        ("burst", burst_results),
        ("new-strings burst", fresh_results),
    ):
        for name, result in results.items():
            if "error" in result:
                errors.append(
                    f"- {name} ({phase}): {result['error']}\n\n```\n{result.get('stderr', '')}\n```"
                )

    out += ["", "### Details", ""]
    if verify is not None:
        if "error" in verify:
            out.append(f"- schema check: could not run ({verify['error']})")
        else:
            per_run = verify["attributes_per_run"]
            cost_on = verify.get("cost_extra_active")
            cost = "unknown" if cost_on is None else ("yes" if cost_on else "no")
            out.append(
                f"- schema check (one run of each into memory): raw contender writes the same "
                f"span names, kinds and attributes as tcc_otel: "
                f"{'yes' if verify['match'] else 'NO, ' + str(verify['diff_count']) + ' diffs'}"
                f"; attributes per run: tcc_otel {per_run.get(TCC)}, raw {per_run.get(RAW_BSP)}; "
                f"JSON encodes per run: {verify['json_encodes_per_run']}; cost estimates "
                f"(tcc-otel[cost]) active in tcc_otel: {cost}"
            )
            for diff in verify["diffs"]:
                out.append(f"  - {diff}")
    for plan in plans:
        name = plan.contender
        m, b = main_results.get(name, {}), burst_results.get(name, {})
        f = fresh_results.get(name, {})
        parts = []
        if _ok(m):
            text = (
                f"closed loop {m['runs_per_s']:,.0f} runs/s after {m['warmup']} warm-up runs, "
                f"max {m['max_us']:,.0f} µs, flush after it {m['closed_flush_s']:.2f} s; "
                f"CPU {m['cpu_total_s']:.2f} s of which caller thread {m['caller_cpu_s']:.2f} s "
                f"(caller wall {m['caller_wall_s']:.2f} s) and encoding helper processes "
                f"{m.get('helpers_cpu_s', 0.0):.2f} s; {m['threads']} threads"
            )
            if m["exports"] and name != CC:
                text += (
                    f"; exported in the closed loop {m['closed_exported']:,}/"
                    f"{m['closed_spans']:,} spans (export CPU per span made "
                    f"{m['export_cpu_per_made_span_us']:.1f} µs; with the caller's wall time "
                    f"subtracted instead of its CPU time {m['export_cpu_wall_us_per_span']:.1f} "
                    f"µs/span)"
                )
            if m["exports"]:
                text += (
                    f"; all phases: {m['delivered']:,}/{m['produced']:,} spans delivered in "
                    f"{m['requests']:,} requests"
                )
            parts.append(text)
        if _ok(b):
            parts.append(_burst_detail("burst (same strings)", b))
        if _ok(f):
            parts.append(_burst_detail("burst (new strings)", f))
        for phase, result in (("closed+paced", m), ("burst", b), ("new-strings burst", f)):
            if result.get("stats"):
                parts.append(f"{phase} stats: `{json.dumps(result['stats'], sort_keys=True)}`")
            if result.get("stderr_lines"):
                sample = "; ".join(result.get("stderr_sample", []))
                parts.append(f"{phase}: {result['stderr_lines']} stderr lines, e.g. `{sample}`")
            if result.get("sink_errors"):
                parts.append(f"{phase}: sink rejected {result['sink_errors']} requests")
        if parts:
            out.append(f"- **{name}**: " + "; ".join(parts))
    if errors:
        out += ["", "### Failures", "", *errors]
    return "\n".join(out) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="tcc_otel vs raw OpenTelemetry vs contextcompany, side by side."
    )
    parser.add_argument("--runs", type=int, help="closed-loop runs (default 2000; quick 200)")
    parser.add_argument("--warmup", type=int, help="warm-up runs (default 200; quick 20)")
    parser.add_argument("--paced-runs", type=int, help="paced runs (default 300; quick 50)")
    parser.add_argument("--rate", type=float, default=50.0, help="paced runs/s (default 50)")
    parser.add_argument("--burst", type=int, help="burst runs (default 20000; quick 1000)")
    parser.add_argument(
        "--fresh-burst",
        type=int,
        help="runs of the burst with new content strings every run (default: --burst; 0: skip)"
        "; not run for contextcompany",
    )
    parser.add_argument(
        "--cost-extra",
        action="store_true",
        help="leave the cost extra (genai-prices) importable in the children; by default it is "
        "hidden so tcc_otel writes no cost attributes, like the raw contender",
    )
    parser.add_argument(
        "--cc-runs", type=int, help="cap on contextcompany's closed loop (default 500; quick 50)"
    )
    parser.add_argument(
        "--cc-burst", type=int, help="cap on contextcompany's burst (default 2000; quick 100)"
    )
    parser.add_argument(
        "--only", default=",".join(CONTENDERS), help=f"comma list of {', '.join(CONTENDERS)}"
    )
    parser.add_argument("--quick", action="store_true", help="a ~15 s smoke run")
    parser.add_argument("--output", default=str(HERE / "results.md"), help="report file")
    parser.add_argument("--seed", type=int, default=SEED, help=argparse.SUPPRESS)
    # internal: what the parent passes to each child
    parser.add_argument(
        "--child", choices=("main", "burst", "fresh", "verify"), help=argparse.SUPPRESS
    )
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "runs": 200 if quick else 2000,
        "warmup": 20 if quick else 200,
        "paced_runs": 50 if quick else 300,
        "burst": 1000 if quick else 20000,
        "cc_runs": 50 if quick else 500,
        "cc_burst": 100 if quick else 2000,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.fresh_burst is None:
        args.fresh_burst = args.burst
    return args


def make_plans(args: argparse.Namespace) -> list[Plan]:
    chosen: list[str] = []
    for raw_name in args.only.split(","):
        name = ALIASES.get(raw_name.strip(), raw_name.strip())
        if name not in CONTENDERS:
            raise SystemExit(f"--only: unknown contender {raw_name!r}; use {', '.join(CONTENDERS)}")
        if name not in chosen:
            chosen.append(name)
    plans = []
    for name in CONTENDERS:
        if name not in chosen:
            continue
        if name == CC:  # ~7 ms per run: cap its loops so the whole benchmark stays short
            plans.append(
                Plan(
                    name,
                    min(args.warmup, max(1, args.cc_runs // 10)),
                    min(args.runs, args.cc_runs),
                    args.paced_runs,
                    min(args.burst, args.cc_burst),
                    0,  # its memory does not grow with waiting spans: it sends on the caller
                )
            )
        else:
            plans.append(
                Plan(name, args.warmup, args.runs, args.paced_runs, args.burst, args.fresh_burst)
            )
    return plans


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        if not args.cost_extra:
            hide_cost_extra()
        if args.contender == TCC_ZLIB:
            hide_fast_extra()
        phases = {
            "main": child_main,
            "burst": child_burst,
            "fresh": child_burst,
            "verify": child_verify,
        }
        result = phases[args.child](args)
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    plans = make_plans(args)
    content = build_content(args.seed)
    started = time.perf_counter()
    timeout = 180.0 if args.quick else CHILD_TIMEOUT
    main_results: dict[str, dict[str, Any]] = {}
    burst_results: dict[str, dict[str, Any]] = {}
    fresh_results: dict[str, dict[str, Any]] = {}
    verify: dict[str, Any] | None = None
    common = ["--cost-extra"] if args.cost_extra else []
    load_before = _loadavg()
    sink, port = start_sink()
    try:
        names = {plan.contender for plan in plans}
        if TCC in names and (RAW_BSP in names or RAW_NOPROC in names):
            print("schema check: tcc_otel vs raw attributes ...", file=sys.stderr, flush=True)
            verify = run_child("verify", "verify", port, common, args.seed, timeout)
        for plan in plans:
            print(
                f"{plan.contender}: closed {plan.runs} (+{plan.warmup} warm-up), "
                f"paced {plan.paced_runs} at {args.rate:g}/s ...",
                file=sys.stderr,
                flush=True,
            )
            main_results[plan.contender] = run_child(
                plan.contender,
                "main",
                port,
                [
                    *common,
                    f"--runs={plan.runs}",
                    f"--warmup={plan.warmup}",
                    f"--paced-runs={plan.paced_runs}",
                    f"--rate={args.rate}",
                ],
                args.seed,
                timeout,
            )
            print(f"{plan.contender}: burst {plan.burst} ...", file=sys.stderr, flush=True)
            burst_results[plan.contender] = run_child(
                plan.contender,
                "burst",
                port,
                [*common, f"--burst={plan.burst}"],
                args.seed,
                timeout,
            )
            if plan.fresh:
                print(
                    f"{plan.contender}: burst {plan.fresh}, new strings every run ...",
                    file=sys.stderr,
                    flush=True,
                )
                fresh_results[plan.contender] = run_child(
                    plan.contender,
                    "fresh",
                    port,
                    [*common, f"--burst={plan.fresh}"],
                    args.seed,
                    timeout,
                )
        sink_total = sink_counts(port)
    finally:
        stop_sink(sink)

    results = (*main_results.values(), *burst_results.values(), *fresh_results.values())
    for result in results:
        got = result.get("content_bytes_per_run")
        if got is not None and got != content.bytes_per_run():
            raise RuntimeError("a child built different content: check the seed")

    command = shlex.join([Path(sys.executable).name, *sys.argv])
    if args.cost_extra:
        cost_note = "left importable in every child (--cost-extra)"
    else:
        cost_note = (
            "hidden in every child (`sys.modules['genai_prices'] = None` before any import), "
            "so tcc_otel writes no `tcc.run.total_tokens`/`tcc.run.total_cost`, as the raw "
            "contender, and spends no time estimating costs"
        )
    installed = importlib.util.find_spec("genai_prices") is not None
    header = [
        "# tcc_otel benchmark results",
        "",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {os.cpu_count()} CPUs ({_cpu_model()}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}",
        f"- versions: tcc-otel {_version('tcc-otel')}, opentelemetry-sdk "
        f"{_version('opentelemetry-sdk')}, opentelemetry-exporter-otlp-proto-http "
        f"{_version('opentelemetry-exporter-otlp-proto-http')}, opentelemetry-proto "
        f"{_version('opentelemetry-proto')}, protobuf {_version('protobuf')}, "
        f"contextcompany {_version('contextcompany')}, isal {_version('isal')} (the "
        f"tcc-otel[fast] extra; hidden in the plain-install contender's child)",
        f"- command: `{command}` (took {time.perf_counter() - started:.0f} s)",
        f"- load average (1 min, from /proc/loadavg) at the start {load_before}, at the end "
        f"{_loadavg()}: other processes share the {os.cpu_count()} CPUs",
        f"- tcc_otel measured: {_tcc_source()}",
        f"- cost extra (genai-prices, {'installed' if installed else 'not installed'} in "
        f"this venv): {cost_note}",
        f"- workload per run: 1 run + 3 steps + 2 tool calls = {SPANS_PER_RUN} spans, "
        f"{content.bytes_per_run():,} bytes of content; paced at {args.rate:g} runs/s; "
        f"loopback sink in its own process (received in total: "
        f"`{json.dumps(sink_total['paths'], sort_keys=True)}`)",
    ]
    report = render(plans, main_results, burst_results, fresh_results, verify, header)
    print(report)
    Path(args.output).write_text(report, encoding="utf-8")
    print(f"(written to {args.output})", file=sys.stderr)
    failed = any("error" in r for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
