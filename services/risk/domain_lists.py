"""Pure rules of block and allow lists: entries, their validation and normalization, and the matcher Assess
consults (block beats allow; expired entries never match). No I/O, no clock (``now_s`` is passed in)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.kit.errors import FieldViolation, NotFound, invalid
from services.kit.ids import parse_uuid
from services.risk import limits
from services.risk.domain import AssessmentContext, ListEntryType, ListKind


class ListEntryNotFound(NotFound):
    pass


@dataclass(frozen=True, slots=True)
class ListEntry:
    list_entry_id: str
    list_kind: ListKind
    entry_type: ListEntryType
    value: str
    reason: str
    expires_at_s: float | None = None
    created_by_principal_id: str = ""
    created_at_s: float = 0.0
    removed_at_s: float | None = None

    def active_at(self, now_s: float) -> bool:
        return self.removed_at_s is None and (self.expires_at_s is None or self.expires_at_s > now_s)

    def same_content(self, other: ListEntry) -> str | None:
        """The first differing client-chosen field, or None."""
        for name in ("list_kind", "entry_type", "value", "reason", "expires_at_s"):
            if getattr(self, name) != getattr(other, name):
                return name
        return None


def normalize_list_value(entry_type: ListEntryType, value: str) -> str:
    """Canonical form for matching: lower-case UUIDs, compressed IP networks."""
    if entry_type is ListEntryType.IP_ADDRESS:
        network = ipaddress.ip_network(value, strict=False)
        return str(network.network_address) if network.num_addresses == 1 else str(network)
    if entry_type is ListEntryType.ACCOUNT:
        return value.lower()
    return value


def validate_list_entry(entry: ListEntry, now_s: float) -> ListEntry:
    violations: list[FieldViolation] = []
    parse_uuid(entry.list_entry_id, "list_entry_id", violations)
    if not isinstance(entry.list_kind, ListKind):
        violations.append(FieldViolation("list_kind", "must be BLOCK or ALLOW"))
    if not isinstance(entry.entry_type, ListEntryType):
        violations.append(FieldViolation("entry_type", "must be ACCOUNT, DEVICE, IP_ADDRESS or COUNTERPARTY"))
    value = entry.value
    if not value:
        violations.append(FieldViolation("value", "is required"))
    elif len(value) > limits.LIST_VALUE_LENGTH_MAX:
        violations.append(FieldViolation("value", f"at most {limits.LIST_VALUE_LENGTH_MAX} characters"))
    elif entry.entry_type is ListEntryType.ACCOUNT:
        parse_uuid(value.lower(), "value", violations)
    elif entry.entry_type is ListEntryType.IP_ADDRESS:
        try:
            value = normalize_list_value(entry.entry_type, value)
        except ValueError:
            violations.append(FieldViolation("value", "must be an IP address or CIDR block"))
    if not entry.reason.strip():
        violations.append(FieldViolation("reason", "is required"))
    elif len(entry.reason) > limits.LIST_REASON_LENGTH_MAX:
        violations.append(FieldViolation("reason", f"at most {limits.LIST_REASON_LENGTH_MAX} characters"))
    if entry.expires_at_s is not None and entry.expires_at_s <= now_s:
        violations.append(FieldViolation("expires_at", "must be in the future"))
    if violations:
        raise invalid(violations)
    if entry.entry_type is ListEntryType.ACCOUNT:
        value = value.lower()
    return ListEntry(
        entry.list_entry_id,
        entry.list_kind,
        entry.entry_type,
        value,
        entry.reason,
        entry.expires_at_s,
        entry.created_by_principal_id,
    )


@dataclass(frozen=True, slots=True)
class ListHit:
    list_kind: ListKind
    entry_type: ListEntryType

    @property
    def reason_code(self) -> str:
        prefix = "BLOCKLIST" if self.list_kind is ListKind.BLOCK else "ALLOWLIST"
        suffix = "IP" if self.entry_type is ListEntryType.IP_ADDRESS else self.entry_type.name
        return f"{prefix}_{suffix}"


@dataclass(frozen=True, slots=True)
class _ListIndex:
    # value -> expiry (None = never); networks for CIDR entries.
    exact: dict[tuple[ListEntryType, str], float | None] = field(default_factory=dict)
    networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, float | None]] = field(default_factory=list)


class ListMatcher:
    """A tenant's active block and allow entries, indexed for O(1) lookups on the hot path."""

    def __init__(self, entries: Iterable[ListEntry]) -> None:
        self._indexes = {ListKind.BLOCK: _ListIndex(), ListKind.ALLOW: _ListIndex()}
        for entry in entries:
            index = self._indexes[entry.list_kind]
            if entry.entry_type is ListEntryType.IP_ADDRESS and "/" in entry.value:
                index.networks.append((ipaddress.ip_network(entry.value, strict=False), entry.expires_at_s))
            else:
                key = (entry.entry_type, entry.value)
                previous = index.exact.get(key, 0.0)
                longest = (
                    None if previous is None or entry.expires_at_s is None else max(previous, entry.expires_at_s)
                )
                index.exact[key] = longest

    def match(self, context: AssessmentContext, now_s: float) -> ListHit | None:
        """A block hit wins over an allow hit."""
        for kind in (ListKind.BLOCK, ListKind.ALLOW):
            entry_type = self._match_kind(self._indexes[kind], context, now_s)
            if entry_type is not None:
                return ListHit(kind, entry_type)
        return None

    @staticmethod
    def _match_kind(index: _ListIndex, context: AssessmentContext, now_s: float) -> ListEntryType | None:
        candidates = [
            (ListEntryType.ACCOUNT, context.debit_account_id.lower()),
            (ListEntryType.ACCOUNT, context.credit_account_id.lower()),
            (ListEntryType.DEVICE, context.device_id),
            (ListEntryType.COUNTERPARTY, context.payee_id),
            (ListEntryType.IP_ADDRESS, _canonical_ip(context.ip_address)),
        ]
        for entry_type, value in candidates:
            if not value or (entry_type, value) not in index.exact:
                continue
            expires_at_s = index.exact[(entry_type, value)]
            if expires_at_s is None or expires_at_s > now_s:
                return entry_type
        if context.ip_address and index.networks:
            address = ipaddress.ip_address(context.ip_address)
            for network, expires_at_s in index.networks:
                if address in network and (expires_at_s is None or expires_at_s > now_s):
                    return ListEntryType.IP_ADDRESS
        return None


def _canonical_ip(value: str) -> str:
    return str(ipaddress.ip_address(value)) if value else ""
