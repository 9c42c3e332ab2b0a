"""The verifier exposes the ``sid`` claim (auth's session of the token) as ``Principal.session_id``."""

from services.kit.testing import SigningKey, static_verifier


async def test_session_id_is_read_from_sid() -> None:
    key = SigningKey()
    principal = await static_verifier(key).verify(key.mint(sid="session-1"))
    assert principal.session_id == "session-1"


async def test_session_id_absent_without_sid() -> None:
    key = SigningKey()
    principal = await static_verifier(key).verify(key.mint())
    assert principal.session_id is None


async def test_non_string_sid_is_ignored() -> None:
    key = SigningKey()
    principal = await static_verifier(key).verify(key.mint(sid=42))
    assert principal.session_id is None
