"""Password hashing (argon2id) and the password rules: length and the list of common/breached passwords.

Hashing is CPU-heavy on purpose, so the service runs ``hash``/``verify`` in a worker thread. An unknown login is
verified against a dummy hash made with the same parameters, so it costs the same time as a wrong password.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.auth import limits

COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common_passwords.txt"
COMMON_PASSWORDS_COUNT = 10_000
SALT_BYTES = 16
HASH_BYTES = 32


@cache
def common_passwords() -> frozenset[str]:
    words = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").split()
    assert len(words) == COMMON_PASSWORDS_COUNT, len(words)
    return frozenset(word.lower() for word in words)


def password_problems(password: str, min_length: int) -> list[str]:
    """Every rule the password breaks (empty when acceptable)."""
    problems: list[str] = []
    if len(password) < min_length:
        problems.append(f"must be at least {min_length} characters")
    if len(password) > limits.PASSWORD_LENGTH_MAX:
        problems.append(f"must be at most {limits.PASSWORD_LENGTH_MAX} characters")
    if password.lower() in common_passwords():
        problems.append("is on the list of common or breached passwords")
    return problems


class Passwords:
    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int) -> None:
        assert memory_kib >= limits.ARGON2_MEMORY_KIB_MIN
        assert time_cost >= limits.ARGON2_TIME_COST_MIN
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=HASH_BYTES,
            salt_len=SALT_BYTES,
            type=Type.ID,
        )
        self._dummy_hash = self._hasher.hash("dummy password for unknown logins")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when it matches; ``None`` (unknown login, no password yet) is checked against the dummy hash."""
        try:
            matched = self._hasher.verify(password_hash or self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return matched and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
