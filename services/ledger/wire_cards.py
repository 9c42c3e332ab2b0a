"""Proto ⇄ domain conversions for virtual cards (and nothing else)."""

from __future__ import annotations

import datetime as dt

from services.ledger.domain_cards import Card
from services.ledger.service_cards import CardPaymentRequest
from services.ledger.wire import money_in, money_out, timestamp_out
from wallet.ledger.v1 import ledger_cards_pb2 as pb


def card_out(card: Card, now: dt.datetime) -> pb.Card:
    limits = pb.CardLimits()
    if card.limits.per_transaction_minor is not None:
        limits.per_transaction_limit.CopyFrom(money_out(card.currency, card.limits.per_transaction_minor))
    if card.limits.daily_minor is not None:
        limits.daily_limit.CopyFrom(money_out(card.currency, card.limits.daily_minor))
    return pb.Card(
        card_id=str(card.card_id),
        account_id=str(card.account_id),
        customer_id=str(card.customer_id),
        status=int(card.status_at(now)),  # type: ignore[arg-type]
        last_four=card.last_four,
        expiry_month=card.expiry_month,
        expiry_year=card.expiry_year,
        card_secret_id=str(card.card_secret_id),
        limits=limits,
        daily_spent=money_out(card.currency, card.daily_spent_minor),
        label=card.label,
        created_at=timestamp_out(card.created_at),
        closed_at=timestamp_out(card.closed_at),
    )


def payment_request_in(message: pb.AuthorizeCardPaymentRequest) -> CardPaymentRequest:
    return CardPaymentRequest(
        transfer_id=message.transfer_id,
        card_id=message.card_id,
        merchant_account_id=message.merchant_account_id,
        amount=money_in(message.amount, message.HasField("amount")),
        reference=message.reference,
        hold_timeout_ms=message.hold_timeout.ToMilliseconds() if message.HasField("hold_timeout") else 0,
    )
