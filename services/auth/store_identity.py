"""SQL for organizations, principals (members, customers, service accounts), their credentials and invitations."""

# Only constant column lists and fixed ORDER BY clauses are interpolated into SQL; values are always $n parameters.
# ruff: noqa: S608

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from services.auth.domain import (
    ConcurrentCreate,
    IdentityAlreadyExists,
    Organization,
    OrganizationPolicy,
    Principal,
    SlugTaken,
    Status,
)
from services.auth.store_rows import seconds, seconds_or_none, ts, ts_or_none

_PRINCIPAL_COLUMNS = """organization_id, principal_id, kind, email, display_name, external_reference, roles, scopes,
    status, password_hash, totp_secret_sealed IS NOT NULL AS totp_enrolled, totp_last_step, created_at,
    last_login_at, secret_rotated_at"""
_ORGANIZATION_COLUMNS = """organization_id, slug, display_name, is_platform, created_at, mfa_required,
    password_min_length, session_max_lifetime_s, session_idle_timeout_s, customer_self_sign_up, policy_updated_at"""


def _principal(row: asyncpg.Record) -> Principal:
    return Principal(
        organization_id=str(row["organization_id"]),
        principal_id=str(row["principal_id"]),
        kind=row["kind"],
        email=row["email"],
        display_name=row["display_name"],
        external_reference=row["external_reference"],
        roles=tuple(row["roles"]),
        scopes=tuple(row["scopes"]),
        status=Status(row["status"]),
        password_hash=row["password_hash"],
        totp_enrolled=row["totp_enrolled"],
        totp_last_step=row["totp_last_step"],
        created_at=seconds(row["created_at"]),
        last_login_at=seconds_or_none(row["last_login_at"]),
        secret_rotated_at=seconds_or_none(row["secret_rotated_at"]),
    )


def _organization(row: asyncpg.Record) -> Organization:
    return Organization(
        organization_id=str(row["organization_id"]),
        slug=row["slug"],
        display_name=row["display_name"],
        is_platform=row["is_platform"],
        created_at=seconds(row["created_at"]),
        policy=OrganizationPolicy(
            mfa_required=row["mfa_required"],
            password_min_length=row["password_min_length"],
            session_max_lifetime_s=row["session_max_lifetime_s"],
            session_idle_timeout_s=row["session_idle_timeout_s"],
            customer_self_sign_up=row["customer_self_sign_up"],
            updated_at=seconds(row["policy_updated_at"]),
        ),
    )


class IdentityQueries:
    _connection: asyncpg.Connection

    # --- organizations ----------------------------------------------------------------------------------------

    async def insert_organization(self, organization_id: str, slug: str, display_name: str, now_s: float) -> None:
        try:
            await self._connection.execute(
                "INSERT INTO organizations (organization_id, slug, display_name, created_at, policy_updated_at) "
                "VALUES ($1, $2, $3, $4, $4)",
                uuid.UUID(organization_id),
                slug,
                display_name,
                ts(now_s),
            )
        except asyncpg.UniqueViolationError as err:
            if err.constraint_name == "organizations_pkey":
                raise ConcurrentCreate() from err
            raise SlugTaken() from err

    async def get_organization(self, organization_id: str) -> Organization | None:
        row = await self._connection.fetchrow(
            f"SELECT {_ORGANIZATION_COLUMNS} FROM organizations WHERE organization_id = $1",
            uuid.UUID(organization_id),
        )
        return None if row is None else _organization(row)

    async def get_organization_by_slug(self, slug: str) -> Organization | None:
        row = await self._connection.fetchrow(
            f"SELECT {_ORGANIZATION_COLUMNS} FROM organizations WHERE slug = $1", slug
        )
        return None if row is None else _organization(row)

    async def update_policy(self, organization_id: str, policy: OrganizationPolicy) -> None:
        await self._connection.execute(
            "UPDATE organizations SET mfa_required = $2, password_min_length = $3, session_max_lifetime_s = $4, "
            "session_idle_timeout_s = $5, customer_self_sign_up = $6, policy_updated_at = $7 "
            "WHERE organization_id = $1",
            uuid.UUID(organization_id),
            policy.mfa_required,
            policy.password_min_length,
            policy.session_max_lifetime_s,
            policy.session_idle_timeout_s,
            policy.customer_self_sign_up,
            ts(policy.updated_at),
        )

    # --- principals -------------------------------------------------------------------------------------------

    async def insert_principal(self, principal: Principal, client_secret_hash: bytes | None = None) -> None:
        try:
            await self._connection.execute(
                "INSERT INTO principals (organization_id, principal_id, kind, email, display_name, "
                "external_reference, roles, scopes, status, password_hash, created_at, client_secret_hash, "
                "secret_rotated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                uuid.UUID(principal.organization_id),
                uuid.UUID(principal.principal_id),
                principal.kind,
                principal.email,
                principal.display_name,
                principal.external_reference,
                list(principal.roles),
                list(principal.scopes),
                principal.status.value,
                principal.password_hash,
                ts(principal.created_at),
                client_secret_hash,
                ts_or_none(principal.secret_rotated_at),
            )
        except asyncpg.UniqueViolationError as err:
            if err.constraint_name == "principals_pkey":
                raise ConcurrentCreate() from err
            raise IdentityAlreadyExists() from err

    async def get_principal(
        self, organization_id: str, principal_id: str, *, kind: str | None = None, for_update: bool = False
    ) -> Principal | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._connection.fetchrow(
            f"SELECT {_PRINCIPAL_COLUMNS} FROM principals WHERE organization_id = $1 AND principal_id = $2 "
            f"AND ($3::text IS NULL OR kind = $3){lock}",
            uuid.UUID(organization_id),
            uuid.UUID(principal_id),
            kind,
        )
        return None if row is None else _principal(row)

    async def principal_exists(self, principal_id: str) -> bool:
        found = await self._connection.fetchval(
            "SELECT 1 FROM principals WHERE principal_id = $1", uuid.UUID(principal_id)
        )
        return found is not None

    async def get_service_account(self, principal_id: str) -> tuple[Principal, dict[str, Any]] | None:
        """A service account by client id, with its secret hashes (for the client-credentials grant)."""
        row = await self._connection.fetchrow(
            f"SELECT {_PRINCIPAL_COLUMNS}, client_secret_hash, previous_secret_hash, previous_secret_expires_at "
            "FROM principals WHERE principal_id = $1 AND kind = 'service'",
            uuid.UUID(principal_id),
        )
        if row is None:
            return None
        secrets = {
            "current": row["client_secret_hash"],
            "previous": row["previous_secret_hash"],
            "previous_expires_at": seconds_or_none(row["previous_secret_expires_at"]),
        }
        return _principal(row), secrets

    async def find_login(self, organization_id: str, email: str) -> Principal | None:
        row = await self._connection.fetchrow(
            f"SELECT {_PRINCIPAL_COLUMNS} FROM principals WHERE organization_id = $1 AND lower(email) = $2",
            uuid.UUID(organization_id),
            email,
        )
        return None if row is None else _principal(row)

    async def list_principals(
        self,
        organization_id: str,
        kind: str,
        *,
        status: Status | None,
        role: str | None,
        email: str | None,
        external_reference: str | None,
        order_by_email: bool,
        after: tuple[str, str] | None,
        limit: int,
    ) -> list[Principal]:
        # Keyset: (email, id) for members, id for the others; `after` is the last row's position.
        sort = "coalesce(email, ''), principal_id" if order_by_email else "principal_id"
        # $7 (the email part of the cursor) is typed in both shapes so the statement always prepares.
        position = (
            "(coalesce(email, ''), principal_id) > ($7::text, $8::uuid)"
            if order_by_email
            else "($7::text IS NOT NULL AND principal_id > $8::uuid)"
        )
        rows = await self._connection.fetch(
            f"SELECT {_PRINCIPAL_COLUMNS} FROM principals WHERE organization_id = $1 AND kind = $2 "
            "AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR $4 = ANY(roles)) "
            "AND ($5::text IS NULL OR lower(email) = $5) AND ($6::text IS NULL OR external_reference = $6) "
            f"AND ($8::uuid IS NULL OR {position}) ORDER BY {sort} LIMIT $9",
            uuid.UUID(organization_id),
            kind,
            None if status is None else status.value,
            role,
            email,
            external_reference,
            "" if after is None else after[0],
            None if after is None else uuid.UUID(after[1]),
            limit,
        )
        return [_principal(row) for row in rows]

    async def set_roles(self, principal_id: str, roles: Sequence[str]) -> None:
        await self._connection.execute(
            "UPDATE principals SET roles = $2 WHERE principal_id = $1", uuid.UUID(principal_id), list(roles)
        )

    async def set_status(self, principal_id: str, status: Status) -> None:
        await self._connection.execute(
            "UPDATE principals SET status = $2 WHERE principal_id = $1", uuid.UUID(principal_id), status.value
        )

    async def count_active_owners(self, organization_id: str) -> int:
        count: int = await self._connection.fetchval(
            "SELECT count(*) FROM principals WHERE organization_id = $1 AND kind = 'member' "
            "AND status = 'active' AND 'owner' = ANY(roles)",
            uuid.UUID(organization_id),
        )
        return count

    async def set_password_hash(self, principal_id: str, password_hash: str) -> None:
        await self._connection.execute(
            "UPDATE principals SET password_hash = $2 WHERE principal_id = $1", uuid.UUID(principal_id), password_hash
        )

    async def set_last_login(self, principal_id: str, now_s: float) -> None:
        await self._connection.execute(
            "UPDATE principals SET last_login_at = $2 WHERE principal_id = $1", uuid.UUID(principal_id), ts(now_s)
        )

    async def set_client_secret(
        self, principal_id: str, secret_hash: bytes, previous_expires_at_s: float, now_s: float
    ) -> None:
        await self._connection.execute(
            "UPDATE principals SET previous_secret_hash = client_secret_hash, previous_secret_expires_at = $3, "
            "client_secret_hash = $2, secret_rotated_at = $4 WHERE principal_id = $1",
            uuid.UUID(principal_id),
            secret_hash,
            ts(previous_expires_at_s),
            ts(now_s),
        )

    async def set_scopes(self, principal_id: str, scopes: Sequence[str]) -> None:
        await self._connection.execute(
            "UPDATE principals SET scopes = $2 WHERE principal_id = $1", uuid.UUID(principal_id), list(scopes)
        )

    # --- TOTP and recovery codes ------------------------------------------------------------------------------

    async def totp_secrets(self, principal_id: str) -> tuple[bytes | None, bytes | None, float | None]:
        """(sealed active secret, sealed pending secret, pending expiry)."""
        row = await self._connection.fetchrow(
            "SELECT totp_secret_sealed, totp_pending_sealed, totp_pending_expires_at FROM principals "
            "WHERE principal_id = $1 FOR UPDATE",
            uuid.UUID(principal_id),
        )
        assert row is not None
        return row[0], row[1], seconds_or_none(row[2])

    async def set_pending_totp(self, principal_id: str, sealed: bytes, expires_at_s: float) -> None:
        await self._connection.execute(
            "UPDATE principals SET totp_pending_sealed = $2, totp_pending_expires_at = $3 WHERE principal_id = $1",
            uuid.UUID(principal_id),
            sealed,
            ts(expires_at_s),
        )

    async def activate_totp(self, principal_id: str, sealed: bytes, step: int) -> None:
        await self._connection.execute(
            "UPDATE principals SET totp_secret_sealed = $2, totp_last_step = $3, totp_pending_sealed = NULL, "
            "totp_pending_expires_at = NULL WHERE principal_id = $1",
            uuid.UUID(principal_id),
            sealed,
            step,
        )

    async def remove_totp(self, principal_id: str) -> None:
        await self._connection.execute(
            "UPDATE principals SET totp_secret_sealed = NULL, totp_last_step = 0, totp_pending_sealed = NULL, "
            "totp_pending_expires_at = NULL WHERE principal_id = $1",
            uuid.UUID(principal_id),
        )
        await self._connection.execute("DELETE FROM recovery_codes WHERE principal_id = $1", uuid.UUID(principal_id))

    async def set_totp_last_step(self, principal_id: str, step: int) -> bool:
        """Records a used step; False when a concurrent call used this step or a later one first."""
        updated = await self._connection.fetchval(
            "UPDATE principals SET totp_last_step = $2 WHERE principal_id = $1 AND totp_last_step < $2 RETURNING 1",
            uuid.UUID(principal_id),
            step,
        )
        return updated is not None

    async def replace_recovery_codes(self, principal_id: str, code_hashes: Sequence[bytes]) -> None:
        await self._connection.execute("DELETE FROM recovery_codes WHERE principal_id = $1", uuid.UUID(principal_id))
        await self._connection.executemany(
            "INSERT INTO recovery_codes (principal_id, code_hash) VALUES ($1, $2)",
            [(uuid.UUID(principal_id), code_hash) for code_hash in code_hashes],
        )

    async def use_recovery_code(self, principal_id: str, code_hash: bytes, now_s: float) -> bool:
        used = await self._connection.fetchval(
            "UPDATE recovery_codes SET used_at = $3 WHERE principal_id = $1 AND code_hash = $2 AND used_at IS NULL "
            "RETURNING 1",
            uuid.UUID(principal_id),
            code_hash,
            ts(now_s),
        )
        return used is not None

    async def recovery_codes_left(self, principal_id: str) -> int:
        count: int = await self._connection.fetchval(
            "SELECT count(*) FROM recovery_codes WHERE principal_id = $1 AND used_at IS NULL",
            uuid.UUID(principal_id),
        )
        return count

    # --- invitations ------------------------------------------------------------------------------------------

    async def insert_invitation(
        self, token_hash: bytes, organization_id: str, principal_id: str, expires_at_s: float
    ) -> None:
        await self._connection.execute(
            "INSERT INTO invitations (token_hash, organization_id, principal_id, expires_at) VALUES ($1, $2, $3, $4)",
            token_hash,
            uuid.UUID(organization_id),
            uuid.UUID(principal_id),
            ts(expires_at_s),
        )

    async def take_invitation(self, token_hash: bytes, now_s: float) -> tuple[str, str] | None:
        """Marks the invitation used; (organization id, principal id), or None if unknown, used or expired."""
        row = await self._connection.fetchrow(
            "UPDATE invitations SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 "
            "RETURNING organization_id, principal_id",
            token_hash,
            ts(now_s),
        )
        return None if row is None else (str(row[0]), str(row[1]))
