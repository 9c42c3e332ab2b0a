from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.kit.telemetry import RedactingSpanExporter


def test_exported_spans_are_redacted() -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(exported)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("op") as span:
        span.set_attribute("note", "to +8613812345678 with card 4111111111111111")
        span.set_attribute("amount_minor", 1250)
        try:
            raise ValueError("Bearer abc.def.ghi rejected")
        except ValueError as err:
            span.record_exception(err)
    (finished,) = exported.get_finished_spans()
    dumped = finished.to_json()
    for secret in ("8613812345678", "4111111111111111", "abc.def.ghi"):
        assert secret not in dumped
    assert finished.attributes is not None
    assert finished.attributes["amount_minor"] == 1250
    assert finished.name == "op"
