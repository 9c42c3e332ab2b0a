"""Random, truncated and malformed request bytes to every contacts method never end in INTERNAL or UNKNOWN."""

from __future__ import annotations

import pytest

from tests.integration.contacts.conftest import Vault
from tests.support.authorization_matrix import Claims
from tests.support.fuzz_service import fuzz_service

pytestmark = pytest.mark.integration


async def test_hostile_bytes_to_every_contacts_method(vault: Vault) -> None:
    async def mint(claims: Claims) -> str:
        return vault.key.mint(**claims)

    calls, failures = await fuzz_service(
        vault.channel, "wallet.contacts.v1.ContactsService", mint, vault.organization_id
    )
    assert calls > 0
    assert not failures, f"{len(failures)} of {calls} calls failed:\n" + "\n".join(failures)
