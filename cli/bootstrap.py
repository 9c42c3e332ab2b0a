"""``walletctl bootstrap``: the first tenant and its owner, through auth's anonymous ``SignUpOrganization``.

The owner's password is generated here (``secrets``), sent once over the call and printed once: it is the one-time
credential the owner signs in with and then changes (and enrols MFA). Re-running with the same ``--organization-id``
is idempotent on the server side but cannot print the password again.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Annotated

import typer
from rich.panel import Panel

from cli.output import JsonFlag, console, execute, print_json
from cli.session import Session
from services.kit.config import Env
from wallet.auth.v1 import auth_organizations_pb2

# 24 random bytes → 32 URL-safe characters, well above the 12-character platform floor.
OWNER_PASSWORD_BYTES = 24


async def _sign_up(
    request: auth_organizations_pb2.SignUpOrganizationRequest,
) -> auth_organizations_pb2.SignUpOrganizationResponse:
    async with Session(Env()) as session:
        return await session.call("auth", session.auth.SignUpOrganization, request, anonymous=True)


def bootstrap(
    slug: Annotated[str, typer.Option("--slug", help="the tenant's login name (3-40 of a-z, 0-9, -)")],
    display_name: Annotated[str, typer.Option("--name", help="the tenant's name")],
    owner_email: Annotated[str, typer.Option("--owner-email", help="the owner's login")],
    owner_name: Annotated[str, typer.Option("--owner-name", help="the owner's name")] = "Owner",
    organization_id: Annotated[str | None, typer.Option("--organization-id", help="default: a new UUID")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create the first tenant and its owner; prints the owner's one-time password once."""
    password = secrets.token_urlsafe(OWNER_PASSWORD_BYTES)
    request = auth_organizations_pb2.SignUpOrganizationRequest(
        organization_id=organization_id or str(uuid.uuid4()),
        slug=slug,
        display_name=display_name,
        owner_email=owner_email,
        owner_display_name=owner_name,
        owner_password=password,
    )
    reply = execute(_sign_up(request))
    # An idempotent replay carries no tokens: the organization existed already and this password was not set.
    replayed = not reply.HasField("tokens")
    if as_json:
        print_json(
            {
                "organization_id": reply.organization.organization_id,
                "slug": reply.organization.slug,
                "owner_member_id": reply.owner_member_id,
                "owner_email": owner_email,
                "owner_password": None if replayed else password,
            }
        )
        return
    if replayed:
        console.print(f"organization {reply.organization.slug} existed already; its owner keeps their password")
        return
    console.print(
        Panel(
            f"organization  {reply.organization.slug} ({reply.organization.organization_id})\n"
            f"owner         {owner_email} ({reply.owner_member_id})\n"
            f"password      {password}\n\n"
            "Shown once: hand it to the owner, who signs in, changes it and enrols MFA.",
            title="tenant created",
        )
    )
