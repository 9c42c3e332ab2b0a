from pathlib import Path

import pytest

from services.kit.config import ConfigError, Env, load_service_config

BASE_ENV = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1/wallet_ledger",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def test_defaults_follow_the_port_plan() -> None:
    config = load_service_config("ledger", BASE_ENV)
    assert (config.grpc_port, config.metrics_port) == (50052, 51052)
    assert config.auth_addr == "127.0.0.1:50051"


def test_port_zero_gives_a_free_metrics_port_too() -> None:
    config = load_service_config("risk", {**BASE_ENV, "GRPC_PORT": "0"})
    assert (config.grpc_port, config.metrics_port) == (0, 0)


def test_missing_database_url_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^DATABASE_URL is required but not set$"):
        load_service_config("auth", {"REDIS_URL": "redis://x"})


def test_malformed_port_names_variable_and_value() -> None:
    with pytest.raises(ConfigError, match=r"GRPC_PORT must be an integer, got 'abc'"):
        load_service_config("auth", {**BASE_ENV, "GRPC_PORT": "abc"})


def test_port_out_of_range() -> None:
    with pytest.raises(ConfigError, match=r"GRPC_PORT must be between 0 and 65535, got 70000"):
        load_service_config("auth", {**BASE_ENV, "GRPC_PORT": "70000"})


def test_wrong_url_scheme_does_not_echo_the_url() -> None:
    secret_url = "mysql://admin:hunter2hunter2@db/x"
    with pytest.raises(ConfigError) as caught:
        load_service_config("auth", {**BASE_ENV, "DATABASE_URL": secret_url})
    assert "hunter2" not in str(caught.value)
    assert "DATABASE_URL" in str(caught.value)


def test_secret_file_wins_and_is_stripped(tmp_path: Path) -> None:
    secret_file = tmp_path / "kek"
    secret_file.write_text("from-file\n")
    env = Env({"KEK": "inline", "KEK_FILE": str(secret_file)})
    assert env.secret("KEK") == "from-file"


def test_secret_missing_names_both_variants() -> None:
    with pytest.raises(ConfigError, match=r"KEK \(or KEK_FILE\) is required"):
        Env({}).secret("KEK")


def test_secret_file_unreadable_does_not_crash(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"KEK_FILE points to an unreadable file"):
        Env({"KEK_FILE": str(tmp_path / "missing")}).secret("KEK")


def test_empty_secret_file_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    with pytest.raises(ConfigError, match=r"KEK_FILE points to an empty file"):
        Env({"KEK_FILE": str(empty)}).secret("KEK")


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("0", False), ("YES", True), ("off", False)])
def test_flags(raw: str, expected: bool) -> None:
    assert Env({"X": raw}).flag("X", default=not expected) is expected


def test_bad_flag() -> None:
    with pytest.raises(ConfigError, match=r"X must be true or false, got 'maybe'"):
        Env({"X": "maybe"}).flag("X", default=False)


def test_blank_values_count_as_unset() -> None:
    assert Env({"X": "   "}).string("X", "default") == "default"


def test_so_reuseport_is_off_unless_asked_for() -> None:
    assert load_service_config("contacts", BASE_ENV).so_reuseport is False
    assert load_service_config("contacts", {**BASE_ENV, "GRPC_SO_REUSEPORT": "true"}).so_reuseport is True
