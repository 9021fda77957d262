'use strict';
// The "tool" service: GET /weather?city=... answers a fake forecast. Its SERVER span continues
// the trace from the caller's `traceparent` and carries the caller's run id from the `baggage`
// entry `tcc.runId` (sent by tcc.inject() in the Python agent), so the span joins the run.
//
//   TOOL_PORT=8001 node tool.js      (TOOL_PORT=0 picks a free port; the line printed names it)

const http = require('node:http');
const { SpanKind, SpanStatusCode, ROOT_CONTEXT } = require('@opentelemetry/api');
const { context, propagation, say, startTracing, trace } = require('./tracing');

const { provider, tracer } = startTracing('tool');

const FORECASTS = {
  london: { temperature_c: 14, conditions: 'light rain' },
  paris: { temperature_c: 18, conditions: 'sunny' },
};

async function handle(req, res) {
  const url = new URL(req.url || '/', 'http://127.0.0.1');
  // Node lower-cases header names; the W3C propagators read `traceparent`, `tracestate`, `baggage`.
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  const span = tracer.startSpan(
    `${req.method} ${url.pathname}`,
    {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': req.method || '', 'url.path': url.pathname },
    },
    parent,
  );
  const runId = propagation.getBaggage(parent)?.getEntry('tcc.runId')?.value;
  if (runId) span.setAttribute('tcc.runId', runId); // TCC groups the span with the run

  let status = 200;
  let body;
  await context.with(trace.setSpan(parent, span), async () => {
    if (req.method !== 'GET' || url.pathname !== '/weather') {
      status = 404;
      body = { error: `no route ${req.method} ${url.pathname}` };
      return;
    }
    const city = url.searchParams.get('city') || 'London';
    const forecast = FORECASTS[city.toLowerCase()] || { temperature_c: 20, conditions: 'clear' };
    body = { city, ...forecast };
  });
  span.setAttribute('http.response.status_code', status);
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
  // Deliver before answering, so the trace is complete as soon as the caller has its answer;
  // a busy service would leave this to the batch processor's schedule.
  await provider.forceFlush();
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

const server = http.createServer((req, res) => {
  req.resume(); // no request body is used; drain it
  handle(req, res).catch((err) => {
    process.stderr.write(`tool: ${err && err.stack ? err.stack : err}\n`);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});

function stop() {
  server.close();
  provider.shutdown().finally(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

const port = Number(process.env.TOOL_PORT ?? 8001);
server.listen(port, '127.0.0.1', () => {
  say(`tool listening on http://127.0.0.1:${server.address().port}`);
});
