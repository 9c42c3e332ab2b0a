"""What the audit-trail export may carry of a record: an explicit allow-list of fields per record source, and what
happens to each field on it. A field not on its source's list is dropped, so a field added to an audit message later
stays out of the export until someone decides it is safe.

- ``KEEP``: codes, states, counts, amounts, times, trace ids, ids of internal review records (audit entries, cases).
- ``SUBJECT``: identifiers of a data subject or of what one holds or presents (customer, account, card, contact,
  transfer, device, session, client-chosen request ids): a keyed pseudonym, ``hex(HMAC-SHA-256(export key, id))``.
- ``PRINCIPAL``: who acted or was acted on. A member or service account of the tenant keeps its id (a review must
  know which staff member acted); any other principal (customers, unknown ids) becomes a pseudonym like ``SUBJECT``,
  the same one, so a customer's sign-ins link to their vault entries within one export.
- ``NETWORK``: an IP address coarsened to its network, ``/24`` for IPv4 and ``/48`` for IPv6 (enough to see a burst of
  failures from one network, not enough to name a household); anything that does not parse is dropped.
- ``TEXT``: free text (justifications, reasons typed by staff) never leaves: ``<field>_chars`` with its length.
- ``RESOURCE``: the ledger's acted-on resource: a currency pair (``USD/CNY``) is kept, anything else is a pseudonym.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PSEUDONYM_KEY_BYTES = 32
IPV4_PREFIX_BITS = 24
IPV6_PREFIX_BITS = 48
LINKING_LABEL = b"wallet.walletctl.audit_trail.v1|linked"
CURRENCY_PAIR = re.compile(r"^[A-Z]{3}/[A-Z]{3}$")
# Peers as gRPC writes them (`ipv4:10.0.0.7:51234`, `ipv6:[::1]:51234`) or bare addresses.
PEER_PREFIXES = ("ipv4:", "ipv6:")


class Field(enum.Enum):
    KEEP = "keep"
    SUBJECT = "subject"
    PRINCIPAL = "principal"
    NETWORK = "network"
    TEXT = "text"
    RESOURCE = "resource"


# A source's allow-list: a field's treatment, or the allow-list of a nested message or string map.
Spec = Mapping[str, "Field | Spec"]

AUTH_DETAILS: Spec = {
    "principal_id": Field.PRINCIPAL,
    "actor_principal_id": Field.PRINCIPAL,
    "member_id": Field.PRINCIPAL,
    "service_account_id": Field.PRINCIPAL,
    "principal_kind": Field.KEEP,
    "session_id": Field.SUBJECT,
    "amr": Field.KEEP,
    "new_device": Field.KEEP,
    "source.source_ip": Field.NETWORK,
    "source.device_id": Field.SUBJECT,
    "device_id": Field.SUBJECT,
    "passkey_id": Field.SUBJECT,
    "bound_resource_id": Field.SUBJECT,
    # Reasons and causes in auth events are enum names and error reasons the service sets, never typed text.
    "reason": Field.KEEP,
    "cause": Field.KEEP,
    "consecutive_failures": Field.KEEP,
    "failures": Field.KEEP,
    "scope": Field.KEEP,
    "locked_until": Field.KEEP,
    "change": Field.KEEP,
    "method": Field.KEEP,
    "bound_method": Field.KEEP,
    "revoked_session_count": Field.KEEP,
    "platform": Field.KEEP,
    "reset_by_admin": Field.KEEP,
    "key_id": Field.KEEP,
    "previous_key_id": Field.KEEP,
    "roles": Field.KEEP,
    "previous_roles": Field.KEEP,
    "status": Field.KEEP,
    "previous_status": Field.KEEP,
    "changed_fields": Field.KEEP,
    "export_id": Field.KEEP,
    "filters.principal": Field.PRINCIPAL,
    "filters.type": Field.KEEP,
    "filters.start": Field.KEEP,
    "filters.end": Field.KEEP,
}

AUTH_AUDIT_EVENT: Spec = {
    "audit_event_id": Field.KEEP,
    "event_type": Field.KEEP,
    "principal_id": Field.PRINCIPAL,
    "actor_principal_id": Field.PRINCIPAL,
    "source_ip": Field.NETWORK,
    "trace_id": Field.KEEP,
    "details": AUTH_DETAILS,
    "occurred_at": Field.KEEP,
}

LEDGER_DETAILS: Spec = {
    # Freeze and unfreeze reasons are typed by staff; ReverseTransfer's is an enum name (LEDGER_DETAILS_BY_METHOD).
    "reason": Field.TEXT,
    "old_credit_limit_minor": Field.KEEP,
    "new_credit_limit_minor": Field.KEEP,
    "old_daily_outflow_limit_minor": Field.KEEP,
    "new_daily_outflow_limit_minor": Field.KEEP,
    "old_per_transaction_limit_minor": Field.KEEP,
    "new_per_transaction_limit_minor": Field.KEEP,
    "old_daily_limit_minor": Field.KEEP,
    "new_daily_limit_minor": Field.KEEP,
    "old_status": Field.KEEP,
    "new_status": Field.KEEP,
    "old_rules": Field.KEEP,
    "new_rules": Field.KEEP,
    "old_rate": Field.KEEP,
    "new_rate": Field.KEEP,
    "valid_until": Field.KEEP,
    "maker_principal_id": Field.PRINCIPAL,
    "amount_minor": Field.KEEP,
    "currency": Field.KEEP,
    "status": Field.KEEP,
    "reversal_transfer_id": Field.SUBJECT,
    "complaint_id": Field.SUBJECT,
    "start_time": Field.KEEP,
    "end_time": Field.KEEP,
    "pseudonym_key_id": Field.KEEP,
    # ListAuditEvents exports: the resource and actor filters, and the period.
    "r": Field.RESOURCE,
    "a": Field.PRINCIPAL,
    "from": Field.KEEP,
    "to": Field.KEEP,
}
LEDGER_DETAILS_BY_METHOD: Mapping[str, Spec] = {"ReverseTransfer": {**LEDGER_DETAILS, "reason": Field.KEEP}}

LEDGER_AUDIT_EVENT: Spec = {
    "audit_event_id": Field.KEEP,
    "method": Field.KEEP,
    "actor_principal_id": Field.PRINCIPAL,
    "resource_id": Field.RESOURCE,
    "request_id": Field.SUBJECT,
    "trace_id": Field.KEEP,
    "details": LEDGER_DETAILS,
    "occurred_at": Field.KEEP,
}

ACCESS_LOG_ENTRY: Spec = {
    "access_log_entry_id": Field.KEEP,
    "sequence": Field.KEEP,
    "customer_id": Field.SUBJECT,
    "contact_id": Field.SUBJECT,
    "card_secret_id": Field.SUBJECT,
    "action": Field.KEEP,
    "actor_principal_id": Field.PRINCIPAL,
    "on_behalf_of_principal_id": Field.PRINCIPAL,
    "reveal_purpose": Field.KEEP,
    "justification": Field.TEXT,
    "trace_id": Field.KEEP,
    "occurred_at": Field.KEEP,
    # entry_hash is left out: it proves the chain only beside the raw entry, which the reviewer does not get.
}

ASSESSMENT_CONTEXT: Spec = {
    "transfer_id": Field.SUBJECT,
    "debit_account_id": Field.SUBJECT,
    "credit_account_id": Field.SUBJECT,
    "debit_customer_id": Field.SUBJECT,
    "credit_customer_id": Field.SUBJECT,
    "debit_account_kind": Field.KEEP,
    "credit_account_kind": Field.KEEP,
    "amount": {"currency": Field.KEEP, "amount_minor": Field.KEEP},
    "transfer_kind": Field.KEEP,
    "channel": Field.KEEP,
    "device_id": Field.SUBJECT,
    "ip_address": Field.NETWORK,
    "principal_id": Field.PRINCIPAL,
    "actor_kind": Field.KEEP,
    "auth_strength": Field.KEEP,
    # An external payee reference may be a phone number or an IBAN.
    "counterparty_id": Field.SUBJECT,
}

ASSESSMENT: Spec = {
    "assessment_id": Field.SUBJECT,
    "decision": Field.KEEP,
    "score": Field.KEEP,
    "reason_codes": Field.KEEP,
    "rules_version": Field.KEEP,
    "evaluation_duration": Field.KEEP,
    "case_id": Field.KEEP,
    "anomaly_score": Field.KEEP,
    "anomaly_shadow": Field.KEEP,
    "context": ASSESSMENT_CONTEXT,
    "assessed_at": Field.KEEP,
}


COMPLAINT_EVENT: Spec = {
    # The complaint is the customer's (its reference number is told to them), so it is a pseudonym like a transfer.
    "complaint_id": Field.SUBJECT,
    "event_number": Field.KEEP,
    "action": Field.KEEP,
    "actor_principal_id": Field.PRINCIPAL,
    "trace_id": Field.KEEP,
    "occurred_at": Field.KEEP,
    "category": Field.KEEP,
}


def pseudonym(key: bytes, identifier: str) -> str:
    """Keyed pseudonym of an identifier (64 hex digits); empty for no identifier."""
    assert len(key) == PSEUDONYM_KEY_BYTES
    if identifier == "":
        return ""
    return hmac.new(key, identifier.encode(), hashlib.sha256).hexdigest()


def coarse_network(address: str) -> str:
    """The address's network (``/24`` IPv4, ``/48`` IPv6) as ``a.b.c.0/24``; empty when it does not parse."""
    text = address.strip()
    for prefix in PEER_PREFIXES:
        if text.startswith(prefix):
            text = text.removeprefix(prefix)
            text = text.rsplit(":", 1)[0] if prefix == "ipv4:" else text.split("]", 1)[0].lstrip("[")
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return ""
    bits = IPV4_PREFIX_BITS if parsed.version == 4 else IPV6_PREFIX_BITS
    return str(ipaddress.ip_network(f"{parsed}/{bits}", strict=False))


@dataclass(frozen=True, slots=True)
class Redactor:
    """Applies a source's allow-list to a record (as ``MessageToDict`` gives it) under one export's key."""

    key: bytes = field(repr=False)
    staff_principal_ids: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        assert len(self.key) == PSEUDONYM_KEY_BYTES

    def record(self, record: Mapping[str, Any], spec: Spec) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        for name, value in record.items():
            treatment = spec.get(name)
            if treatment is None:
                continue
            if isinstance(treatment, Field):
                self._field(kept, name, value, treatment)
            else:
                assert isinstance(value, Mapping), name
                kept[name] = self.record(value, treatment)
        return kept

    def _field(self, kept: dict[str, Any], name: str, value: Any, treatment: Field) -> None:
        if treatment is Field.KEEP:
            kept[name] = value
        elif treatment is Field.TEXT:
            kept[f"{name}_chars"] = len(str(value))
        else:
            assert isinstance(value, str), name
            kept[name] = self.value(value, treatment)

    def value(self, value: str, treatment: Field) -> str:
        """One identifier or address, as the export carries it."""
        if treatment is Field.PRINCIPAL and value in self.staff_principal_ids:
            return value
        if treatment is Field.NETWORK:
            return coarse_network(value)
        if treatment is Field.RESOURCE and CURRENCY_PAIR.match(value):
            return value
        assert treatment in (Field.SUBJECT, Field.PRINCIPAL, Field.RESOURCE), treatment
        return pseudonym(self.key, value)


def ledger_audit_event(redactor: Redactor, record: Mapping[str, Any]) -> dict[str, Any]:
    """A ledger admin action: its details' allow-list depends on the method (a reason is text, or an enum name)."""
    method = str(record.get("method", "")).rsplit("/", 1)[-1]
    details = LEDGER_DETAILS_BY_METHOD.get(method, LEDGER_DETAILS)
    return redactor.record(record, {**LEDGER_AUDIT_EVENT, "details": details})


def linked_export_key(linking_key: bytes, organization_id: str) -> bytes:
    """The export key under a chosen linking key: the same for every export of one tenant made with it, different
    for another tenant (as the ledger derives its named export keys)."""
    assert len(linking_key) == PSEUDONYM_KEY_BYTES
    assert organization_id != ""
    message = b"|".join((LINKING_LABEL, organization_id.encode()))
    return hmac.new(linking_key, message, hashlib.sha256).digest()
