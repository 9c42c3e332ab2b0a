"""services/ledger/domain_exports.py: the export request's checks, page tokens bound to the export, its period and
its key, and exported rows carrying pseudonyms only."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from services.kit import paging
from services.kit.errors import FieldViolation
from services.ledger.domain_exports import ExportQuery, ExportRow, exported, parse_export_query
from services.ledger.domain_transfers import TransferStatus
from services.ledger.export_keys import pseudonym

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
EXPORT_ID = "0190c3e1-2222-7000-8000-000000000001"
KEY = bytes(range(32))


def query(**changes: object) -> ExportQuery:
    base = ExportQuery(uuid.UUID(EXPORT_ID), START, END, "")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_valid_request_parses() -> None:
    violations: list[FieldViolation] = []
    parsed = parse_export_query(EXPORT_ID, START, END, "quarterly", violations)
    assert violations == []
    assert parsed == ExportQuery(uuid.UUID(EXPORT_ID), START, END, "quarterly")


@pytest.mark.parametrize(
    ("export_id", "start", "end", "key_name", "fields"),
    [
        ("", START, END, "", {"export_id"}),
        ("not-a-uuid", START, END, "", {"export_id"}),
        (EXPORT_ID, None, END, "", {"start_time"}),
        (EXPORT_ID, START, None, "", {"end_time"}),
        (EXPORT_ID, START, START, "", {"end_time"}),
        (EXPORT_ID, END, START, "", {"end_time"}),
        (EXPORT_ID, START, END, "Quarterly", {"pseudonym_key_id"}),
        (EXPORT_ID, START, END, "../etc/passwd", {"pseudonym_key_id"}),
        (EXPORT_ID, START, END, "k" * 41, {"pseudonym_key_id"}),
        ("", None, None, "x y", {"export_id", "start_time", "end_time", "pseudonym_key_id"}),
    ],
)
def test_bad_requests_name_every_field(
    export_id: str, start: dt.datetime | None, end: dt.datetime | None, key_name: str, fields: set[str]
) -> None:
    violations: list[FieldViolation] = []
    assert parse_export_query(export_id, start, end, key_name, violations) is None
    assert {v.field for v in violations} == fields


def test_the_longest_key_name_is_accepted() -> None:
    violations: list[FieldViolation] = []
    assert parse_export_query(EXPORT_ID, START, END, "k" * 40, violations) is not None
    assert violations == []


@pytest.mark.parametrize(
    "other",
    [
        query(export_id=uuid.UUID("0190c3e1-2222-7000-8000-000000000002")),
        query(start_time=START + dt.timedelta(seconds=1)),
        query(end_time=END - dt.timedelta(microseconds=1)),
        query(key_name="quarterly"),
    ],
)
def test_a_page_token_is_bound_to_the_export_its_period_and_its_key(other: ExportQuery) -> None:
    token = paging.encode_page_token({"s": "sealed"}, query().filter_key())
    assert paging.decode_page_token(token, query().filter_key()) == {"s": "sealed"}
    with pytest.raises(paging.PageTokenInvalid):
        paging.decode_page_token(token, other.filter_key())


def test_audit_details_name_the_period_and_the_key_never_the_key_material() -> None:
    assert query().audit_details() == {
        "start_time": "2026-01-01T00:00:00+00:00",
        "end_time": "2026-02-01T00:00:00+00:00",
        "pseudonym_key_id": "(per-export)",
    }
    assert query(key_name="quarterly").audit_details()["pseudonym_key_id"] == "quarterly"


def row(**changes: object) -> ExportRow:
    base = ExportRow(
        transfer_id=uuid.uuid4(),
        debit_account_id=uuid.uuid4(),
        credit_account_id=uuid.uuid4(),
        debit_customer_id=uuid.uuid4(),
        credit_customer_id=None,
        debit_account_kind=1,
        credit_account_kind=2,
        currency="EUR",
        amount_minor=500,
        posted_amount_minor=500,
        kind=1,
        status=int(TransferStatus.POSTED),
        reversal_of_transfer_id=None,
        risk_decision=1,
        created_at=START,
        posted_at=START,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_an_exported_transfer_carries_pseudonyms_and_no_raw_id() -> None:
    source = row()
    out = exported(source, KEY)
    assert out.transfer_pseudonym == pseudonym(KEY, source.transfer_id)
    assert out.debit_account_pseudonym == pseudonym(KEY, source.debit_account_id)
    assert out.credit_account_pseudonym == pseudonym(KEY, source.credit_account_id)
    assert out.debit_customer_pseudonym == pseudonym(KEY, source.debit_customer_id)
    assert out.credit_customer_pseudonym == ""
    assert out.reversal_of_transfer_pseudonym == ""
    text = repr(out)
    for identifier in (
        source.transfer_id,
        source.debit_account_id,
        source.credit_account_id,
        source.debit_customer_id,
    ):
        assert str(identifier) not in text
        assert identifier.hex not in text


def test_amounts_show_what_posted_or_what_is_held() -> None:
    assert exported(row(amount_minor=500, posted_amount_minor=300), KEY).amount_minor == 300
    held = row(status=int(TransferStatus.PENDING), posted_amount_minor=0, posted_at=None)
    assert exported(held, KEY).amount_minor == 500
    voided = row(status=int(TransferStatus.VOIDED), posted_amount_minor=0, posted_at=None)
    assert exported(voided, KEY).amount_minor == 500
