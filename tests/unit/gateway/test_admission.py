import pytest

from gateway.admission import EdgeGuard, bearer_token, client_timeout_s, request_id_from
from gateway.rate_limit import Limit, RateLimiter
from services.kit.errors import InvalidArgument, Unauthenticated
from services.kit.policy import MethodPolicy
from services.kit.testing import SigningKey, static_verifier


@pytest.mark.parametrize(
    ("grpc_timeout", "request_timeout", "seconds"),
    [
        ("250m", None, 0.25),
        ("2S", None, 2.0),
        ("1M", None, 60.0),
        ("1H", None, 3600.0),
        ("500u", None, 0.0005),
        (None, "1.5", 1.5),
        ("3S", "9", 3.0),
        (None, None, None),
    ],
)
def test_client_timeouts(grpc_timeout: str | None, request_timeout: str | None, seconds: float | None) -> None:
    assert client_timeout_s(grpc_timeout, request_timeout) == seconds


@pytest.mark.parametrize(
    ("grpc_timeout", "request_timeout"), [("5", None), ("1X", None), (None, "soon"), (None, "-1")]
)
def test_malformed_timeouts_are_invalid(grpc_timeout: str | None, request_timeout: str | None) -> None:
    with pytest.raises(InvalidArgument):
        client_timeout_s(grpc_timeout, request_timeout)


def test_bearer_token_and_request_id() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert request_id_from("req-1") == "req-1"
    assert request_id_from("bad id with spaces") != "bad id with spaces"
    assert len(request_id_from(None)) == 36


def _guard(key: SigningKey) -> EdgeGuard:
    limiter = RateLimiter(None, hash_key=b"k", subject_limit=Limit("subject", 1, 1), ip_limit=Limit("ip", 1, 1))
    return EdgeGuard(static_verifier(key), limiter, default_deadline_s=10.0, max_deadline_s=30.0)


POLICY = MethodPolicy("/wallet.ledger.v1.LedgerService/GetAccount", "ledger.accounts.read", True, False, False)
ANONYMOUS = MethodPolicy("/wallet.auth.v1.AuthService/Login", "", True, False, True)


async def test_deadline_is_capped_and_defaulted() -> None:
    guard = _guard(SigningKey())
    assert guard.deadline_s(None) == 10.0
    assert guard.deadline_s(120.0) == 30.0
    assert guard.deadline_s(0.0) == 0.001


async def test_tokens_are_verified_unless_the_method_is_anonymous() -> None:
    key = SigningKey()
    guard = _guard(key)
    admitted = await guard.admit(
        POLICY, authorization=f"Bearer {key.mint(sub='s-1')}", client_ip="1.2.3.4", requested_timeout_s=None
    )
    assert admitted.principal is not None
    assert admitted.principal.subject == "s-1"
    with pytest.raises(Unauthenticated):
        await guard.admit(POLICY, authorization=None, client_ip=None, requested_timeout_s=None)
    with pytest.raises(Unauthenticated):
        await guard.admit(
            POLICY, authorization=f"Bearer {SigningKey().mint()}", client_ip=None, requested_timeout_s=None
        )
    with pytest.raises(Unauthenticated):
        await guard.admit(POLICY, authorization=f"Bearer {key.mint(exp=1)}", client_ip=None, requested_timeout_s=None)
    anonymous = await guard.admit(ANONYMOUS, authorization=None, client_ip=None, requested_timeout_s=2.0)
    assert anonymous.principal is None
    assert anonymous.timeout_s == 2.0
