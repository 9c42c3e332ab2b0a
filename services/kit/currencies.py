"""ISO 4217 currencies with their scale (minor-unit digits), from the table shipped in ``data/iso4217.json``.

The table is built offline from the ISO list (see ``data/build_iso4217.py``). The ledger validates amounts with it;
the vault formats alert amounts with it. Tenant assets (``PTS``) are not in it: they live in the ledger's ``assets``
table.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

_TABLE = Path(__file__).parent / "data" / "iso4217.json"
CURRENCY_CODE_PATTERN = re.compile(r"^[A-Z0-9]{3,12}$")


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    scale: int
    name: str
    iso: bool


def _load() -> dict[str, Currency]:
    document = json.loads(_TABLE.read_text(encoding="utf-8"))
    return {
        row["code"]: Currency(code=row["code"], scale=int(row["scale"]), name=row["name"], iso=True)
        for row in document["currencies"]
    }


ISO_CURRENCIES: dict[str, Currency] = _load()


def iso_currency(code: str) -> Currency | None:
    return ISO_CURRENCIES.get(code)


def format_minor_units(amount_minor: int, scale: int) -> str:
    """``1250`` at scale 2 → ``"12.50"``; exact (integer arithmetic, no float), sign kept."""
    assert scale >= 0
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**scale)
    return f"{sign}{whole}.{fraction:0{scale}d}" if scale else f"{sign}{whole}"
