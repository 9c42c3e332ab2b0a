"""The vault's settings: its keys (KEK ring, blind-index ring, backup ring), limits and paths."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.contacts.crypto import KeyRing, load_key_ring
from services.contacts.limits import (
    CARD_TEST_BIN_DEFAULT,
    KEY_JOB_BATCH_SIZE_DEFAULT,
    RESOLVE_PER_CALLER_PER_WINDOW_DEFAULT,
    RESOLVE_PER_TENANT_PER_WINDOW_DEFAULT,
)
from services.contacts.retention import load_contacts_retention
from services.kit.config import Env
from services.kit.retention import RetentionPolicy

LEDGER_EVENTS_STREAM = "wallet.ledger.v1.events"
AUTH_EVENTS_STREAM = "wallet.auth.v1.events"


@dataclass(frozen=True, slots=True)
class ContactsConfig:
    kek_ring: KeyRing
    blind_index_ring: KeyRing
    backup_ring: KeyRing
    resolve_per_caller_per_window: int
    resolve_per_tenant_per_window: int
    key_job_batch_size: int
    card_test_bin: str
    sms_outbox_path: Path
    backup_dir: Path
    background_jobs: bool
    # The alert consumers (issue 8) and the streams they read.
    alerts: bool
    ledger_events_stream: str
    auth_events_stream: str
    # How long each record type is kept (services/contacts/retention.py, docs/retention.md).
    retention: RetentionPolicy


def load_contacts_config(run_dir: Path, environ: Mapping[str, str] | None = None) -> ContactsConfig:
    env = Env(environ)
    return ContactsConfig(
        kek_ring=load_key_ring(env, "CONTACTS_KEK"),
        blind_index_ring=load_key_ring(env, "CONTACTS_BLIND_INDEX_KEY"),
        backup_ring=load_key_ring(env, "CONTACTS_BACKUP_KEY"),
        resolve_per_caller_per_window=env.integer(
            "CONTACTS_RESOLVE_PER_CALLER_PER_MIN", RESOLVE_PER_CALLER_PER_WINDOW_DEFAULT, min_value=1
        ),
        resolve_per_tenant_per_window=env.integer(
            "CONTACTS_RESOLVE_PER_TENANT_PER_MIN", RESOLVE_PER_TENANT_PER_WINDOW_DEFAULT, min_value=1
        ),
        key_job_batch_size=env.integer("CONTACTS_KEY_JOB_BATCH_SIZE", KEY_JOB_BATCH_SIZE_DEFAULT, min_value=1),
        card_test_bin=env.string("CONTACTS_CARD_TEST_BIN", CARD_TEST_BIN_DEFAULT),
        sms_outbox_path=Path(env.string("CONTACTS_SMS_OUTBOX", str(run_dir / "sms" / "outbox.jsonl"))),
        backup_dir=Path(env.string("CONTACTS_BACKUP_DIR", str(run_dir / "backups" / "contacts"))),
        background_jobs=env.flag("CONTACTS_BACKGROUND_JOBS", True),
        alerts=env.flag("CONTACTS_ALERTS", True),
        ledger_events_stream=env.string("CONTACTS_LEDGER_EVENTS_STREAM", LEDGER_EVENTS_STREAM),
        auth_events_stream=env.string("CONTACTS_AUTH_EVENTS_STREAM", AUTH_EVENTS_STREAM),
        retention=load_contacts_retention(env),
    )
