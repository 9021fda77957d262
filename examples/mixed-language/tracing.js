'use strict';
// The OpenTelemetry setup both Node services share: a tracer provider of their own, named by
// service.name, exporting OTLP/HTTP protobuf to the same endpoint as the Python agent, and W3C
// trace context + baggage as the propagators (baggage carries tcc.runId between services).

const { context, propagation, trace } = require('@opentelemetry/api');
const {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} = require('@opentelemetry/core');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BatchSpanProcessor, NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');

/**
 * Where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, else
 * OTEL_EXPORTER_OTLP_ENDPOINT + "/v1/traces", else `tcc-otel dev` on 127.0.0.1:4318.
 * (127.0.0.1 rather than localhost: `tcc-otel dev` listens on IPv4 only.)
 */
function tracesUrl() {
  const traces = process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (traces) return traces;
  const base = process.env.OTEL_EXPORTER_OTLP_ENDPOINT || 'http://127.0.0.1:4318';
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}

/** Start tracing for `serviceName`; returns the provider (flush/shut it down) and a tracer. */
function startTracing(serviceName) {
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl() }))],
  });
  // An application sets its own globals: the async-hooks context manager (so
  // context.with() carries the active span across awaits) and the W3C propagators.
  provider.register({
    propagator: new CompositePropagator({
      propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
    }),
  });
  return { provider, tracer: trace.getTracer(serviceName) };
}

/** Print one line on stdout; tests and people wait for "listening on http://...". */
function say(line) {
  process.stdout.write(`${line}\n`);
}

module.exports = { context, propagation, say, startTracing, trace, tracesUrl };
