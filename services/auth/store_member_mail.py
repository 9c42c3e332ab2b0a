"""SQL of the member-mail job: the one address it needs, looked up by principal when a notice is due (auth owns
members' addresses; the job never copies them anywhere but the mail sink's ``to`` field)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import asyncpg


class MemberAddresses:
    """``pool`` is called at each query: the server creates its pool only once it starts."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def member_address(self, organization_id: uuid.UUID, principal_id: uuid.UUID) -> str | None:
        """The member's email address; None for a customer, a service account, an unknown principal or a member
        without one."""
        address: str | None = await self._pool().fetchval(
            "SELECT email FROM principals WHERE organization_id = $1 AND principal_id = $2 AND kind = 'member'",
            organization_id,
            principal_id,
        )
        return address
