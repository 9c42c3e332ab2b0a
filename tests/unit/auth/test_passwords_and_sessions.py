"""argon2id hashing (unknown logins cost a verification too, rehash on parameter change) and session liveness."""

from __future__ import annotations

from services.auth.domain_records import Session
from services.auth.passwords import Passwords

FLOOR = {"memory_kib": 19 * 1024, "time_cost": 2, "parallelism": 1}


def test_verify_and_unknown_login() -> None:
    passwords = Passwords(**FLOOR)
    stored = passwords.hash("a perfectly fine passphrase")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify(stored, "a perfectly fine passphrase")
    assert not passwords.verify(stored, "a perfectly fine passphrasE")
    # No stored hash: checked against the dummy hash (same cost), never a match, not even for its own text.
    assert not passwords.verify(None, "dummy password for unknown logins")
    assert not passwords.verify("not a hash", "x")


def test_rehash_when_parameters_change() -> None:
    old = Passwords(**FLOOR)
    new = Passwords(memory_kib=20 * 1024, time_cost=3, parallelism=1)
    stored = old.hash("a perfectly fine passphrase")
    assert not old.needs_rehash(stored)
    assert new.needs_rehash(stored)
    assert new.verify(stored, "a perfectly fine passphrase")


def _session(**changes: object) -> Session:
    values: dict[str, object] = {
        "session_id": "s",
        "organization_id": "o",
        "principal_id": "p",
        "kind": "member",
        "device_id": "",
        "amr": ("pwd",),
        "enrolment_only": False,
        "user_agent": "",
        "source_ip": "",
        "auth_time": 0.0,
        "created_at": 0.0,
        "last_used_at": 100.0,
        "expires_at": 1000.0,
        "revoked_at": None,
    }
    values.update(changes)
    return Session(**values)  # type: ignore[arg-type]


def test_session_liveness() -> None:
    assert _session().is_live(200.0, idle_timeout_s=300)
    assert not _session().is_live(401.0, idle_timeout_s=300)
    assert not _session().is_live(1000.0, idle_timeout_s=10_000)
    assert not _session(revoked_at=150.0).is_live(200.0, idle_timeout_s=300)
