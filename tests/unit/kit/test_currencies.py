"""The ISO 4217 table and exact minor-unit formatting."""

from __future__ import annotations

import pytest

from services.kit.currencies import format_minor_units, iso_currency


def test_scales_come_from_the_iso_table() -> None:
    assert [iso_currency(code).scale for code in ("EUR", "JPY", "BHD")] == [2, 0, 3]  # type: ignore[union-attr]
    assert iso_currency("PTS") is None


@pytest.mark.parametrize(
    ("amount_minor", "scale", "shown"),
    [(1250, 2, "12.50"), (5, 2, "0.05"), (0, 2, "0.00"), (-1250, 2, "-12.50"), (7, 0, "7"), (1, 3, "0.001")],
)
def test_format_minor_units_is_exact(amount_minor: int, scale: int, shown: str) -> None:
    assert format_minor_units(amount_minor, scale) == shown


def test_a_large_amount_keeps_every_digit() -> None:
    assert format_minor_units(9_007_199_254_740_993, 2) == "90071992547409.93"
