"""What tcc_otel adds to an instrumented LLM call on the caller's thread, side by side in one run.

An application with its own global SDK provider (``BatchSpanProcessor`` + the stock OTLP/HTTP
exporter, to the benchmark's loopback sink) whose instrumentation writes one openai-v2-shaped
span per LLM call (latest conventions, content on the span, ~6 KB of messages). Measured per
call, on the caller's thread, span start to end:

- ``app only``: the application's provider, no tcc_otel;
- ``app + tcc_otel``: the same inside ``tcc.run()``, tcc_otel in the default mode following the
  provider (stamping the span, reading it as a step, sharing the run's spans with the app);
- ``app + tcc_otel, manual step``: each call inside ``with r.step()`` (the step takes the call).

Each contender runs in its own process (the global provider is set once per process)::

    .venv/bin/python benchmarks/instrumented.py [--calls N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TEXT = "word " * 400
MESSAGES = json.dumps(
    [
        {"role": "system", "parts": [{"type": "text", "content": TEXT}]},
        {"role": "user", "parts": [{"type": "text", "content": TEXT}]},
    ]
)
ANSWER = json.dumps(
    [{"role": "assistant", "parts": [{"type": "text", "content": TEXT}], "finish_reason": "stop"}]
)
ATTRIBUTES: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.usage.input_tokens": 500,
    "gen_ai.usage.output_tokens": 50,
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.input.messages": MESSAGES,
    "gen_ai.output.messages": ANSWER,
}
CONTENDERS = ("app only", "app + tcc_otel", "app + tcc_otel, manual step")


def child(name: str, port: int, calls: int) -> dict[str, Any]:
    """Run one contender in this process; per-call caller times in µs."""
    sys.modules["genai_prices"] = None  # type: ignore[assignment]  # no cost estimates
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=100_000))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("opentelemetry.instrumentation.openai_v2")
    samples: list[float] = []

    def call() -> None:
        start = time.perf_counter_ns()
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes=ATTRIBUTES):
            pass
        samples.append((time.perf_counter_ns() - start) / 1000)

    if name == "app only":
        for _ in range(calls):
            call()
    else:
        import tcc_otel as tcc

        tcc.configure(base_url=f"http://127.0.0.1:{port}", api_key="k")
        for start in range(0, calls, 10):  # runs of 10 calls
            with tcc.run() as run:
                run.prompt("q")
                for _ in range(min(10, calls - start)):
                    if name.endswith("manual step"):
                        with run.step():
                            call()
                    else:
                        call()
        tcc.flush(60.0)
    provider.shutdown()
    warm = samples[calls // 10 :]
    return {
        "median": statistics.median(warm),
        "p99": sorted(warm)[int(len(warm) * 0.99)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="instrumented.py", description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=5000, help="LLM calls per contender")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        json.dump(child(args.child, args.port, args.calls), sys.stdout)
        return 0
    import bench

    sink, port = bench.start_sink()
    try:
        results = {}
        for name in CONTENDERS:
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    *("--child", name, "--port", str(port), "--calls", str(args.calls)),
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=600,
            )
            results[name] = json.loads(done.stdout)
    finally:
        bench.stop_sink(sink)
    base = results["app only"]["median"]
    sys.stdout.write("| contender | median µs/call | p99 µs/call | median / app only |\n")
    sys.stdout.write("|---|---:|---:|---:|\n")
    for name, found in results.items():
        sys.stdout.write(
            f"| {name} | {found['median']:.1f} | {found['p99']:.1f} | "
            f"{found['median'] / base:.2f}x |\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
