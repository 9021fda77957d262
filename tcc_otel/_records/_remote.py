"""RemoteRun: a run that lives in another service, continued here from its headers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import Span

from tcc_otel._records._context import extract
from tcc_otel._records._road import Road
from tcc_otel._records._step import Step
from tcc_otel._records._tool_call import ToolCall
from tcc_otel._schema import _keys as attrs


class RemoteRun:
    """A run that lives in another service, continued here from its headers.

    ``with tcc.continue_run(headers) as run:`` makes the caller's span the active parent, so
    ``run.step()``/``run.tool_call()`` (and any span started inside) join its trace.
    """

    def __init__(self, road: Road, carrier: Mapping[str, str], run_id: str | None) -> None:
        self._road = road
        context = extract(carrier)
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
        return Step(self._road, self.run_id, self._parent(), step_id, local=False)

    def tool_call(self, tool_name: Any = None, tool_call_id: str | None = None) -> ToolCall:
        """A tool call of the remote run, parented to the caller's span."""
        return ToolCall(
            self._road, self.run_id, self._parent(), tool_name, tool_call_id, local=False
        )

    def _parent(self) -> Span | None:
        span = trace.get_current_span(self.context)
        return span if span.get_span_context().is_valid else None

    def __enter__(self) -> RemoteRun:
        self._tokens.append(otel_context.attach(self.context))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._tokens:
            otel_context.detach(self._tokens.pop())
