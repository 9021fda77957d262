"""An application with its own global TracerProvider and tcc_otel in the default mode.

Run by tests/e2e/test_interop.py: it sets the global provider (as an application does), records
one run with its own spans inside and outside it, flushes, and prints JSON: the run id and the
names its own exporter saw. Configured by the environment (TCC_BASE_URL).
"""

from __future__ import annotations

import json
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tcc_otel as tcc


def main() -> int:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    app = trace.get_tracer("app")
    with app.start_as_current_span("GET /health"):
        pass
    with tcc.run(run_id="run-g") as run:
        run.prompt("q")
        with run.step(step_id="step-g") as step:
            with (
                app.start_as_current_span("POST /v1/chat/completions"),
                app.start_as_current_span("connect"),
            ):
                pass
            step.prompt("p").response("r")
    ok = tcc.flush(10.0)
    seen = sorted(span.name for span in memory.get_finished_spans())
    sys.stdout.write(json.dumps({"flushed": ok, "app_exporter_saw": seen}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
