"""tcc_otel inside an application that already has its own OpenTelemetry TracerProvider.

``tcc.configure(tracer_provider=tp)`` records runs, steps and tool calls into the application's
provider: its own exporters see them, and a run started while a request span is active becomes a
child of that span, in the same trace. tcc_otel never installs a global provider itself; this
application does, as applications do.

The application's exporter here prints one line per span (name, span id, parent id) instead of
shipping it anywhere. If TCC_API_KEY or TCC_BASE_URL is set, the same spans also go to TCC::

    python examples/existing_provider.py
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import tcc_otel as tcc


class PrintingExporter(SpanExporter):
    """The application's exporter: prints ``name  span=ID  parent=ID`` for each span."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            self.spans.append(span)
            span_id = f"{span.context.span_id:016x}" if span.context else "-"
            parent_id = f"{span.parent.span_id:016x}" if span.parent else "-"
            print(f"app exporter: {span.name:<22} span={span_id} parent={parent_id}")
        return SpanExportResult.SUCCESS


def handle_chat(tracer: trace.Tracer, message: str) -> str:
    """The application's request handler: one agent run per chat message."""
    with tcc.run(session_id="session-1") as r:
        r.prompt(message).metadata({"tcc.agent": "support"})
        with r.step() as s:
            s.prompt(f"user: {message}").model(requested="gpt-4o-mini")
            with tracer.start_as_current_span("db.lookup_order"):  # nests under the step
                order = "Order #1042: two items, shipped Monday."
            s.response(order).finish_reason("stop")
        r.response("Your order #1042 (two items) shipped on Monday.")
    return r.run_id


def main() -> None:
    # The application's own setup.
    exporter = PrintingExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "chat-service"}))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tp)
    tracer = trace.get_tracer("chat-service")

    # One line: TCC records into the application's provider.
    tcc.configure(tracer_provider=tp)

    # The web framework's instrumentation starts a span per request, then calls the handler.
    with tracer.start_as_current_span("POST /chat", kind=trace.SpanKind.SERVER) as request:
        run_id = handle_chat(tracer, "Summarise my last order.")

    request_id = request.get_span_context().span_id
    run_span = next(span for span in exporter.spans if span.name.startswith("invoke_agent"))
    parent_id = run_span.parent.span_id if run_span.parent else 0

    # The application shuts down its provider; that also flushes what TCC attached to it.
    tp.shutdown()

    if parent_id != request_id:
        raise SystemExit(f"run {run_id}: its span's parent is not the request span")
    print(f"run {run_id}: its span's parent is the request span {request_id:016x}")


if __name__ == "__main__":
    main()
