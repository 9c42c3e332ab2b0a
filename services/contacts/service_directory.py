"""Use cases of pay by phone: SetDiscoverability (opt in with the accounts payers may pay) and ResolvePhone (phone
number → the opted-in customer's accounts, by blind index, rate-limited, hits and misses alike).

ResolvePhone is the vault's hot path. Concurrent calls of a process form micro-batches (``services/kit/batching.py``):
a batch costs one Redis script call (every call's rate-limit windows) and one database statement (the admitted
calls' lookups, their access-log entries or miss records, and the commit). A call is answered only after that
commit, so every answered resolve is durably in the access log; nothing is dropped or deferred.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol
from uuid import UUID

from services.contacts.caller import Caller, access_entry
from services.contacts.contact_reader import ContactReader, ContactReadTx, MaskedContact
from services.contacts.crypto import BlindIndexer
from services.contacts.domain import (
    Contact,
    ContactNotFound,
    Purpose,
    PurposeNotAllowed,
    contact_invalid,
    parse_phone_number,
)
from services.contacts.domain_access_log import AccessAction
from services.contacts.domain_directory import PayeeAccounts, ResolveProbe
from services.contacts.limits import (
    DISCOVERABLE_ACCOUNTS_MAX,
    RESOLVE_BATCH_CONCURRENCY,
    RESOLVE_BATCH_SIZE_MAX,
    RESOLVE_BATCH_WINDOW_S,
)
from services.contacts.rate_limit import ResolveCaller, ResolveLimiter, ResolveRateLimited
from services.kit.batching import MicroBatcher
from services.kit.errors import FieldViolation, IdempotencyKeyReused, invalid
from services.kit.ids import parse_uuid


class DirectoryTx(ContactReadTx, Protocol):
    async def update_contact(
        self, contact: Contact, phone: tuple[bytes, bytes, int] | None, now: datetime
    ) -> Contact: ...

    async def claim_request(
        self, organization_id: UUID, request_id: UUID, method: str, digest: bytes, resource_id: UUID, now: datetime
    ) -> tuple[str, bytes, UUID] | None: ...


class DirectoryStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[DirectoryTx]: ...

    async def key_versions(self) -> tuple[int, int]: ...

    async def resolve_discoverable(self, probes: Sequence[ResolveProbe]) -> list[PayeeAccounts | None]: ...


@dataclass(frozen=True, slots=True)
class _ResolveCall:
    caller: ResolveCaller
    probe: ResolveProbe


@dataclass(frozen=True, slots=True)
class _ResolveOutcome:
    found: PayeeAccounts | None
    # Set when a rate-limit window was full: the call was not looked up, and may retry after this many seconds.
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class Resolved:
    customer_id: UUID
    default_account_id: UUID | None
    account_ids: tuple[UUID, ...]
    masked_phone_number: str


class DirectoryService:
    def __init__(
        self,
        store: DirectoryStore,
        reader: ContactReader,
        indexer: BlindIndexer,
        limiter: ResolveLimiter,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._reader = reader
        self._indexer = indexer
        self._limiter = limiter
        self._clock = clock
        self._resolver: MicroBatcher[_ResolveCall, _ResolveOutcome] = MicroBatcher(
            self._resolve_batch,
            window_s=RESOLVE_BATCH_WINDOW_S,
            size_max=RESOLVE_BATCH_SIZE_MAX,
            concurrency=RESOLVE_BATCH_CONCURRENCY,
        )

    async def set_discoverability(
        self,
        caller: Caller,
        contact_id_text: str,
        discoverable: bool,
        default_account_id_text: str,
        account_id_texts: Sequence[str],
        request_id_text: str,
    ) -> MaskedContact:
        violations: list[FieldViolation] = []
        contact_id = parse_uuid(contact_id_text, "contact_id", violations)
        request_id = parse_uuid(request_id_text, "request_id", violations)
        default_account = parse_uuid(default_account_id_text, "default_account_id", violations, required=discoverable)
        accounts: list[UUID] = []
        for index, text in enumerate(account_id_texts):
            parsed = parse_uuid(text, f"account_ids[{index}]", violations)
            if parsed is not None and parsed not in accounts:
                accounts.append(parsed)
        if len(accounts) > DISCOVERABLE_ACCOUNTS_MAX:
            violations.append(FieldViolation("account_ids", f"at most {DISCOVERABLE_ACCOUNTS_MAX}"))
        if violations:
            raise invalid(violations)
        assert contact_id is not None
        assert request_id is not None
        if default_account is not None and default_account not in accounts:
            accounts.insert(0, default_account)
        canonical = repr((discoverable, str(default_account), sorted(str(a) for a in accounts))).encode()
        digest = hashlib.sha256(b"SetDiscoverability|" + canonical).digest()
        now = self._clock()
        async with self._store.transaction() as tx:
            contact = await self._reader.visible_contact(tx, caller, contact_id, for_update=True)
            claimed = await tx.claim_request(
                caller.organization_id, request_id, "SetDiscoverability", digest, contact_id, now
            )
            if claimed is not None:
                if claimed != ("SetDiscoverability", digest, contact_id):
                    raise IdempotencyKeyReused("request_id", "request")
                return (await self._reader.mask_all(tx, [contact]))[0]
            if discoverable and Purpose.PAYEE_LOOKUP not in contact.purposes:
                raise PurposeNotAllowed("the contact was not collected for PURPOSE_PAYEE_LOOKUP")
            updated = replace(
                contact,
                discoverable=discoverable,
                default_account_id=default_account if discoverable else None,
                discoverable_account_ids=tuple(accounts) if discoverable else (),
            )
            stored = await tx.update_contact(updated, None, now)
            return (await self._reader.mask_all(tx, [stored]))[0]

    async def resolve_phone(self, caller: Caller, phone_number: str, region_hint: str, on_behalf_of: str) -> Resolved:
        """Hits and misses run the same batch (rate limits, one lookup by blind index that appends the access-log
        entry or the miss record) and log the same line; every miss is the same NOT_FOUND. An unparsable number is
        refused before it is counted: it can reveal nothing."""
        violations: list[FieldViolation] = []
        phone = parse_phone_number(phone_number, region_hint, violations)
        if violations:
            raise contact_invalid(violations)
        assert phone is not None
        now = self._clock()
        _, blind_version = await self._reader.key_versions(self._store)
        indexes = self._indexer.lookup_indexes(blind_version, phone.e164)
        # The entry's subject is filled in by the statement from the row it finds; a miss records the probe instead.
        entry = access_entry(caller, AccessAction.RESOLVE, caller.organization_id, now, on_behalf_of=on_behalf_of)
        counted_as = ResolveCaller(caller.organization_id, caller.principal_id, on_behalf_of)
        outcome = await self._resolver.submit(_ResolveCall(counted_as, ResolveProbe(tuple(indexes), entry)))
        if outcome.retry_after_s is not None:
            raise ResolveRateLimited("too many phone lookups; retry later", retry_after_s=outcome.retry_after_s)
        if outcome.found is None:
            raise ContactNotFound()
        found = outcome.found
        return Resolved(found.customer_id, found.default_account_id, found.account_ids, phone.masked)

    async def _resolve_batch(self, calls: Sequence[_ResolveCall]) -> list[_ResolveOutcome]:
        """Rate limits for every call, then one statement for the admitted ones."""
        retry_after = await self._limiter.admit_many([call.caller for call in calls])
        admitted = [call.probe for call, wait_s in zip(calls, retry_after, strict=True) if wait_s is None]
        found = iter(await self._store.resolve_discoverable(admitted) if admitted else [])
        outcomes = [
            _ResolveOutcome(None, wait_s) if wait_s is not None else _ResolveOutcome(next(found))
            for wait_s in retry_after
        ]
        assert next(found, None) is None
        return outcomes
