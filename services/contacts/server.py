"""gRPC servicer for wallet.contacts.v1.ContactsService: proto ⇄ domain types, nothing else.

Each handler reads the caller, calls one use case and encodes the result. Auth, permissions, step-up and error
mapping are the kit's interceptor's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.contacts import wire
from services.contacts.app import Vault, background_jobs, build_vault
from services.contacts.caller import current_caller
from services.contacts.config import ContactsConfig, load_contacts_config
from services.contacts.domain import StoreContactInput, UpdateContactInput
from services.contacts.domain_cards import CardSecretValue
from services.contacts.domain_keys import KeyJobKind
from services.contacts.service_messages import CardSource
from services.contacts.sms import SmsSink
from services.kit.grpc_server import Registration, Runtime
from services.kit.service_main import BackgroundJob
from wallet.contacts.v1 import (
    contacts_access_log_pb2 as access_log_pb2,
)
from wallet.contacts.v1 import (
    contacts_card_secrets_pb2 as cards_pb2,
)
from wallet.contacts.v1 import (
    contacts_contact_pb2 as contact_pb2,
)
from wallet.contacts.v1 import (
    contacts_directory_pb2 as directory_pb2,
)
from wallet.contacts.v1 import (
    contacts_keys_pb2 as keys_pb2,
)
from wallet.contacts.v1 import (
    contacts_notifications_pb2 as notifications_pb2,
)
from wallet.contacts.v1 import (
    contacts_service_pb2,
    contacts_service_pb2_grpc,
)
from wallet.contacts.v1 import (
    contacts_subjects_pb2 as subjects_pb2,
)

SERVICE_NAME = contacts_service_pb2.DESCRIPTOR.services_by_name["ContactsService"].full_name

Context = Any


class ContactsServer(contacts_service_pb2_grpc.ContactsServiceServicer):
    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    # --- contacts ---

    async def StoreContact(
        self, request: contact_pb2.StoreContactRequest, context: Context
    ) -> contact_pb2.StoreContactResponse:
        stored = await self._vault.contacts.store_contact(
            current_caller(),
            StoreContactInput(
                contact_id=request.contact_id,
                customer_id=request.customer_id,
                phone_number=request.phone_number,
                region_hint=request.region_hint,
                purposes=tuple(request.purposes),
                consent_reference=request.consent_reference,
                retention_s=wire.duration_s(request.retention, request.HasField("retention")),
                alert_thresholds=tuple((m.currency, m.amount_minor) for m in request.alert_thresholds),
            ),
        )
        return contact_pb2.StoreContactResponse(contact=wire.contact(stored))

    async def UpdateContact(
        self, request: contact_pb2.UpdateContactRequest, context: Context
    ) -> contact_pb2.UpdateContactResponse:
        updated = await self._vault.contacts.update_contact(
            current_caller(),
            UpdateContactInput(
                contact_id=request.contact_id,
                request_id=request.request_id,
                paths=tuple(request.update_mask.paths),
                phone_number=request.phone_number,
                region_hint=request.region_hint,
                purposes=tuple(request.purposes),
                consent_reference=request.consent_reference,
                retention_s=wire.duration_s(request.retention, request.HasField("retention")),
                alert_thresholds=tuple((m.currency, m.amount_minor) for m in request.alert_thresholds),
            ),
        )
        return contact_pb2.UpdateContactResponse(contact=wire.contact(updated))

    async def DeleteContact(
        self, request: contact_pb2.DeleteContactRequest, context: Context
    ) -> contact_pb2.DeleteContactResponse:
        contact_id, deleted_at = await self._vault.contacts.delete_contact(
            current_caller(), request.contact_id, request.request_id
        )
        return contact_pb2.DeleteContactResponse(contact_id=str(contact_id), deleted_at=wire.timestamp(deleted_at))

    async def GetContact(
        self, request: contact_pb2.GetContactRequest, context: Context
    ) -> contact_pb2.GetContactResponse:
        found = await self._vault.contacts.get_contact(current_caller(), request.contact_id)
        return contact_pb2.GetContactResponse(contact=wire.contact(found))

    async def ListContacts(
        self, request: contact_pb2.ListContactsRequest, context: Context
    ) -> contact_pb2.ListContactsResponse:
        page = await self._vault.contacts.list_contacts(
            current_caller(), request.page_size, request.page_token, request.customer_id, request.purpose
        )
        return contact_pb2.ListContactsResponse(
            contacts=[wire.contact(c) for c in page.contacts], next_page_token=page.next_page_token
        )

    async def RevealContact(
        self, request: contact_pb2.RevealContactRequest, context: Context
    ) -> contact_pb2.RevealContactResponse:
        revealed = await self._vault.contacts.reveal_contact(
            current_caller(), request.contact_id, request.reveal_purpose, request.justification
        )
        return contact_pb2.RevealContactResponse(
            contact_id=str(revealed.contact_id),
            phone_number=revealed.e164,
            access_log_entry_id=str(revealed.access_log_entry_id),
        )

    # --- pay by phone ---

    async def ResolvePhone(
        self, request: directory_pb2.ResolvePhoneRequest, context: Context
    ) -> directory_pb2.ResolvePhoneResponse:
        resolved = await self._vault.directory.resolve_phone(
            current_caller(), request.phone_number, request.region_hint, request.on_behalf_of_principal_id
        )
        return directory_pb2.ResolvePhoneResponse(
            customer_id=str(resolved.customer_id),
            default_account_id=str(resolved.default_account_id or ""),
            account_ids=[str(a) for a in resolved.account_ids],
            masked_phone_number=resolved.masked_phone_number,
        )

    async def SetDiscoverability(
        self, request: directory_pb2.SetDiscoverabilityRequest, context: Context
    ) -> directory_pb2.SetDiscoverabilityResponse:
        updated = await self._vault.directory.set_discoverability(
            current_caller(),
            request.contact_id,
            request.discoverable,
            request.default_account_id,
            list(request.account_ids),
            request.request_id,
        )
        return directory_pb2.SetDiscoverabilityResponse(contact=wire.contact(updated))

    # --- notifications ---

    async def SendNotification(
        self, request: notifications_pb2.SendNotificationRequest, context: Context
    ) -> notifications_pb2.SendNotificationResponse:
        sent = await self._vault.messages.send_notification(
            current_caller(),
            request.notification_id,
            request.contact_id,
            request.customer_id,
            request.notification_template,
            dict(request.params),
        )
        record = sent.record
        return notifications_pb2.SendNotificationResponse(
            notification=notifications_pb2.Notification(
                notification_id=str(record.notification_id),
                contact_id=str(record.contact_id or ""),
                notification_template=record.notification_template,  # type: ignore[arg-type]
                status=record.status,  # type: ignore[arg-type]
                masked_phone_number=sent.masked_phone_number,
                sent_at=wire.timestamp(record.sent_at),
            )
        )

    # --- access log and subject rights ---

    async def ListAccessLog(
        self, request: access_log_pb2.ListAccessLogRequest, context: Context
    ) -> access_log_pb2.ListAccessLogResponse:
        page = await self._vault.subjects.list_access_log(
            current_caller(),
            request.customer_id,
            request.page_size,
            request.page_token,
            request.action,
            wire.optional_time(request.start_time, request.HasField("start_time")),
            wire.optional_time(request.end_time, request.HasField("end_time")),
            request.export_id,
        )
        return access_log_pb2.ListAccessLogResponse(
            entries=[wire.access_log_entry(e) for e in page.entries], next_page_token=page.next_page_token
        )

    async def VerifyAccessLog(
        self, request: access_log_pb2.VerifyAccessLogRequest, context: Context
    ) -> access_log_pb2.VerifyAccessLogResponse:
        verdict = await self._vault.subjects.verify_access_log(
            current_caller(), request.start_sequence, request.end_sequence
        )
        return access_log_pb2.VerifyAccessLogResponse(
            intact=verdict.intact,
            first_broken_sequence=verdict.first_broken_sequence,
            entries_checked=verdict.entries_checked,
        )

    async def ExportSubjectData(
        self, request: subjects_pb2.ExportSubjectDataRequest, context: Context
    ) -> subjects_pb2.ExportSubjectDataResponse:
        export = await self._vault.subjects.export_subject_data(current_caller(), request.customer_id)
        return subjects_pb2.ExportSubjectDataResponse(
            customer_id=str(export.customer_id),
            contacts=[wire.contact(c) for c in export.contacts],
            card_secrets=[wire.card_secret(c) for c in export.card_secrets],
            access_log_entry_count=export.access_log_entry_count,
            exported_at=wire.timestamp(export.exported_at),
            access_log_entry_id=str(export.access_log_entry_id),
        )

    async def EraseSubject(
        self, request: subjects_pb2.EraseSubjectRequest, context: Context
    ) -> subjects_pb2.EraseSubjectResponse:
        record = await self._vault.subjects.erase_subject(
            current_caller(), request.customer_id, request.reason, request.request_id
        )
        return subjects_pb2.EraseSubjectResponse(receipt=wire.receipt(record))

    # --- keys and backups ---

    async def RotateKek(self, request: keys_pb2.RotateKekRequest, context: Context) -> keys_pb2.RotateKekResponse:
        job = await self._vault.keys.rotate(KeyJobKind.KEK_REWRAP, request.request_id)
        return keys_pb2.RotateKekResponse(key_job=wire.key_job(job))

    async def GetRewrapStatus(
        self, request: keys_pb2.GetRewrapStatusRequest, context: Context
    ) -> keys_pb2.GetRewrapStatusResponse:
        job = await self._vault.keys.status(KeyJobKind.KEK_REWRAP, request.key_job_id)
        return keys_pb2.GetRewrapStatusResponse(key_job=wire.key_job(job))

    async def RotateBlindIndexKey(
        self, request: keys_pb2.RotateBlindIndexKeyRequest, context: Context
    ) -> keys_pb2.RotateBlindIndexKeyResponse:
        job = await self._vault.keys.rotate(KeyJobKind.BLIND_INDEX_REINDEX, request.request_id)
        return keys_pb2.RotateBlindIndexKeyResponse(key_job=wire.key_job(job))

    async def GetReindexStatus(
        self, request: keys_pb2.GetReindexStatusRequest, context: Context
    ) -> keys_pb2.GetReindexStatusResponse:
        job = await self._vault.keys.status(KeyJobKind.BLIND_INDEX_REINDEX, request.key_job_id)
        return keys_pb2.GetReindexStatusResponse(key_job=wire.key_job(job))

    async def CreateBackup(
        self, request: keys_pb2.CreateBackupRequest, context: Context
    ) -> keys_pb2.CreateBackupResponse:
        info = await self._vault.backups.create_backup(request.backup_id)
        return keys_pb2.CreateBackupResponse(backup=wire.backup(info))

    async def RestoreBackup(
        self, request: keys_pb2.RestoreBackupRequest, context: Context
    ) -> keys_pb2.RestoreBackupResponse:
        info = await self._vault.backups.restore_backup(request.location, request.sha256, request.request_id)
        return keys_pb2.RestoreBackupResponse(backup=wire.backup(info))

    # --- card secrets ---

    async def StoreCardSecret(
        self, request: cards_pb2.StoreCardSecretRequest, context: Context
    ) -> cards_pb2.StoreCardSecretResponse:
        source = request.WhichOneof("source")
        provided = request.provided
        card = await self._vault.messages.store_card_secret(
            current_caller(),
            request.card_secret_id,
            request.customer_id,
            CardSource(
                generate=(request.generate.bin, request.generate.validity_months) if source == "generate" else None,
                provided=CardSecretValue(
                    provided.card_number, provided.cvv, provided.expiry_month, provided.expiry_year
                )
                if source == "provided"
                else None,
            ),
        )
        return cards_pb2.StoreCardSecretResponse(card_secret=wire.card_secret(card))

    async def RevealCardSecret(
        self, request: cards_pb2.RevealCardSecretRequest, context: Context
    ) -> cards_pb2.RevealCardSecretResponse:
        value = await self._vault.messages.reveal_card_secret(
            current_caller(), request.card_secret_id, request.on_behalf_of_principal_id
        )
        return cards_pb2.RevealCardSecretResponse(
            card_number=value.card_number,
            cvv=value.cvv,
            expiry_month=value.expiry_month,
            expiry_year=value.expiry_year,
        )

    async def DeleteCardSecret(
        self, request: cards_pb2.DeleteCardSecretRequest, context: Context
    ) -> cards_pb2.DeleteCardSecretResponse:
        deleted_at = await self._vault.messages.delete_card_secret(
            current_caller(), request.card_secret_id, request.request_id
        )
        return cards_pb2.DeleteCardSecretResponse(deleted_at=wire.timestamp(deleted_at))


class ContactsApp:
    """Builds the servicer and the background jobs of one process from the same vault objects."""

    def __init__(self, config: ContactsConfig | None = None, *, sink: SmsSink | None = None) -> None:
        self._config = config
        self._sink = sink
        self.vault: Vault | None = None

    def build(self, runtime: Runtime) -> Sequence[Registration]:
        config = self._config = self._config or load_contacts_config(runtime.config.run_dir)
        self.vault = build_vault(runtime, config, sink=self._sink)
        servicer = ContactsServer(self.vault)
        return [Registration(SERVICE_NAME, contacts_service_pb2_grpc.add_ContactsServiceServicer_to_server, servicer)]

    def background_jobs(self, runtime: Runtime) -> Sequence[BackgroundJob]:
        assert self.vault is not None, "background jobs start after build"
        assert self._config is not None
        return background_jobs(self.vault, self._config, runtime.redis)


def registrations(runtime: Runtime) -> Sequence[Registration]:
    return ContactsApp().build(runtime)
