"""Carry a run across services: W3C ``traceparent``/``tracestate`` plus ``baggage`` with
``tcc.runId``, so a step or tool call recorded in another process joins the same trace and run."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tcc_otel._records._span import LightSpan
from tcc_otel._schema import _keys as attrs

if TYPE_CHECKING:
    from tcc_otel._client import Client
    from tcc_otel._records._step import Step
    from tcc_otel._records._tool_call import ToolCall

# Always W3C, whatever OTEL_PROPAGATORS says: the other side is TCC-aware code, not a guess.
_W3C = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


def inject(carrier: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Write the active span's ``traceparent`` (and ``tracestate``) and a ``baggage`` entry
    ``tcc.runId`` into ``carrier`` (a new dict if ``None``) and return it."""
    headers: MutableMapping[str, str] = {} if carrier is None else carrier
    context = otel_context.get_current()
    run_id = run_id_in(context)
    if run_id is not None:
        context = baggage.set_baggage(attrs.TCC_RUN_ID, run_id, context)
    _W3C.inject(headers, context=context)
    return headers


class RemoteRun:
    """A run that lives in another service, continued here from its headers.

    ``with tcc.continue_run(headers) as run:`` makes the caller's span the active parent, so
    ``run.step()``/``run.tool_call()`` (and any span started inside) join its trace.
    """

    def __init__(self, client: Client, carrier: Mapping[str, str], run_id: str | None) -> None:
        self._client = client
        # Header names are case-insensitive; W3C propagators look up lower-case names only.
        context = _W3C.extract({str(k).lower(): v for k, v in carrier.items()})
        found = baggage.get_baggage(attrs.TCC_RUN_ID, context)
        resolved = run_id if run_id is not None else found
        if resolved is None:
            raise ValueError(
                "tcc.continue_run() found no tcc.runId in the headers' baggage; pass "
                "run_id=... or send the headers from tcc.inject() on the calling side."
            )
        self.run_id = str(resolved)
        # The run id travels on: spans started inside, and tcc.inject() here, carry it.
        self.context: Context = baggage.set_baggage(attrs.TCC_RUN_ID, self.run_id, context)
        self._tokens: list[Any] = []

    def step(self, step_id: str | None = None) -> Step:
        """A step of the remote run, parented to the caller's span."""
        return self._client.start_step(self.run_id, step_id, remote_parent=self._parent())

    def tool_call(self, tool_name: Any = None, tool_call_id: str | None = None) -> ToolCall:
        """A tool call of the remote run, parented to the caller's span."""
        return self._client.start_tool_call(
            self.run_id, None, self._parent(), tool_name, tool_call_id
        )

    def _parent(self) -> Span | None:
        span = trace.get_current_span(self.context)
        return span if span.get_span_context().is_valid else None

    def __enter__(self) -> RemoteRun:
        self._tokens.append(otel_context.attach(self.context))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tokens:
            otel_context.detach(self._tokens.pop())


def run_id_in(context: Context) -> str | None:
    """The ``tcc.runId`` of the active span, if it is a record's (or baggage carries one)."""
    span = trace.get_current_span(context)
    if isinstance(span, LightSpan):
        return span.run_id
    span_attrs = getattr(span, "attributes", None)  # SDK spans
    if isinstance(span_attrs, Mapping):
        run_id = span_attrs.get(attrs.TCC_RUN_ID)
        if isinstance(run_id, str):
            return run_id
    found = baggage.get_baggage(attrs.TCC_RUN_ID, context)
    return None if found is None else str(found)
