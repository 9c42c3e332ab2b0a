"""A phone number and a card number, in each spelling a caller might use, passed through every way a record reaches
the JSON log line — the message, %-args (positional and by name), structured fields (strings, numbers, nested),
an exception's message and its chained cause, and a library's own logger — come out masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest

from services.kit.logs import setup_logging

PHONE_SPELLINGS = ("+44 7911 246813", "+447911246813", "07911 246813", "13812345678", "(415) 555-2671")
CARD_SPELLINGS = ("4242424242424242", "4242 4242 4242 4242", "4242-4242-4242-4242")
# The same numbers as integers, as a careless caller might pass them in a structured field.
PHONE_NUMBER_INT = 447911246813
CARD_NUMBER_INT = 4242424242424242


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    setup_logging("ledger", "DEBUG", stream)
    try:
        yield stream
    finally:
        logging.getLogger().handlers.clear()


def _raise_chained(secret: str) -> None:
    try:
        raise KeyError(f"lookup of {secret} failed")
    except KeyError as err:
        raise RuntimeError(f"could not notify {secret}") from err


def log_paths(secret: str) -> dict[str, Callable[[logging.Logger], None]]:
    def exception(log: logging.Logger) -> None:
        try:
            _raise_chained(secret)
        except RuntimeError:
            log.exception("notification failed")

    def exc_info_object(log: logging.Logger) -> None:
        log.error("unhandled error in RPC handler", exc_info=ValueError(f"bad input {secret}"))

    return {
        "message": lambda log: log.info(f"paying {secret} now"),
        "positional args": lambda log: log.warning("paying %s now", secret),
        "named args": lambda log: log.warning("paying %(payee)s now", {"payee": secret}),
        "field": lambda log: log.info("paying", extra={"fields": {"payee": secret}}),
        "nested field": lambda log: log.info("paying", extra={"fields": {"request": {"to": [secret]}}}),
        "object field": lambda log: log.info("paying", extra={"fields": {"payee": ValueError(secret)}}),
        "exception and cause": exception,
        "exc_info object": exc_info_object,
        "library logger": lambda _: logging.getLogger("uvicorn.error").error("peer %s reset", secret),
    }


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


@pytest.mark.parametrize("secret", PHONE_SPELLINGS + CARD_SPELLINGS)
@pytest.mark.parametrize("path", list(log_paths("x")))
def test_phone_and_card_are_masked_on_every_log_path(captured: io.StringIO, secret: str, path: str) -> None:
    log_paths(secret)[path](logging.getLogger("services.ledger.test"))
    output = captured.getvalue()
    line = json.loads(output.splitlines()[-1])
    assert line["service"] == "ledger"
    assert secret not in output
    assert _digits(secret) not in _digits(output.replace(line["ts"], ""))
    assert "[REDACTED" in output


@pytest.mark.parametrize("number", [PHONE_NUMBER_INT, CARD_NUMBER_INT])
def test_numbers_in_fields_are_masked_when_they_look_like_a_phone_or_card(captured: io.StringIO, number: int) -> None:
    logging.getLogger("services.ledger.test").info(
        "paying", extra={"fields": {"payee": number, "amount_minor": 1250}}
    )
    line = json.loads(captured.getvalue())
    assert str(number) not in captured.getvalue()
    assert line["payee"].startswith("[REDACTED")
    assert line["amount_minor"] == 1250  # ordinary amounts stay numbers
