"""Consuming events from Redis Streams: each event is handled in a CONSUMER span that starts a new trace *linked*
to the span that wrote the event (the envelope's ``traceparent``), and the consumer's lag is a gauge.

A link rather than a parent: an event may be handled long after the request ended, by many consumers, or again
after a redelivery; each handling is its own trace that points back at the payment that caused it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanKind
from prometheus_client import Gauge

from wallet.common.v1 import events_pb2

EVENT_CONSUMER_LAG_SECONDS = Gauge(
    "wallet_event_consumer_lag_seconds",
    "Age of the last event a consumer handled (now - occurred_at), in seconds.",
    ["consumer", "stream"],
)

_tracer = trace.get_tracer(__name__)


def link_to_producer(traceparent: str) -> list[Link]:
    """A link to the span a ``traceparent`` names; none when it is empty or malformed."""
    if not traceparent:
        return []
    carrier = {"traceparent": traceparent}
    producer = trace.get_current_span(propagate.extract(carrier)).get_span_context()
    return [Link(producer)] if producer.is_valid else []


@contextmanager
def consuming(consumer: str, stream: str, envelope: events_pb2.EventEnvelope) -> Iterator[Span]:
    """Wraps the handling of one event: lag gauge, and a CONSUMER span linked to the producer (messaging
    semantic conventions; ids and the event type only, never the payload)."""
    occurred_s = envelope.occurred_at.ToNanoseconds() / 1e9
    EVENT_CONSUMER_LAG_SECONDS.labels(consumer, stream).set(max(0.0, time.time() - occurred_s))
    with _tracer.start_as_current_span(
        f"process {stream}",
        context=otel_context.Context(),  # a new trace, whatever span the consumer loop happens to run in
        kind=SpanKind.CONSUMER,
        links=link_to_producer(envelope.traceparent),
        attributes={
            "messaging.system": "redis",
            "messaging.operation": "process",
            "messaging.destination.name": stream,
            "messaging.message.id": envelope.event_id,
            "messaging.consumer.group.name": consumer,
            "wallet.event_type": envelope.event_type,
        },
    ) as span:
        yield span
