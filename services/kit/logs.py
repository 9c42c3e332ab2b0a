"""JSON-lines logging with trace and request ids, and a redaction filter on every record.

One line per record: ``{"ts", "level", "service", "logger", "msg", "trace_id", "span_id", "request_id", ...}``.
Structured fields go in ``extra={"fields": {...}}``; they are redacted like the message.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

from services.kit.redaction import redact
from services.kit.request_context import current_request_id

_STANDARD_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
# Integers in structured fields from this size (10 digits) up are checked like text: phone and card numbers.
INTEGER_REDACTION_MIN = 1_000_000_000


def _redact_value(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | float) or value is None:
        return value
    if isinstance(value, int):
        # Amounts stay readable numbers; an integer long enough to be a phone or card number goes through the
        # same filter as text (a masked 10-digit amount costs little, a leaked card number a lot).
        if abs(value) < INTEGER_REDACTION_MIN:
            return value
        masked = redact(str(value))
        return value if masked == str(value) else masked
    if isinstance(value, dict):
        return {str(k): _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """Formats a record as one redacted JSON object."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        request_id = current_request_id()
        if request_id is not None:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                entry.setdefault(str(key), _redact_value(value))
        if record.exc_info is not None:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def setup_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Routes every logger (ours and libraries') through one redacting JSON handler."""
    level_name = level.upper()
    if level_name not in _STANDARD_LEVELS:
        level_name = "INFO"
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level_name)
