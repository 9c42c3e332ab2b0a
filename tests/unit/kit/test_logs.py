import io
import json
import logging

from services.kit.logs import setup_logging
from services.kit.request_context import request_id_var


def test_json_lines_with_request_id_and_redaction() -> None:
    stream = io.StringIO()
    setup_logging("ledger", "INFO", stream)
    token = request_id_var.set("req-123")
    try:
        logging.getLogger("test").warning(
            "sending to %s with Bearer abc.def.ghi",
            "+86 138 1234 5678",
            extra={"fields": {"phone": "+8613812345678", "card": "4111111111111111", "amount_minor": 1250}},
        )
        try:
            raise ValueError("card 4111111111111111 rejected")
        except ValueError:
            logging.getLogger("test").exception("failed")
    finally:
        request_id_var.reset(token)
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["service"] == "ledger"
    assert lines[0]["request_id"] == "req-123"
    assert lines[0]["amount_minor"] == 1250
    text = stream.getvalue()
    for leaked in ("138 1234 5678", "8613812345678", "4111111111111111", "abc.def.ghi"):
        assert leaked not in text
    assert "exc" in lines[1]
