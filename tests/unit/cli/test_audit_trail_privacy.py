"""The audit-trail export's allow-lists, per source: records built as the services return them (with a customer's
id, email, name, phone number, address and free text), passed through the redactor, then searched."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from google.protobuf import json_format

from cli.audit_trail_privacy import (
    ACCESS_LOG_ENTRY,
    ASSESSMENT,
    AUTH_AUDIT_EVENT,
    COMPLAINT_EVENT,
    PSEUDONYM_KEY_BYTES,
    Redactor,
    coarse_network,
    ledger_audit_event,
    linked_export_key,
    pseudonym,
)
from wallet.auth.v1 import auth_audit_pb2, auth_events_pb2
from wallet.common.v1 import money_pb2
from wallet.contacts.v1 import contacts_access_log_pb2
from wallet.ledger.v1 import ledger_integrity_pb2
from wallet.risk.v1 import risk_assessments_pb2, risk_complaints_pb2

KEY = bytes(range(PSEUDONYM_KEY_BYTES))
OTHER_KEY = bytes(reversed(range(PSEUDONYM_KEY_BYTES)))
CUSTOMER = str(uuid.uuid4())
STAFF = str(uuid.uuid4())
ACCOUNT = str(uuid.uuid4())
TRANSFER = str(uuid.uuid4())
CLIENT_IP = "203.0.113.77"
PERSONAL = ("Zelda Quartermain", "zelda@example.com", "+447911123456", "447911123456")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def as_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def searched(record: dict[str, Any]) -> str:
    text = json.dumps(record)
    for secret in (CUSTOMER, ACCOUNT, TRANSFER, CLIENT_IP, *PERSONAL):
        assert secret not in text, secret
    return text


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(KEY, frozenset({STAFF}))


def test_auth_event_keeps_staff_pseudonymizes_customers_coarsens_addresses(redactor: Redactor) -> None:
    event = auth_audit_pb2.AuditEvent(
        audit_event_id="e1",
        event_type=auth_events_pb2.AUTH_EVENT_TYPE_LOGIN_FAILED,
        principal_id=CUSTOMER,
        actor_principal_id=STAFF,
        source_ip=CLIENT_IP,
        trace_id="ab" * 16,
        details={
            "principal_id": CUSTOMER,
            "reason": "LOGIN_FAILURE_REASON_INVALID_CREDENTIALS",
            "source.source_ip": CLIENT_IP,
            "source.user_agent": "Zelda Quartermain's phone",
            "source.device_id": "device-1",
            "email": "zelda@example.com",
            "filters.principal": CUSTOMER,
        },
    )
    record = redactor.record(as_dict(event), AUTH_AUDIT_EVENT)
    searched(record)
    assert record["principal_id"] == pseudonym(KEY, CUSTOMER)
    assert HEX64.match(record["principal_id"])
    assert record["actor_principal_id"] == STAFF
    assert record["source_ip"] == "203.0.113.0/24"
    assert record["trace_id"] == "ab" * 16
    assert record["event_type"] == "AUTH_EVENT_TYPE_LOGIN_FAILED"
    details = record["details"]
    assert details["principal_id"] == details["filters.principal"] == record["principal_id"]
    assert details["source.source_ip"] == "203.0.113.0/24"
    assert details["source.device_id"] == pseudonym(KEY, "device-1")
    assert details["reason"] == "LOGIN_FAILURE_REASON_INVALID_CREDENTIALS"
    assert "source.user_agent" not in details
    assert "email" not in details


def test_ledger_admin_action_drops_typed_reasons_and_keeps_enum_ones(redactor: Redactor) -> None:
    freeze = ledger_integrity_pb2.AuditEvent(
        audit_event_id="l1",
        method="FreezeAccount",
        actor_principal_id=STAFF,
        resource_id=ACCOUNT,
        request_id="zelda@example.com",
        details={"reason": "Zelda Quartermain called: +447911123456", "last_four": "4242"},
    )
    record = ledger_audit_event(redactor, as_dict(freeze))
    searched(record)
    assert record["resource_id"] == pseudonym(KEY, ACCOUNT)
    assert record["request_id"] == pseudonym(KEY, "zelda@example.com")
    assert record["details"] == {"reason_chars": len("Zelda Quartermain called: +447911123456")}
    reversal = ledger_integrity_pb2.AuditEvent(
        method="/wallet.ledger.v1.LedgerService/ReverseTransfer",
        resource_id=TRANSFER,
        details={"reason": "COMPLAINT_UPHELD", "reversal_transfer_id": TRANSFER, "amount_minor": "100"},
    )
    record = ledger_audit_event(redactor, as_dict(reversal))
    searched(record)
    assert record["details"]["reason"] == "COMPLAINT_UPHELD"
    assert record["details"]["reversal_transfer_id"] == record["resource_id"] == pseudonym(KEY, TRANSFER)
    fx = ledger_integrity_pb2.AuditEvent(method="SetFxRate", resource_id="USD/CNY", details={"new_rate": "7.1"})
    assert ledger_audit_event(redactor, as_dict(fx))["resource_id"] == "USD/CNY"


def test_access_log_entry_pseudonymizes_the_subject_and_measures_the_justification(redactor: Redactor) -> None:
    entry = contacts_access_log_pb2.AccessLogEntry(
        access_log_entry_id="a1",
        sequence=7,
        customer_id=CUSTOMER,
        contact_id=str(uuid.uuid4()),
        action=contacts_access_log_pb2.ACCESS_ACTION_REVEAL,
        actor_principal_id=STAFF,
        on_behalf_of_principal_id=CUSTOMER,
        justification="Zelda Quartermain asked, ticket 12",
        entry_hash=b"\x01" * 32,
    )
    record = redactor.record(as_dict(entry), ACCESS_LOG_ENTRY)
    searched(record)
    assert record["customer_id"] == record["on_behalf_of_principal_id"] == pseudonym(KEY, CUSTOMER)
    assert record["contact_id"] == pseudonym(KEY, entry.contact_id)
    assert record["actor_principal_id"] == STAFF
    assert record["justification_chars"] == len(entry.justification)
    assert record["action"] == "ACCESS_ACTION_REVEAL"
    assert record["sequence"] == "7"
    assert "justification" not in record
    assert "entry_hash" not in record


def test_risk_decision_keeps_the_outcome_and_pseudonymizes_the_context(redactor: Redactor) -> None:
    assessment = risk_assessments_pb2.Assessment(
        assessment_id=TRANSFER,
        decision=risk_assessments_pb2.DECISION_REVIEW,
        score=80,
        reason_codes=["VELOCITY_1H"],
        case_id="case-1",
        context=risk_assessments_pb2.AssessmentContext(
            transfer_id=TRANSFER,
            debit_account_id=ACCOUNT,
            debit_customer_id=CUSTOMER,
            amount=money_pb2.Money(currency="EUR", amount_minor=500),
            ip_address="2001:db8:abcd:12::1",
            principal_id=CUSTOMER,
            counterparty_id="+447911123456",
        ),
    )
    record = redactor.record(as_dict(assessment), ASSESSMENT)
    searched(record)
    context = record["context"]
    assert record["assessment_id"] == context["transfer_id"] == pseudonym(KEY, TRANSFER)
    assert context["debit_customer_id"] == context["principal_id"] == pseudonym(KEY, CUSTOMER)
    assert context["counterparty_id"] == pseudonym(KEY, "+447911123456")
    assert context["ip_address"] == "2001:db8:abcd::/48"
    assert context["amount"] == {"currency": "EUR", "amount_minor": "500"}
    assert (record["decision"], record["score"], record["reason_codes"]) == ("DECISION_REVIEW", 80, ["VELOCITY_1H"])
    assert record["case_id"] == "case-1"


def test_complaint_step_pseudonymizes_the_complaint_and_its_customer_actor(redactor: Redactor) -> None:
    complaint_id = str(uuid.uuid4())
    opened = risk_complaints_pb2.ComplaintEvent(
        complaint_id=complaint_id,
        event_number=41,
        action="opened",
        actor_principal_id=CUSTOMER,
        trace_id="cd" * 16,
        category=risk_complaints_pb2.COMPLAINT_CATEGORY_TRANSFER,
    )
    record = redactor.record(as_dict(opened), COMPLAINT_EVENT)
    searched(record)
    assert complaint_id not in json.dumps(record)
    assert record["complaint_id"] == pseudonym(KEY, complaint_id)
    assert record["actor_principal_id"] == pseudonym(KEY, CUSTOMER)
    assert (record["action"], record["event_number"], record["trace_id"]) == ("opened", "41", "cd" * 16)
    assert record["category"] == "COMPLAINT_CATEGORY_TRANSFER"
    acknowledged = risk_complaints_pb2.ComplaintEvent(complaint_id=complaint_id, actor_principal_id=STAFF)
    assert redactor.record(as_dict(acknowledged), COMPLAINT_EVENT)["actor_principal_id"] == STAFF


def test_a_field_not_on_the_list_is_dropped(redactor: Redactor) -> None:
    record = {"audit_event_id": "e1", "display_name": "Zelda Quartermain", "details": {"phone": "+447911123456"}}
    assert redactor.record(record, AUTH_AUDIT_EVENT) == {"audit_event_id": "e1", "details": {}}


def test_pseudonyms_are_stable_under_one_key_and_unlinkable_under_another() -> None:
    assert pseudonym(KEY, CUSTOMER) == pseudonym(KEY, CUSTOMER)
    assert pseudonym(KEY, CUSTOMER) != pseudonym(OTHER_KEY, CUSTOMER)
    assert pseudonym(KEY, "") == ""
    tenant_a, tenant_b = str(uuid.uuid4()), str(uuid.uuid4())
    assert linked_export_key(KEY, tenant_a) == linked_export_key(KEY, tenant_a)
    assert linked_export_key(KEY, tenant_a) != linked_export_key(KEY, tenant_b)
    assert linked_export_key(KEY, tenant_a) != KEY


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("ipv4:203.0.113.77:51234", "203.0.113.0/24"),
        ("ipv6:[2001:db8:abcd:12::1]:443", "2001:db8:abcd::/48"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd::/48"),
        ("unknown", ""),
        ("", ""),
    ],
)
def test_addresses_are_coarsened_to_their_network(address: str, network: str) -> None:
    assert coarse_network(address) == network
