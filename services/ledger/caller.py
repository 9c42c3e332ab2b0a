"""Who is calling, in the ledger's terms: the tenant, the principal, and for customer tokens the customer id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from services.kit.errors import Unauthenticated
from services.kit.ids import fast_uuid
from services.kit.policy import grants
from services.kit.request_context import current_principal
from services.kit.tokens import PRINCIPAL_KIND_CUSTOMER, Principal

ACCOUNTS_ADMIN_PERMISSION = "ledger.accounts.admin"
# Callers worked out per verified principal: the kit's token cache hands out the same Principal object for a token
# it has verified, so a busy client's calls skip the UUID parsing and the permission walk.
CALLERS_CACHED_MAX = 10_000
_callers: dict[int, tuple[Principal, Caller]] = {}


@dataclass(frozen=True, slots=True)
class Caller:
    organization_id: uuid.UUID
    principal_id: str
    # Set for customer (wallet holder) tokens: they see and debit only their own accounts.
    customer_id: uuid.UUID | None
    device_id: str = ""
    # May set an overdraft line (credit_limit) when opening an account: `ledger.accounts.admin`.
    is_accounts_admin: bool = False

    def may_see(self, account_customer_id: uuid.UUID | None) -> bool:
        return self.customer_id is None or account_customer_id == self.customer_id


def current_caller() -> Caller:
    principal = current_principal()
    if principal is None:
        raise Unauthenticated("no authenticated principal")
    # Keyed by identity; the entry keeps the principal alive, so its id cannot be reused while cached.
    cached = _callers.get(id(principal))
    if cached is not None and cached[0] is principal:
        return cached[1]
    caller = _caller_of(principal)
    if len(_callers) >= CALLERS_CACHED_MAX:
        del _callers[next(iter(_callers))]  # the oldest entry
    _callers[id(principal)] = (principal, caller)
    return caller


def _caller_of(principal: Principal) -> Caller:
    try:
        # The fast UUID class: the tenant id is half of every key a commit looks up (services/kit/ids.py).
        organization_id = fast_uuid(uuid.UUID(principal.organization_id))
        customer_id = fast_uuid(uuid.UUID(principal.subject)) if principal.kind == PRINCIPAL_KIND_CUSTOMER else None
    except ValueError:
        raise Unauthenticated("the token's org or sub is not a UUID") from None
    return Caller(
        organization_id,
        principal.subject,
        customer_id,
        principal.device_id or "",
        is_accounts_admin=grants(principal.roles, principal.scopes, ACCOUNTS_ADMIN_PERMISSION),
    )
