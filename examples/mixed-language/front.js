'use strict';
// The "front" service, as one request: it handles POST /chat (a SERVER span), asks the Python
// agent over HTTP with the span's W3C `traceparent` in the headers, prints the agent's JSON
// answer, delivers its span and exits (non-zero if the agent failed).
//
//   AGENT_URL=http://127.0.0.1:8000/chat node front.js "What is the weather in Paris?"

const http = require('node:http');
const { SpanKind, SpanStatusCode } = require('@opentelemetry/api');
const { context, propagation, startTracing, trace } = require('./tracing');

const { provider, tracer } = startTracing('front');

const AGENT_URL = process.env.AGENT_URL || 'http://127.0.0.1:8000/chat';
const MESSAGE = process.argv[2] || 'What is the weather in London?';
const TIMEOUT_MS = 30_000; // a hang guard: the agent calls a tool and answers in well under this

/** POST `payload` as JSON to `url` with `headers`; resolves to { status, body }. */
function postJson(url, payload, headers) {
  const data = JSON.stringify(payload);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        timeout: TIMEOUT_MS,
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(data),
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

async function chat(message) {
  const span = tracer.startSpan('POST /chat', {
    kind: SpanKind.SERVER,
    attributes: { 'http.request.method': 'POST', 'http.route': '/chat' },
  });
  try {
    return await context.with(trace.setSpan(context.active(), span), async () => {
      const headers = {};
      propagation.inject(context.active(), headers); // traceparent (+ tracestate, baggage)
      const { status, body } = await postJson(AGENT_URL, { message }, headers);
      span.setAttribute('http.response.status_code', status);
      if (status !== 200) throw new Error(`agent answered HTTP ${status}: ${body}`);
      return JSON.parse(body.toString('utf8'));
    });
  } catch (err) {
    span.recordException(err);
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(err && err.message) });
    throw err;
  } finally {
    span.end();
  }
}

chat(MESSAGE)
  .then((answer) => {
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  })
  .catch((err) => {
    process.stderr.write(`front: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 1;
  })
  .finally(() => provider.shutdown()); // delivers the span before the process exits
