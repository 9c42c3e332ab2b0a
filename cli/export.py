"""``walletctl export transactions|audit-trail``: compliance exports written to a file, with progress bars.

- ``transactions``: the ledger's ``ExportTransactions`` (pseudonymized, audited once by the ledger), as CSV or JSON
  Lines; ``--key-name`` picks a configured pseudonym key to link exports on purpose.
- ``audit-trail``: auth's audit events, the ledger's admin actions, the vault's access log, risk's decisions and
  complaint steps, each read through its service's listing with one ``export_id`` (so each service audits its part
  once), as JSON Lines ``{"source": ..., "record": ...}``, each record cut down to its source's allow-list with
  customers pseudonymized (``cli/audit_trail_privacy.py``).
Files are written atomically (``cli/export_files.py``): a failed or refused export leaves no file.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from google.protobuf import json_format, timestamp_pb2
from google.protobuf.message import Message
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from cli.audit_trail_privacy import (
    ACCESS_LOG_ENTRY,
    ASSESSMENT,
    AUTH_AUDIT_EVENT,
    COMPLAINT_EVENT,
    PSEUDONYM_KEY_BYTES,
    Redactor,
    Spec,
    ledger_audit_event,
    linked_export_key,
)
from cli.export_files import ExportFormat, RowWriter, atomic_text_file
from cli.output import OrganizationOption, execute, fail
from cli.session import Session
from services.kit.config import ConfigError, Env, decode_key
from wallet.auth.v1 import auth_audit_pb2, auth_members_pb2, auth_service_accounts_pb2, auth_sessions_pb2
from wallet.contacts.v1 import contacts_access_log_pb2
from wallet.ledger.v1 import ledger_accounts_pb2, ledger_integrity_pb2, ledger_transfers_pb2
from wallet.risk.v1 import risk_assessments_pb2, risk_complaints_pb2

app = typer.Typer(help="Compliance exports: pseudonymized transactions and the audit trail.", no_args_is_help=True)

EXPORT_PAGE_SIZE = 500
# Pages of members and of service accounts read for the staff list: 200 x 500 = 100,000 each.
STAFF_PAGES_MAX = 200
# Rows pass through the progress bar's console on stderr, so stdout keeps only the summary line.
progress_console = Console(stderr=True)

TRANSFER_COLUMNS = (
    "transfer_pseudonym",
    "debit_account_pseudonym",
    "credit_account_pseudonym",
    "debit_customer_pseudonym",
    "credit_customer_pseudonym",
    "debit_account_kind",
    "credit_account_kind",
    "currency",
    "amount_minor",
    "kind",
    "status",
    "reversal_of_transfer_pseudonym",
    "risk_decision",
    "created_at",
    "posted_at",
)
AUDIT_TRAIL_COLUMNS = ("source", "record")

FromOption = Annotated[str, typer.Option("--from", help="start of the period, inclusive (ISO date or time; UTC)")]
ToOption = Annotated[str, typer.Option("--to", help="end of the period, exclusive (ISO date or time; UTC)")]
OutOption = Annotated[Path, typer.Option("--out", help="file to write (replaced atomically when complete)")]


def parse_instant(text: str, option: str) -> dt.datetime:
    """An ISO 8601 date (midnight) or date-time; without an offset it is UTC."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise fail(
            f"{option}: {text!r} is not an ISO 8601 date or time (e.g. 2026-01-31 or 2026-01-31T12:00Z)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def parse_period(start_text: str, end_text: str) -> tuple[dt.datetime, dt.datetime]:
    start, end = parse_instant(start_text, "--from"), parse_instant(end_text, "--to")
    if end <= start:
        raise fail("--to must be after --from")
    return start, end


def timestamp(moment: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _instant(stamp: timestamp_pb2.Timestamp, present: bool) -> str:
    return stamp.ToDatetime(tzinfo=dt.UTC).isoformat() if present else ""


def _enum_name(enum_type: Any, value: int) -> str:
    try:
        return str(enum_type.Name(value))
    except ValueError:
        return str(value)


def transfer_row(transfer: ledger_integrity_pb2.ExportedTransfer) -> dict[str, Any]:
    """One exported transfer as a flat row: the same columns in CSV and JSON Lines."""
    return {
        "transfer_pseudonym": transfer.transfer_pseudonym,
        "debit_account_pseudonym": transfer.debit_account_pseudonym,
        "credit_account_pseudonym": transfer.credit_account_pseudonym,
        "debit_customer_pseudonym": transfer.debit_customer_pseudonym,
        "credit_customer_pseudonym": transfer.credit_customer_pseudonym,
        "debit_account_kind": _enum_name(ledger_accounts_pb2.AccountKind, transfer.debit_account_kind),
        "credit_account_kind": _enum_name(ledger_accounts_pb2.AccountKind, transfer.credit_account_kind),
        "currency": transfer.amount.currency,
        "amount_minor": transfer.amount.amount_minor,
        "kind": _enum_name(ledger_transfers_pb2.TransferKind, transfer.kind),
        "status": _enum_name(ledger_transfers_pb2.TransferStatus, transfer.status),
        "reversal_of_transfer_pseudonym": transfer.reversal_of_transfer_pseudonym,
        "risk_decision": _enum_name(ledger_transfers_pb2.RiskDecision, transfer.risk_decision),
        "created_at": _instant(transfer.created_at, transfer.HasField("created_at")),
        "posted_at": _instant(transfer.posted_at, transfer.HasField("posted_at")),
    }


def new_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[rows]} rows"),
        TimeElapsedColumn(),
        console=progress_console,
    )


def _covered_s(start: dt.datetime, moment: dt.datetime) -> float:
    """How far into the period a row's time is, in seconds (the bars advance through the period)."""
    return max(0.0, (moment - start).total_seconds())


@dataclass(frozen=True, slots=True)
class TransactionsExport:
    organization_id: str | None
    start: dt.datetime
    end: dt.datetime
    key_name: str
    export_format: ExportFormat
    out: Path
    export_id: str


async def _export_transactions(export: TransactionsExport) -> int:
    period_s = (export.end - export.start).total_seconds()
    async with Session(Env(), organization_id=export.organization_id) as session:
        with atomic_text_file(export.out) as handle, new_progress() as progress:
            writer = RowWriter(handle, export.export_format, TRANSFER_COLUMNS)
            task = progress.add_task("transactions", total=period_s, rows=0)
            token = ""
            while True:
                request = ledger_integrity_pb2.ExportTransactionsRequest(
                    export_id=export.export_id,
                    start_time=timestamp(export.start),
                    end_time=timestamp(export.end),
                    pseudonym_key_id=export.key_name,
                    page_size=EXPORT_PAGE_SIZE,
                    page_token=token,
                )
                reply = await session.call("ledger", session.ledger.ExportTransactions, request)
                for transfer in reply.transfers:
                    writer.write(transfer_row(transfer))
                if reply.transfers:
                    last = reply.transfers[-1].created_at.ToDatetime(tzinfo=dt.UTC)
                    progress.update(task, completed=_covered_s(export.start, last), rows=writer.rows_written)
                token = reply.next_page_token
                if not token:
                    progress.update(task, completed=period_s, rows=writer.rows_written)
                    return writer.rows_written


@app.command("transactions")
def transactions(
    start: FromOption,
    end: ToOption,
    out: OutOption,
    export_format: Annotated[
        ExportFormat, typer.Option("--format", help="csv or jsonl (one JSON object per line)")
    ] = ExportFormat.CSV,
    key_name: Annotated[
        str,
        typer.Option(
            "--key-name",
            help="configured pseudonym key to use (links exports made with the same name); "
            "default: a fresh key for this export only",
        ),
    ] = "",
    organization_id: OrganizationOption = None,
) -> None:
    """Export the tenant's transfers of a period with every account, customer and transfer id pseudonymized."""
    period_start, period_end = parse_period(start, end)
    export = TransactionsExport(
        organization_id, period_start, period_end, key_name, export_format, out, str(uuid.uuid4())
    )
    count = execute(_export_transactions(export))
    key = key_name or "a per-export key"
    # One unwrapped line: scripts read the export id from it.
    typer.echo(f"wrote {count} transfers to {out} ({export_format.value}; export {export.export_id}, {key})")


@dataclass(frozen=True, slots=True)
class AuditSource:
    """One service's listing read for the audit trail: how to ask for a page and where its records and times are."""

    name: str
    service: str
    method: Callable[[Session], Any]
    request: Callable[..., Message]
    records: Callable[[Any], Sequence[Message]]
    moment: Callable[[Any], timestamp_pb2.Timestamp]
    # The record as the export carries it: only its allow-listed fields (cli/audit_trail_privacy.py).
    redact: Callable[[Redactor, Mapping[str, Any]], dict[str, Any]]


def _allow_list(spec: Spec) -> Callable[[Redactor, Mapping[str, Any]], dict[str, Any]]:
    return lambda redactor, record: redactor.record(record, spec)


AUDIT_SOURCES = (
    AuditSource(
        "auth.audit_events",
        "auth",
        lambda session: session.auth.ListAuditEvents,
        auth_audit_pb2.ListAuditEventsRequest,
        lambda reply: reply.audit_events,
        lambda record: record.occurred_at,
        _allow_list(AUTH_AUDIT_EVENT),
    ),
    AuditSource(
        "ledger.admin_actions",
        "ledger",
        lambda session: session.ledger.ListAuditEvents,
        ledger_integrity_pb2.ListAuditEventsRequest,
        lambda reply: reply.audit_events,
        lambda record: record.occurred_at,
        ledger_audit_event,
    ),
    AuditSource(
        "contacts.access_log",
        "contacts",
        lambda session: session.contacts.ListAccessLog,
        contacts_access_log_pb2.ListAccessLogRequest,
        lambda reply: reply.entries,
        lambda record: record.occurred_at,
        _allow_list(ACCESS_LOG_ENTRY),
    ),
    AuditSource(
        "risk.decisions",
        "risk",
        lambda session: session.risk.ListAssessments,
        risk_assessments_pb2.ListAssessmentsRequest,
        lambda reply: reply.assessments,
        lambda record: record.assessed_at,
        _allow_list(ASSESSMENT),
    ),
    AuditSource(
        "risk.complaint_steps",
        "risk",
        lambda session: session.risk.ListComplaintEvents,
        risk_complaints_pb2.ListComplaintEventsRequest,
        lambda reply: reply.complaint_events,
        lambda record: record.occurred_at,
        _allow_list(COMPLAINT_EVENT),
    ),
)


@dataclass(frozen=True, slots=True)
class AuditTrailExport:
    organization_id: str | None
    start: dt.datetime
    end: dt.datetime
    out: Path
    export_id: str
    # The linking key read from --pseudonym-key-file; None: a fresh random key for this export only.
    linking_key: bytes | None = field(default=None, repr=False)


async def _staff_principal_ids(session: Session) -> frozenset[str]:
    """The tenant's members and service accounts: the principals whose ids the export keeps (bounded pages)."""
    staff: set[str] = set()
    token = ""
    for _ in range(STAFF_PAGES_MAX):
        members = await session.call(
            "auth",
            session.auth.ListMembers,
            auth_members_pb2.ListMembersRequest(page_size=EXPORT_PAGE_SIZE, page_token=token),
        )
        staff.update(member.member_id for member in members.members)
        token = members.next_page_token
        if not token:
            break
    else:
        raise fail(f"more than {STAFF_PAGES_MAX * EXPORT_PAGE_SIZE} members")
    token = ""
    for _ in range(STAFF_PAGES_MAX):
        accounts = await session.call(
            "auth",
            session.auth.ListServiceAccounts,
            auth_service_accounts_pb2.ListServiceAccountsRequest(page_size=EXPORT_PAGE_SIZE, page_token=token),
        )
        staff.update(account.service_account_id for account in accounts.service_accounts)
        token = accounts.next_page_token
        if not token:
            return frozenset(staff)
    raise fail(f"more than {STAFF_PAGES_MAX * EXPORT_PAGE_SIZE} service accounts")


async def _pseudonym_key(session: Session, linking_key: bytes | None) -> bytes:
    """A fresh random key (never stored: the export's pseudonyms link to nothing else), or the linking key bound to
    the caller's tenant, so one key file never links two tenants' exports."""
    if linking_key is None:
        return secrets.token_bytes(PSEUDONYM_KEY_BYTES)
    me = await session.call("auth", session.auth.GetCurrentPrincipal, auth_sessions_pb2.GetCurrentPrincipalRequest())
    return linked_export_key(linking_key, me.principal.organization_id)


async def _read_source(
    session: Session,
    source: AuditSource,
    export: AuditTrailExport,
    redactor: Redactor,
    writer: RowWriter,
    progress: tuple[Progress, TaskID],
) -> int:
    """Every page of one listing (newest first), written as ``{"source", "record"}`` rows with only the record's
    allow-listed fields; returns how many."""
    bar, task = progress
    period_s = (export.end - export.start).total_seconds()
    count = 0
    token = ""
    while True:
        request = source.request(
            page_size=EXPORT_PAGE_SIZE,
            page_token=token,
            start_time=timestamp(export.start),
            end_time=timestamp(export.end),
            export_id=export.export_id,
        )
        reply = await session.call(source.service, source.method(session), request)
        records = source.records(reply)
        for record in records:
            raw = json_format.MessageToDict(record, preserving_proto_field_name=True)
            writer.write({"source": source.name, "record": source.redact(redactor, raw)})
        count += len(records)
        if records:
            oldest = source.moment(records[-1]).ToDatetime(tzinfo=dt.UTC)
            bar.update(task, completed=period_s - _covered_s(export.start, oldest), rows=count)
        token = reply.next_page_token
        if not token:
            bar.update(task, completed=period_s, rows=count)
            return count


async def _export_audit_trail(export: AuditTrailExport) -> dict[str, int]:
    counts: dict[str, int] = {}
    period_s = (export.end - export.start).total_seconds()
    async with Session(Env(), organization_id=export.organization_id) as session:
        redactor = Redactor(await _pseudonym_key(session, export.linking_key), await _staff_principal_ids(session))
        with atomic_text_file(export.out) as handle, new_progress() as progress:
            writer = RowWriter(handle, ExportFormat.JSONL, AUDIT_TRAIL_COLUMNS)
            tasks = {source.name: progress.add_task(source.name, total=period_s, rows=0) for source in AUDIT_SOURCES}
            for source in AUDIT_SOURCES:
                counts[source.name] = await _read_source(
                    session, source, export, redactor, writer, (progress, tasks[source.name])
                )
    return counts


def read_linking_key(path: Path) -> bytes:
    """A 32-byte key file (base64url or hex, as the services' key settings); the error never shows the content."""
    try:
        return decode_key(path.read_text(encoding="utf-8"), "--pseudonym-key-file")
    except OSError as error:
        raise fail(f"--pseudonym-key-file: cannot read {path}: {error.strerror}") from None
    except ConfigError as error:
        raise fail(str(error)) from None


@app.command("audit-trail")
def audit_trail(
    start: FromOption,
    end: ToOption,
    out: OutOption,
    pseudonym_key_file: Annotated[
        Path | None,
        typer.Option(
            "--pseudonym-key-file",
            help="32-byte key (base64url or hex) to pseudonymize with, to link this export to others made with it; "
            "default: a fresh key for this export only, never stored",
        ),
    ] = None,
    organization_id: OrganizationOption = None,
) -> None:
    """Export the tenant's audit trail of a period as JSON Lines: auth events, ledger admin actions, the vault's
    access log, risk decisions and complaint steps, with customers pseudonymized and no personal data
    (docs/operations.md). Each service audits its part of the export once."""
    period_start, period_end = parse_period(start, end)
    linking_key = read_linking_key(pseudonym_key_file) if pseudonym_key_file is not None else None
    export = AuditTrailExport(organization_id, period_start, period_end, out, str(uuid.uuid4()), linking_key)
    counts = execute(_export_audit_trail(export))
    parts = ", ".join(f"{count} {name}" for name, count in counts.items())
    key = "the key file's key" if linking_key is not None else "a per-export key"
    typer.echo(f"wrote {parts} to {out} (export {export.export_id}, {key})")
