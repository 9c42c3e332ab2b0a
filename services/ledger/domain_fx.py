"""FX rates and quotes: decimal-string rates and the one rounding rule. Pure.

A rate ``base/quote = r`` means one major unit of ``base`` buys ``r`` major units of ``quote``. Converting an amount
sold in minor units of the sell currency into the bought currency: ``buy_minor = floor(sell_minor * r *
10^(buy_scale - sell_scale))`` — **the received amount rounds down** to its minor unit, always. When the client fixes
the amount to receive, the sell amount is the smallest one whose rounded-down conversion reaches it.
"""

from __future__ import annotations

import decimal
import re

from services.kit.errors import FieldViolation
from services.ledger import limits

RATE_PATTERN = re.compile(r"^(0|[1-9][0-9]{0,17})(\.[0-9]{1,18})?$")
_CONTEXT = decimal.Context(prec=60, rounding=decimal.ROUND_FLOOR)


def parse_rate(text: str, field: str, violations: list[FieldViolation]) -> decimal.Decimal | None:
    if len(text) > limits.FX_RATE_CHARS_MAX or not RATE_PATTERN.match(text):
        violations.append(FieldViolation(field, "must be a positive decimal string such as 7.1234"))
        return None
    rate = decimal.Decimal(text)
    if rate <= 0:
        violations.append(FieldViolation(field, "must be positive"))
        return None
    return rate


def buy_for_sell(sell_minor: int, rate: decimal.Decimal, sell_scale: int, buy_scale: int) -> int:
    """Minor units received for ``sell_minor``: rounded down."""
    exact = _CONTEXT.multiply(
        _CONTEXT.multiply(decimal.Decimal(sell_minor), rate), decimal.Decimal(10) ** (buy_scale - sell_scale)
    )
    return int(exact.to_integral_value(rounding=decimal.ROUND_FLOOR))


def sell_for_buy(buy_minor: int, rate: decimal.Decimal, sell_scale: int, buy_scale: int) -> int:
    """The smallest sell amount whose rounded-down conversion is at least ``buy_minor``."""
    factor = _CONTEXT.multiply(rate, decimal.Decimal(10) ** (buy_scale - sell_scale))
    guess = int(_CONTEXT.divide(decimal.Decimal(buy_minor), factor).to_integral_value(rounding=decimal.ROUND_CEILING))
    while guess > 1 and buy_for_sell(guess - 1, rate, sell_scale, buy_scale) >= buy_minor:
        guess -= 1
    while buy_for_sell(guess, rate, sell_scale, buy_scale) < buy_minor:
        guess += 1
    return guess


def invert(rate: decimal.Decimal) -> decimal.Decimal:
    return _CONTEXT.divide(decimal.Decimal(1), rate)
