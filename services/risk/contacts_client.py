"""Risk's calls into the contacts vault: ``SendNotification`` (template COMPLAINT_UPDATE) to tell a customer that
their complaint needs information or was decided.

The use case depends on the ``ComplaintNotifier`` protocol in ``service_complaints.py``; this is its gRPC
implementation. Calls carry risk's platform service-account token for the complaint's tenant (scope
``contacts.notifications.write``, a platform-only permission). Risk names the customer, not a contact: the vault
picks the customer's contact with a fitting purpose (or records the notification as suppressed when there is none),
so no phone number ever reaches risk. The notification id is the idempotency key: the vault sends each at most once.
"""

from __future__ import annotations

import grpc

from services.kit.channels import ServiceChannel
from services.kit.service_tokens import ServiceTokenSource, ServiceTokenUnavailable
from services.risk import limits
from services.risk.domain_complaints import STATUS_WORDS, ComplaintStatus, notification_message
from services.risk.service_complaints import NotificationNotSent
from services.risk.store_complaints import PendingNotification
from wallet.contacts.v1 import contacts_notifications_pb2, contacts_service_pb2_grpc

NOTIFICATIONS_SCOPE = "contacts.notifications.write"


class GrpcComplaintNotifier:
    def __init__(self, contacts_addr: str, tokens: ServiceTokenSource) -> None:
        self._contacts = ServiceChannel(contacts_addr)
        self._tokens = tokens

    def _stub(self) -> contacts_service_pb2_grpc.ContactsServiceAsyncStub:
        return contacts_service_pb2_grpc.ContactsServiceStub(self._contacts.get())

    async def notify(self, notification: PendingNotification) -> None:
        try:
            token = await self._tokens.token_for(notification.organization_id)
        except ServiceTokenUnavailable as err:
            raise NotificationNotSent("no service token for the contacts vault") from err
        request = contacts_notifications_pb2.SendNotificationRequest(
            notification_id=notification.notification_id,
            customer_id=notification.customer_id,
            notification_template=contacts_notifications_pb2.NOTIFICATION_TEMPLATE_COMPLAINT_UPDATE,
            params={
                "reference_number": notification.reference_number,
                "status": STATUS_WORDS[ComplaintStatus[notification.status_name]],
                "message": notification_message(notification.message),
            },
        )
        try:
            response = await self._stub().SendNotification(
                request,
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=limits.CONTACTS_CALL_DEADLINE_S,
            )
        except grpc.aio.AioRpcError as err:
            raise NotificationNotSent(f"the contacts vault answered {err.code().name}") from err
        if response.notification.status == contacts_notifications_pb2.NOTIFICATION_STATUS_FAILED:
            raise NotificationNotSent("the vault's SMS sink failed")

    async def close(self) -> None:
        await self._contacts.close()
