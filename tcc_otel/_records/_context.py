"""Carry a run across services: W3C ``traceparent``/``tracestate`` plus ``baggage`` with
``tcc.runId``, so a step or tool call recorded in another process joins the same trace and run;
and which run the active context belongs to."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tcc_otel._records._span import LightSpan
from tcc_otel._schema import _keys as attrs
from tcc_otel._schema._kinds import run_id_of

RECORD = otel_context.create_key("tcc_otel.record")
"""Context key of the record a ``with`` block made active (``record_in``)."""

W3C = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
"""Always W3C, whatever ``OTEL_PROPAGATORS`` says: the other side is TCC-aware code."""


def inject(carrier: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Write the active span's ``traceparent`` (and ``tracestate``) and a ``baggage`` entry
    ``tcc.runId`` into ``carrier`` (a new dict if ``None``) and return it."""
    headers: MutableMapping[str, str] = {} if carrier is None else carrier
    context = otel_context.get_current()
    run_id = run_id_in(context)
    if run_id is not None:
        context = baggage.set_baggage(attrs.TCC_RUN_ID, run_id, context)
    W3C.inject(headers, context=context)
    return headers


def extract(carrier: Mapping[str, str]) -> Context:
    """The context the headers carry; header names in any case (W3C propagators look up
    lower-case names only)."""
    return W3C.extract({str(k).lower(): v for k, v in carrier.items()})


def run_id_in(context: Context) -> str | None:
    """The ``tcc.runId`` of the active span, if it is a record's (or baggage carries one)."""
    span = trace.get_current_span(context)
    if isinstance(span, LightSpan):
        return span.run_id
    span_attrs = getattr(span, "attributes", None)  # SDK spans
    run_id = run_id_of(span_attrs) if isinstance(span_attrs, Mapping) else None
    if run_id is not None:
        return run_id
    found = baggage.get_baggage(attrs.TCC_RUN_ID, context)
    return None if found is None else str(found)


def record_in(context: Context) -> object | None:
    """The innermost record a ``with`` block made active in ``context``, if any."""
    return otel_context.get_value(RECORD, context)
