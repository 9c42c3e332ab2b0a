"""Routes come from the descriptors only: nothing here adds a route by hand."""

import re

from gateway.catalog import public_methods, wallet_services
from gateway.router import Router
from services.kit.policy import policy_for


def _router() -> Router:
    return Router(public_methods())


def test_get_account_route_maps_to_ledger_get_account() -> None:
    found = _router().match("GET", "/v1/accounts/0190a0c8-0000-7000-8000-000000000001")
    assert found is not None
    assert found.method.full_method == "/wallet.ledger.v1.LedgerService/GetAccount"
    assert found.method.owner == "ledger"
    assert found.path_variables == {"account_id": "0190a0c8-0000-7000-8000-000000000001"}


def test_custom_verb_beats_the_bare_variable() -> None:
    router = _router()
    post = router.match("POST", "/v1/transfers/t-1:post")
    assert post is not None
    assert post.method.descriptor.name == "PostPendingTransfer"
    assert post.path_variables == {"transfer_id": "t-1"}
    void = router.match("POST", "/v1/transfers/t-1:void")
    assert void is not None
    assert void.method.descriptor.name == "VoidPendingTransfer"
    get = router.match("GET", "/v1/transfers/t-1")
    assert get is not None
    assert get.method.descriptor.name == "GetTransfer"


def test_verbs_are_distinguished() -> None:
    router = _router()
    create = router.match("POST", "/v1/transfers")
    listing = router.match("GET", "/v1/transfers")
    assert create is not None
    assert create.method.descriptor.name == "CreateTransfer"
    assert listing is not None
    assert listing.method.descriptor.name == "ListTransfers"
    assert router.match("PUT", "/v1/transfers") is None
    assert router.allowed_verbs("/v1/transfers") == ["GET", "POST"]


def test_additional_bindings_are_routes_too() -> None:
    router = _router()
    for path in ("/v1/jwks", "/.well-known/jwks.json"):
        found = router.match("GET", path)
        assert found is not None
        assert found.method.descriptor.name == "GetJwks"


def test_only_public_methods_have_routes_and_every_public_one_is_reachable() -> None:
    exposed = {method.full_method for method in public_methods()}
    internal = []
    for service in wallet_services():
        for method in service.methods:
            full = f"/{service.full_name}/{method.name}"
            policy = policy_for(full)
            assert policy is not None, full
            assert (full in exposed) == policy.public, full
            if not policy.public:
                internal.append(full)
    assert "/wallet.risk.v1.RiskService/Assess" in internal
    assert "/wallet.ledger.v1.LedgerService/CreateTransferBatch" in internal
    assert all(method.bindings for method in public_methods())


def _sample_path(source: str) -> str:
    return re.sub(r"\{[^}]*\}", "sample", source)


def test_every_route_leads_to_a_public_method_and_assess_to_none() -> None:
    router = _router()
    for method in public_methods():
        for binding in method.bindings:
            found = router.match(binding.verb, _sample_path(binding.template.source))
            assert found is not None, binding.template.source
            assert found.method.policy.public
    assert not any(method.descriptor.name == "Assess" for method in public_methods())
    assert router.match("POST", "/v1/assessments") is None
