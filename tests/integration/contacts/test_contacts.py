"""Store, read (masked), list, update, delete and reveal contacts against a real server, Postgres and Redis."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask

from services.kit.status import ErrorDetails
from tests.integration.contacts.conftest import Vault
from wallet.common.v1 import money_pb2
from wallet.contacts.v1 import contacts_contact_pb2 as pb

pytestmark = pytest.mark.integration

YEAR = Duration(seconds=365 * 24 * 3600)
ALL_PURPOSES = [pb.PURPOSE_TRANSACTION_ALERTS, pb.PURPOSE_LOGIN_OTP, pb.PURPOSE_PAYEE_LOOKUP, pb.PURPOSE_SUPPORT]


def store_request(phone: str = "138 1234 5678", region: str = "CN", **overrides: object) -> pb.StoreContactRequest:
    fields: dict[str, object] = {
        "contact_id": str(uuid.uuid4()),
        "phone_number": phone,
        "region_hint": region,
        "purposes": [pb.PURPOSE_TRANSACTION_ALERTS, pb.PURPOSE_SUPPORT],
        "consent_reference": "consent-2026-001",
        "retention": YEAR,
    }
    fields.update(overrides)
    return pb.StoreContactRequest(**fields)  # type: ignore[arg-type]


async def error_of(call: object) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return ErrorDetails.from_rpc_error(caught.value)


async def test_store_normalises_and_masks(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    response = await vault.stub.StoreContact(store_request("138-1234-5678"), metadata=vault.customer(customer))
    contact = response.contact
    assert contact.customer_id == customer
    assert contact.masked_phone_number == "+86 138****5678"
    assert contact.region_code == "CN"
    fetched = await vault.stub.GetContact(
        pb.GetContactRequest(contact_id=contact.contact_id), metadata=vault.customer(customer)
    )
    assert fetched.contact.masked_phone_number == "+86 138****5678"
    assert fetched.contact.retain_until.seconds > 0


async def test_store_is_idempotent_by_contact_id(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    request = store_request("+44 7911 123456", "")
    first = await vault.stub.StoreContact(request, metadata=vault.customer(customer))
    again = await vault.stub.StoreContact(request, metadata=vault.customer(customer))
    assert again.contact == first.contact
    changed = pb.StoreContactRequest()
    changed.CopyFrom(request)
    changed.consent_reference = "another-consent"
    details = await error_of(vault.stub.StoreContact(changed, metadata=vault.customer(customer)))
    assert details.code == grpc.StatusCode.ALREADY_EXISTS
    assert details.reason == "IDEMPOTENCY_KEY_REUSED"
    assert details.metadata["field"] == "consent_reference"
    other_number = pb.StoreContactRequest()
    other_number.CopyFrom(request)
    other_number.phone_number = "+44 7911 123457"
    details = await error_of(vault.stub.StoreContact(other_number, metadata=vault.customer(customer)))
    assert details.metadata["field"] == "phone_number"


async def test_invalid_input_names_every_field_and_writes_nothing(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    # PURPOSE_UNSPECIFIED (0) is declared, so it reaches the vault, which refuses it as not on the fixed list.
    bad = pb.StoreContactRequest(
        contact_id="nope", phone_number="12", region_hint="CN", purposes=[pb.PURPOSE_UNSPECIFIED]
    )
    details = await error_of(vault.stub.StoreContact(bad, metadata=vault.customer(customer)))
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "PHONE_NUMBER_INVALID"
    fields = {violation.field for violation in details.field_violations}
    assert {"contact_id", "phone_number", "purposes[0]", "consent_reference", "retention"} <= fields
    assert "12" not in details.message
    # An undeclared enum number never reaches the vault: the kit's request checks refuse it, naming the field.
    undeclared = await error_of(
        vault.stub.StoreContact(store_request(purposes=[99]), metadata=vault.customer(customer))
    )
    assert undeclared.code == grpc.StatusCode.INVALID_ARGUMENT
    assert any(violation.field.startswith("purposes") for violation in undeclared.field_violations)
    listed = await vault.stub.ListContacts(pb.ListContactsRequest(), metadata=vault.customer(customer))
    assert list(listed.contacts) == []


async def test_an_undeclared_purpose_number_is_refused_at_decoding(vault: Vault) -> None:
    request = store_request("+33 6 12 34 56 78", "")
    request.purposes.append(99)
    details = await error_of(vault.stub.StoreContact(request, metadata=vault.customer(str(uuid.uuid4()))))
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details.field_violations] == [f"purposes[{len(request.purposes) - 1}]"]


async def test_impossible_number_is_rejected(vault: Vault) -> None:
    details = await error_of(
        vault.stub.StoreContact(store_request("+1 555 0100 99999", ""), metadata=vault.customer(str(uuid.uuid4())))
    )
    assert details.reason == "PHONE_NUMBER_INVALID"
    assert [v.field for v in details.field_violations] == ["phone_number"]


async def test_missing_consent_is_consent_missing(vault: Vault) -> None:
    details = await error_of(
        vault.stub.StoreContact(store_request(consent_reference=""), metadata=vault.customer(str(uuid.uuid4())))
    )
    assert details.reason == "CONSENT_MISSING"


async def test_same_number_twice_for_a_subject_is_contact_already_exists(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    await vault.stub.StoreContact(store_request("+33 6 12 34 56 78", ""), metadata=vault.customer(customer))
    details = await error_of(
        vault.stub.StoreContact(store_request("06 12 34 56 78", "FR"), metadata=vault.customer(customer))
    )
    assert details.code == grpc.StatusCode.ALREADY_EXISTS
    assert details.reason == "CONTACT_ALREADY_EXISTS"


async def test_customers_and_tenants_see_only_their_own(vault: Vault) -> None:
    owner, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    stored = await vault.stub.StoreContact(store_request("+49 1512 3456789", ""), metadata=vault.customer(owner))
    get = pb.GetContactRequest(contact_id=stored.contact.contact_id)
    assert (
        await error_of(vault.stub.GetContact(get, metadata=vault.customer(stranger)))
    ).code == grpc.StatusCode.NOT_FOUND
    other_tenant = vault.token(org=str(uuid.uuid4()), roles=["owner"])
    assert (await error_of(vault.stub.GetContact(get, metadata=other_tenant))).code == grpc.StatusCode.NOT_FOUND
    listed = await vault.stub.ListContacts(
        pb.ListContactsRequest(customer_id=owner), metadata=vault.customer(stranger)
    )
    assert list(listed.contacts) == []
    staff = await vault.stub.GetContact(get, metadata=vault.member("support"))
    assert staff.contact.masked_phone_number.startswith("+49 ")


async def test_list_pages_through_a_subjects_contacts(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    numbers = ["+1 202 555 0101", "+1 202 555 0102", "+1 202 555 0103"]
    for number in numbers:
        await vault.stub.StoreContact(store_request(number, ""), metadata=vault.customer(customer))
    seen: list[str] = []
    token = ""
    while True:
        page = await vault.stub.ListContacts(
            pb.ListContactsRequest(page_size=2, page_token=token), metadata=vault.customer(customer)
        )
        seen += [c.masked_phone_number for c in page.contacts]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == ["+1 20****0101", "+1 20****0102", "+1 20****0103"]
    details = await error_of(
        vault.stub.ListContacts(pb.ListContactsRequest(page_size=-1), metadata=vault.customer(customer))
    )
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_update_changes_number_and_purposes_idempotently(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    stored = await vault.stub.StoreContact(store_request("+86 139 1111 2222", ""), metadata=vault.customer(customer))
    update = pb.UpdateContactRequest(
        contact_id=stored.contact.contact_id,
        update_mask=FieldMask(paths=["phone_number", "purposes", "alert_thresholds"]),
        phone_number="+86 139 3333 4444",
        purposes=[pb.PURPOSE_TRANSACTION_ALERTS],
        alert_thresholds=[money_pb2.Money(currency="CNY", amount_minor=10_000)],
        request_id=str(uuid.uuid4()),
    )
    updated = await vault.stub.UpdateContact(update, metadata=vault.customer(customer))
    assert updated.contact.masked_phone_number == "+86 139****4444"
    assert list(updated.contact.purposes) == [pb.PURPOSE_TRANSACTION_ALERTS]
    assert updated.contact.alert_thresholds[0].amount_minor == 10_000
    replay = await vault.stub.UpdateContact(update, metadata=vault.customer(customer))
    assert replay.contact.masked_phone_number == "+86 139****4444"
    update.phone_number = "+86 139 5555 6666"
    details = await error_of(vault.stub.UpdateContact(update, metadata=vault.customer(customer)))
    assert details.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_delete_tombstones_and_is_idempotent(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    stored = await vault.stub.StoreContact(store_request("+86 137 0000 1111", ""), metadata=vault.customer(customer))
    delete = pb.DeleteContactRequest(contact_id=stored.contact.contact_id, request_id=str(uuid.uuid4()))
    first = await vault.stub.DeleteContact(delete, metadata=vault.customer(customer))
    again = await vault.stub.DeleteContact(delete, metadata=vault.customer(customer))
    assert first.deleted_at == again.deleted_at
    get = pb.GetContactRequest(contact_id=stored.contact.contact_id)
    assert (
        await error_of(vault.stub.GetContact(get, metadata=vault.customer(customer)))
    ).code == grpc.StatusCode.NOT_FOUND


async def test_reveal_needs_step_up_purpose_and_justification(vault: Vault) -> None:
    customer = str(uuid.uuid4())
    stored = await vault.stub.StoreContact(
        store_request("+86 138 7777 8888", "", purposes=[pb.PURPOSE_LOGIN_OTP]), metadata=vault.customer(customer)
    )
    reveal = pb.RevealContactRequest(
        contact_id=stored.contact.contact_id,
        reveal_purpose=pb.REVEAL_PURPOSE_SUPPORT_CALL,
        justification="ticket SUP-1234: customer asked for a callback",
    )
    no_step_up = await error_of(vault.stub.RevealContact(reveal, metadata=vault.member("support")))
    assert no_step_up.reason == "STEP_UP_REQUIRED"
    wrong_purpose = await error_of(vault.stub.RevealContact(reveal, metadata=vault.member("support", step_up=True)))
    assert wrong_purpose.code == grpc.StatusCode.PERMISSION_DENIED
    assert wrong_purpose.reason == "PURPOSE_NOT_ALLOWED"
    auditor = await error_of(vault.stub.RevealContact(reveal, metadata=vault.member("auditor", step_up=True)))
    assert auditor.reason == "PERMISSION_DENIED"
    reveal.reveal_purpose = pb.REVEAL_PURPOSE_LEGAL_REQUEST
    reveal.justification = "short"
    short = await error_of(vault.stub.RevealContact(reveal, metadata=vault.member("support", step_up=True)))
    assert [v.field for v in short.field_violations] == ["justification"]
    reveal.justification = "court order 2026/77, case file attached"
    revealed = await vault.stub.RevealContact(reveal, metadata=vault.member("support", step_up=True))
    assert revealed.phone_number == "+8613877778888"
    assert revealed.access_log_entry_id
