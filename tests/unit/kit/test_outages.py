from pathlib import Path

import asyncpg
import pytest
import redis.exceptions

from services.kit.errors import Category
from services.kit.outages import as_outage


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(),
        ConnectionResetError(),
        TimeoutError(),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.InterfaceError("connection is closed"),
        redis.exceptions.ConnectionError("Error 111 connecting"),
        redis.exceptions.TimeoutError(),
    ],
)
def test_outages_become_unavailable_with_retry_info(error: BaseException) -> None:
    unavailable = as_outage(error)
    assert unavailable is not None
    assert unavailable.category is Category.UNAVAILABLE
    assert unavailable.retry_after_s is not None
    assert unavailable.retry_after_s > 0


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bug"),
        KeyError("x"),
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        redis.exceptions.ResponseError("WRONGTYPE"),
    ],
)
def test_bugs_stay_bugs(error: BaseException) -> None:
    assert as_outage(error) is None


async def test_a_missing_postgres_socket_is_an_outage(tmp_path: Path) -> None:
    # A restarting Postgres has no unix socket: connecting raises FileNotFoundError from inside asyncpg.
    with pytest.raises(FileNotFoundError) as raised:
        await asyncpg.connect(host=str(tmp_path), port=5432, user="postgres", database="postgres", timeout=2)
    assert as_outage(raised.value) is not None


def test_an_oserror_from_our_own_code_is_a_bug(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as raised:
        (tmp_path / "missing").read_bytes()
    assert as_outage(raised.value) is None
