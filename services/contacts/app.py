"""Wiring: builds the vault's services from the runtime and its configuration, for the server and the background
jobs of one process."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as redis_asyncio

from services.contacts.alert_consumers import alert_consumers
from services.contacts.config import ContactsConfig
from services.contacts.contact_reader import ContactReader
from services.contacts.crypto import BlindIndexer, Kms, LocalKms
from services.contacts.envelope import Envelope
from services.contacts.jobs import access_log_chainer, key_job_worker
from services.contacts.rate_limit import ResolveLimiter
from services.contacts.receipts import ReceiptSigner
from services.contacts.retention import contacts_retention_job
from services.contacts.service import ContactsService
from services.contacts.service_alerts import AlertService
from services.contacts.service_backup import BackupService
from services.contacts.service_directory import DirectoryService
from services.contacts.service_keys import KeysService
from services.contacts.service_messages import MessagesService
from services.contacts.service_subjects import SubjectsService
from services.contacts.sms import FileSmsSink, SmsSink
from services.contacts.store import PgVault
from services.kit.grpc_server import Runtime
from services.kit.retention import RetentionJob
from services.kit.service_main import BackgroundJob


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Vault:
    contacts: ContactsService
    directory: DirectoryService
    subjects: SubjectsService
    messages: MessagesService
    keys: KeysService
    backups: BackupService
    alerts: AlertService
    retention: RetentionJob


def build_vault(
    runtime: Runtime,
    config: ContactsConfig,
    *,
    kms: Kms | None = None,
    sink: SmsSink | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Vault:
    store = PgVault(lambda: runtime.pool)
    key_service = kms or LocalKms(config.kek_ring)
    envelope = Envelope(key_service)
    reader = ContactReader(envelope)
    indexer = BlindIndexer(config.blind_index_ring)
    limiter = ResolveLimiter(
        lambda: runtime.redis, config.resolve_per_caller_per_window, config.resolve_per_tenant_per_window
    )
    messages = MessagesService(
        store, envelope, indexer, sink or FileSmsSink(config.sms_outbox_path), clock, config.card_test_bin
    )
    contacts = ContactsService(store, reader, indexer, clock)
    return Vault(
        contacts=contacts,
        directory=DirectoryService(store, reader, indexer, limiter, clock),
        subjects=SubjectsService(store, envelope, ReceiptSigner(key_service), clock),
        messages=messages,
        keys=KeysService(store, key_service, indexer, clock, config.key_job_batch_size),
        backups=BackupService(store, config.backup_ring, config.backup_dir, clock),
        alerts=AlertService(store, messages),
        retention=contacts_retention_job(lambda: runtime.pool, contacts.purge_expired, config.retention, clock),
    )


def background_jobs(vault: Vault, config: ContactsConfig, redis: redis_asyncio.Redis) -> Sequence[BackgroundJob]:
    jobs = [access_log_chainer(vault.subjects), key_job_worker(vault.keys), vault.retention.run()]
    if config.alerts:
        consumers = alert_consumers(
            redis, vault.alerts, ledger_stream=config.ledger_events_stream, auth_stream=config.auth_events_stream
        )
        jobs += [consumer.run() for consumer in consumers]
    return jobs
