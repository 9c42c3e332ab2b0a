"""ISO 4217 currencies for the ledger: the kit's table (``services/kit/currencies.py``, shared with the vault's alert
formatting); tenant assets (``PTS``) live in the ``assets`` table and are looked up by the store."""

from __future__ import annotations

from services.kit.currencies import CURRENCY_CODE_PATTERN, ISO_CURRENCIES, Currency, iso_currency

__all__ = ["CURRENCY_CODE_PATTERN", "ISO_CURRENCIES", "Currency", "iso_currency"]
