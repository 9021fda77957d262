"""Sharing: in the default mode, a record's span also goes to the span processors of the
application's global SDK provider, as a ``ReadableSpan``, so the application's own exporters get
whole traces: the spans its instrumentation starts inside a run, and the run, step and tool-call
spans above them.

It runs on a batcher thread, right after the span is encoded for TCC, from the name and
attributes built for TCC (``_encode.prepare``: built once, fitted to the span limits once); the
caller's thread never pays for it. Each processor's ``on_end`` runs there, so it must be quick
(``BatchSpanProcessor``'s is a queue put; a ``SimpleSpanProcessor`` sends on our thread and slows
the export to TCC, and in overload the callers, who then wait for the batcher: ``caller_waits``);
``on_start`` is never called: the span started on the caller's thread long before.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, Status, StatusCode

from tcc_otel._export._destination import SCOPE
from tcc_otel._export._encode import Prepared
from tcc_otel._guard import Guard
from tcc_otel._log import RateLimitedLog, logger
from tcc_otel._records._span import LightSpan
from tcc_otel._version import __version__

_KINDS = {kind.value + 1: kind for kind in SpanKind}  # OTLP number -> API enum
_CODES = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}
_UNSET = Status(StatusCode.UNSET)
_FIND = Guard("finding the span processors of the global tracer provider")
_BUILD = Guard("sharing a span with the application's span processors", reraise=False)

Count = Callable[[str, int], None]
"""Adds to a ``stats()`` counter (``Stats.add``)."""


class SharedSpan(ReadableSpan):
    """A record's span as the application's processors get it; it also says how many
    attributes the span limits left out, as the span sent to TCC does."""

    dropped = 0

    @property
    def dropped_attributes(self) -> int:
        return self.dropped


def readable_span(
    span: LightSpan, prepared: Prepared, resource: Resource, scope: InstrumentationScope
) -> SharedSpan:
    """``span`` (ended) as a ``ReadableSpan`` with ``prepared``'s name and attributes (not
    copied: nobody changes them once built, and ``attributes`` is a read-only view)."""
    code, message = span.status
    events = span.events
    shared = SharedSpan(
        name=prepared.name,
        context=span.get_span_context(),
        parent=span.parent,
        resource=resource,
        attributes=prepared.attributes,
        events=[Event(name, attrs, ns) for name, ns, attrs in events] if events else (),
        kind=_KINDS[span.kind],
        status=Status(_CODES[code], message) if code else _UNSET,
        start_time=span.start_ns,
        end_time=span.end_ns,
        instrumentation_scope=scope,
    )
    shared.dropped = prepared.dropped
    return shared


class Sharing:
    """Hands ended record spans to the span processors of the provider it follows, except
    those of type ``skip`` (ours: they would send the spans to TCC a second time).

    The processors are read at every span (a processor added later gets later spans); the
    filtered list is kept while the SDK's tuple of them stays the same object. A processor
    that raises is counted (``share_errors``) and logged; the others still get the span.
    """

    __slots__ = ("_cache", "_count", "_log", "_scope", "_skip", "_target", "_warned")

    def __init__(self, *, skip: type[SpanProcessor], count: Count) -> None:
        self._skip = skip
        self._count = count
        self._scope = InstrumentationScope(SCOPE, __version__)
        self._log = RateLimitedLog()
        # the provider's SynchronousMultiSpanProcessor (or Concurrent...) and its resource
        self._target: tuple[object, Resource] | None = None
        self._cache: tuple[object, tuple[SpanProcessor, ...]] = (None, ())
        self._warned = False

    @property
    def active(self) -> bool:
        """Whether there are processors to share with."""
        return self._target is not None

    def follow(self, provider: object) -> bool:
        """Share with the processors of ``provider`` (an SDK ``TracerProvider``) from now on;
        ``False``, sharing nothing, for a provider that takes no processors (no SDK, or none
        set) and, with one warning, for one that keeps them elsewhere than the SDK does (they
        are private to it: ``_active_span_processor``)."""
        found = None
        with _FIND:
            found = _processors_of(provider)
        self._target = found  # one assignment: the batcher threads read it without a lock
        self._warned = False
        return found is not None

    def __call__(self, span: LightSpan, prepared: Prepared) -> None:
        """Hand ``span`` to the processors (a batcher thread); never raises."""
        target = self._target
        if target is None:
            return
        multi, resource = target
        targets = self._targets(multi)
        if not targets:
            return
        shared = None
        with _BUILD:
            shared = readable_span(span, prepared, resource, self._scope)
        if shared is None:
            return
        for processor in targets:
            try:
                processor.on_end(shared)
            except Exception as exc:  # the application's bug must not stop our export
                self._count("share_errors", 1)
                self._log.warning(
                    "share_errors",
                    "the application's span processor %s raised %s in on_end() for a tcc_otel "
                    "span (counted under share_errors in tcc.stats())",
                    type(processor).__name__,
                    type(exc).__name__,
                )

    def _targets(self, multi: object) -> tuple[SpanProcessor, ...]:
        processors = getattr(multi, "_span_processors", None)
        cache = self._cache  # one read: batcher threads of several pipelines share this
        if processors is cache[0]:
            return cache[1]
        if not isinstance(processors, tuple):
            if not self._warned:
                self._warned = True
                logger.warning(
                    "the global tracer provider's span processors can no longer be found; "
                    "tcc_otel's run, step and tool-call spans are not shared with them"
                )
            return ()
        targets = tuple(one for one in processors if not isinstance(one, self._skip))
        self._cache = (processors, targets)
        return targets


def _processors_of(provider: object) -> tuple[object, Resource] | None:
    """The object holding ``provider``'s span processors, and its resource; see ``follow``."""
    if getattr(provider, "add_span_processor", None) is None:
        return None
    multi = getattr(provider, "_active_span_processor", None)
    if not isinstance(getattr(multi, "_span_processors", None), tuple):
        logger.warning(
            "the global tracer provider (%s) does not keep its span processors where the "
            "OpenTelemetry SDK does; tcc_otel's run, step and tool-call spans are not shared "
            "with your exporters (your spans inside runs still reach TCC)",
            type(provider).__name__,
        )
        return None
    resource = getattr(provider, "resource", None)
    return multi, resource if isinstance(resource, Resource) else Resource.get_empty()
