"""Which record a span carries, read from its attributes: the one place these rules live."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tcc_otel._schema import _keys as keys

_RUN = keys.SpanKind.RUN.value


def is_run(attributes: Mapping[str, Any] | None) -> bool:
    """Whether a span with ``attributes`` is a run's own span (``tcc.type`` is ``run``): the
    span its steps and tool calls wait for and travel with."""
    return attributes is not None and attributes.get(keys.TCC_TYPE) == _RUN


def run_id_of(attributes: Mapping[str, Any] | None) -> str | None:
    """The run a span with ``attributes`` belongs to (its ``tcc.runId``); ``None`` without one."""
    if attributes is None:
        return None
    run_id = attributes.get(keys.TCC_RUN_ID)
    return run_id if isinstance(run_id, str) and run_id else None
