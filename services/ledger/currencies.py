"""ISO 4217 currencies with their scale (minor-unit digits), from the table shipped in ``data/iso4217.json``.

The table is built offline from the ISO list (see ``data/build_iso4217.py``); tenant assets (``PTS``) live in the
``assets`` table and are looked up by the store.
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
