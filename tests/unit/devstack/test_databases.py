from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devstack.databases import (
    database_name_for,
    database_url_for,
    ensure_databases_async,
    with_database,
)
from devstack.errors import DevstackError
from devstack.topology import SERVICE_NAMES


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_each_service_gets_its_own_prefixed_database(service: str) -> None:
    assert database_name_for(service) == f"wallet_{service}"


@pytest.mark.parametrize("service", ["Auth", "le-dger", "x;DROP", 'a"b', "x" * 60])
def test_names_that_could_not_be_interpolated_safely_are_refused(service: str) -> None:
    with pytest.raises(ValueError, match="not a usable database name"):
        database_name_for(service)


def test_the_longest_usable_name_is_postgres_limit() -> None:
    service = "x" * (63 - len("wallet_"))
    assert len(database_name_for(service)) == 63
    with pytest.raises(ValueError, match="not a usable database name"):
        database_name_for(service + "x")


def test_database_url_for_replaces_only_the_database() -> None:
    url = database_url_for("postgresql://wallet:s3cret@db.internal:5433/postgres", "ledger")
    assert url == "postgresql://wallet:s3cret@db.internal:5433/wallet_ledger"


def test_a_url_without_a_database_gets_one() -> None:
    assert database_url_for("postgres://127.0.0.1", "auth") == "postgres://127.0.0.1/wallet_auth"
    assert database_url_for("postgresql://127.0.0.1:5432/", "auth") == "postgresql://127.0.0.1:5432/wallet_auth"


def test_the_embedded_servers_socket_query_is_kept() -> None:
    server_url = "postgresql://embedded_postgres@/postgres?host=/work/.run/postgres&port=5432"
    url = database_url_for(server_url, "contacts")
    assert url == "postgresql://embedded_postgres@/wallet_contacts?host=/work/.run/postgres&port=5432"
    assert urlsplit(url).query == "host=/work/.run/postgres&port=5432"


def test_a_hostless_unix_socket_url_keeps_its_authority() -> None:
    # libpq's usual socket form. urlunsplit would turn it into postgresql:/wallet_risk?..., which pgbench rejects.
    url = database_url_for("postgresql:///postgres?host=/var/run/postgresql", "risk")
    assert url == "postgresql:///wallet_risk?host=/var/run/postgresql"


def test_percent_encoded_passwords_and_several_query_parameters_survive() -> None:
    server_url = "postgresql://app:p%40ss%2Fw%3Ard@127.0.0.1:6543/postgres?sslmode=disable&application_name=x"
    url = with_database(server_url, "test_0123abcd")
    parts = urlsplit(url)
    assert parts.password == "p%40ss%2Fw%3Ard"
    assert parts.port == 6543
    assert parts.path == "/test_0123abcd"
    assert parts.query == "sslmode=disable&application_name=x"


def test_with_database_replaces_a_deeper_path_too() -> None:
    assert with_database("postgresql://h/postgres", "b") == "postgresql://h/b"
    assert with_database("postgresql://h/a?x=1", "b") == "postgresql://h/b?x=1"


@pytest.mark.parametrize(
    "server_url", ["mysql://admin:hunter2hunter2@db/x", "redis://:hunter2hunter2@127.0.0.1:6379/0", "hunter2hunter2"]
)
def test_a_non_postgres_url_is_refused_without_echoing_it(server_url: str) -> None:
    with pytest.raises(DevstackError, match="DATABASE_URL must be a postgresql:// URL") as caught:
        with_database(server_url, "wallet_auth")
    assert "hunter2" not in str(caught.value)


async def test_bad_names_are_refused_before_connecting() -> None:
    # A server URL that cannot be reached: the names must be checked before any connection attempt.
    with pytest.raises(ValueError, match="not a usable database name"):
        await ensure_databases_async("postgresql://nobody@/postgres?host=/nonexistent", ["wallet_auth", "x; DROP"])


async def test_an_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    server_url = f"postgresql://nobody@/postgres?host={tmp_path}"  # no socket in an empty folder
    with pytest.raises(DevstackError, match=r"cannot connect to Postgres to create the service databases"):
        await ensure_databases_async(server_url, ["wallet_auth"])
