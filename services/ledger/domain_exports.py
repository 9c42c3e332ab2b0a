"""Compliance exports of transfers, as pure rules: the request's checks, what one exported transfer holds (only
pseudonyms, kinds, amounts, states and times: no raw id, no reference text, no personal data), the record that
audits an export."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from services.kit.errors import FieldViolation
from services.kit.ids import parse_uuid
from services.ledger import limits
from services.ledger.domain_transfers import TransferStatus
from services.ledger.export_keys import KEY_NAME_PATTERN, pseudonym

EXPORT_METHOD = "ExportTransactions"
PER_EXPORT_KEY_LABEL = "(per-export)"


@dataclass(frozen=True, slots=True)
class ExportQuery:
    export_id: uuid.UUID
    start_time: dt.datetime
    end_time: dt.datetime
    key_name: str

    def filter_key(self) -> dict[str, str]:
        """What page tokens are bound to: the export, its period and its key name."""
        return {
            "export": str(self.export_id),
            "from": self.start_time.isoformat(),
            "to": self.end_time.isoformat(),
            "key": self.key_name,
        }

    def audit_details(self) -> dict[str, str]:
        """Who exported is the audit event's actor; this is the rest: the period and the key's name (never the key)."""
        return {
            "start_time": self.start_time.isoformat(),
            "end_time": self.end_time.isoformat(),
            "pseudonym_key_id": self.key_name or PER_EXPORT_KEY_LABEL,
        }


def parse_export_query(
    export_id: str,
    start_time: dt.datetime | None,
    end_time: dt.datetime | None,
    key_name: str,
    violations: list[FieldViolation],
) -> ExportQuery | None:
    """The query, or None with the reasons added to ``violations``."""
    parsed = parse_uuid(export_id, "export_id", violations)
    if start_time is None:
        violations.append(FieldViolation("start_time", "is required"))
    if end_time is None:
        violations.append(FieldViolation("end_time", "is required"))
    elif start_time is not None and end_time <= start_time:
        violations.append(FieldViolation("end_time", "must be after start_time"))
    if key_name and (len(key_name) > limits.EXPORT_KEY_NAME_CHARS_MAX or not KEY_NAME_PATTERN.match(key_name)):
        violations.append(FieldViolation("pseudonym_key_id", "is not a key name"))
    if violations or parsed is None or start_time is None or end_time is None:
        return None
    return ExportQuery(parsed, start_time, end_time, key_name)


@dataclass(frozen=True, slots=True)
class ExportRow:
    """A transfer as the store reads it for an export, raw ids included; never leaves the service."""

    transfer_id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    debit_customer_id: uuid.UUID | None
    credit_customer_id: uuid.UUID | None
    debit_account_kind: int
    credit_account_kind: int
    currency: str
    amount_minor: int
    posted_amount_minor: int
    kind: int
    status: int
    reversal_of_transfer_id: uuid.UUID | None
    risk_decision: int
    created_at: dt.datetime
    posted_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class ExportedTransfer:
    transfer_pseudonym: str
    debit_account_pseudonym: str
    credit_account_pseudonym: str
    debit_customer_pseudonym: str
    credit_customer_pseudonym: str
    debit_account_kind: int
    credit_account_kind: int
    currency: str
    amount_minor: int
    kind: int
    status: int
    reversal_of_transfer_pseudonym: str
    risk_decision: int
    created_at: dt.datetime
    posted_at: dt.datetime | None


def exported(row: ExportRow, export_key: bytes) -> ExportedTransfer:
    """The row with every identifier replaced by its pseudonym under the export's key. A posted transfer shows what
    posted (a hold may post less than it held); any other shows what it holds or held."""
    posted = row.status == TransferStatus.POSTED and row.posted_amount_minor > 0
    amount_minor = row.posted_amount_minor if posted else row.amount_minor
    assert amount_minor > 0
    return ExportedTransfer(
        transfer_pseudonym=pseudonym(export_key, row.transfer_id),
        debit_account_pseudonym=pseudonym(export_key, row.debit_account_id),
        credit_account_pseudonym=pseudonym(export_key, row.credit_account_id),
        debit_customer_pseudonym=pseudonym(export_key, row.debit_customer_id),
        credit_customer_pseudonym=pseudonym(export_key, row.credit_customer_id),
        debit_account_kind=row.debit_account_kind,
        credit_account_kind=row.credit_account_kind,
        currency=row.currency,
        amount_minor=amount_minor,
        kind=row.kind,
        status=row.status,
        reversal_of_transfer_pseudonym=pseudonym(export_key, row.reversal_of_transfer_id),
        risk_decision=row.risk_decision,
        created_at=row.created_at,
        posted_at=row.posted_at,
    )
