"""Pay-by-phone directory values: one ResolvePhone probe as the store batches it, and the payee accounts it finds."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from services.contacts.domain_access_log import AccessAction, AccessLogEntry

# A probe carries at most this many blind indexes: the current key version and its two neighbours.
PROBE_INDEXES_MAX = 3


@dataclass(frozen=True, slots=True)
class ResolveProbe:
    """One lookup by blind index and the RESOLVE entry to append if it finds someone (its subject is filled in from
    the row found); a miss appends a ``resolve_miss`` row with the same who/when/trace instead."""

    blind_indexes: tuple[bytes, ...]
    entry: AccessLogEntry

    def __post_init__(self) -> None:
        assert 0 < len(self.blind_indexes) <= PROBE_INDEXES_MAX
        assert self.entry.action is AccessAction.RESOLVE


@dataclass(frozen=True, slots=True)
class PayeeAccounts:
    """What a hit reveals: the customer and the accounts they chose to be paid into — never the number."""

    customer_id: UUID
    default_account_id: UUID | None
    account_ids: tuple[UUID, ...]
