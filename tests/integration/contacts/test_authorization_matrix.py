"""Every contacts method, under every role and token state, enforces its declared policy (tests/support/authorization_matrix)."""

from __future__ import annotations

import pytest

from tests.integration.contacts.conftest import Vault
from tests.support.authorization_matrix import Claims, Matrix

pytestmark = pytest.mark.integration


async def test_every_contacts_method_enforces_its_policy(vault: Vault) -> None:
    async def mint(claims: Claims) -> str:
        return vault.key.mint(**claims)

    matrix = Matrix(vault.channel, mint)
    await matrix.check_service("wallet.contacts.v1.ContactsService")
    assert matrix.calls > 0
    assert not matrix.failures, matrix.report()
