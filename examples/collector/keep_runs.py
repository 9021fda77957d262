"""A rotel trace processor: forward only the spans that belong to a TCC run.

rotel calls ``process_spans`` with each ``ResourceSpans`` it received (the class is
``rotel_sdk.open_telemetry.trace.v1.ResourceSpans``) before exporting it; the spans left in
``scope_spans[i].spans`` are the ones forwarded. A span is kept when it has the ``tcc.runId``
attribute: tcc_otel puts it on every run, step and tool call, and on the application's own spans
started inside a run. Everything else (health checks, other services sharing the collector) is
dropped here and never reaches TCC.

This file is loaded by rotel's embedded Python interpreter, not by the application, so it needs
nothing but ``rotel_sdk``, which that interpreter provides. ``rotel_forward.py`` passes its path
to rotel as ``processors_traces``.
"""

from __future__ import annotations

from typing import Any

from rotel_sdk.open_telemetry.common.v1 import ArrayValue, KeyValueList

RUN_ID = "tcc.runId"
"""The attribute a span needs to be forwarded."""


def process_spans(resource_spans: Any) -> None:
    """Drop every span without ``tcc.runId``; rotel forwards what is left."""
    for scope_spans in resource_spans.scope_spans:
        spans = scope_spans.spans  # a live view: deleting from it deletes from the batch
        for index in reversed(range(len(spans))):  # from the back, so indexes stay valid
            attributes = spans[index].attributes
            if any(kv.key == RUN_ID for kv in attributes):
                _pre_reverse_arrays(attributes)
            else:
                del spans[index]


def _pre_reverse_arrays(attributes: Any) -> None:
    """Reverse every array value of a kept span, so that rotel's own reversal restores it.

    rotel writes an array back from Python by popping its items from the end
    (``convert_value`` in ``rotel_python_processor_sdk/src/model/py_transform.rs``, in the agent
    of the ``rotel==0.0.1a15`` wheel and on rotel's main branch when this was written). So each
    array attribute of a span whose attributes a processor read arrives reversed:
    ``["a", "b"]`` becomes ``["b", "a"]``. Reversing here first makes the two cancel out.
    ``tests/e2e/test_collector.py`` checks the order of a three-item array: a rotel that fixes
    the bug fails that test, and then this function goes.
    """
    for kv in attributes:
        _pre_reverse(kv.value.value)


def _pre_reverse(value: Any) -> None:
    if isinstance(value, ArrayValue):
        items = [value[index] for index in range(len(value))]
        for index, item in enumerate(reversed(items)):
            value[index] = item
        for item in items:  # rotel reverses arrays inside arrays too
            _pre_reverse(item.value)
    elif isinstance(value, KeyValueList):
        for kv in value:
            _pre_reverse(kv.value.value)
