from pathlib import Path

import pytest

from devstack.errors import DevstackError
from devstack.settings import load_settings
from devstack.topology import PORT_OFFSET_MAX


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings({}, tmp_path)
    assert settings.repo_dir == tmp_path
    assert settings.run_dir == (tmp_path / ".run").resolve()
    assert settings.logs_dir == settings.run_dir / "logs"
    assert settings.port_offset == 0
    assert settings.database_url is None
    assert settings.redis_url is None


def test_a_relative_run_dir_is_under_the_checkout_not_the_cwd(tmp_path: Path) -> None:
    settings = load_settings({"WALLET_RUN_DIR": "state/../run-2"}, tmp_path)
    assert settings.run_dir == (tmp_path / "run-2").resolve()
    assert settings.run_dir.is_absolute()


def test_an_absolute_run_dir_is_kept(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    settings = load_settings({"WALLET_RUN_DIR": str(elsewhere)}, tmp_path / "repo")
    assert settings.run_dir == elsewhere.resolve()


def test_an_empty_run_dir_means_the_default(tmp_path: Path) -> None:
    assert load_settings({"WALLET_RUN_DIR": ""}, tmp_path).run_dir == (tmp_path / ".run").resolve()


def test_urls_are_passed_through_and_empty_ones_mean_embedded(tmp_path: Path) -> None:
    given = load_settings(
        {"DATABASE_URL": "postgresql://u@127.0.0.1/postgres", "REDIS_URL": "redis://127.0.0.1:6379/0"}, tmp_path
    )
    assert given.database_url == "postgresql://u@127.0.0.1/postgres"
    assert given.redis_url == "redis://127.0.0.1:6379/0"
    empty = load_settings({"DATABASE_URL": "", "REDIS_URL": ""}, tmp_path)
    assert (empty.database_url, empty.redis_url) == (None, None)


@pytest.mark.parametrize(
    ("raw", "offset"),
    [("100", 100), (" 7 ", 7), ("0", 0), ("", 0), ("  ", 0), (str(PORT_OFFSET_MAX), PORT_OFFSET_MAX)],
)
def test_good_port_offsets(tmp_path: Path, raw: str, offset: int) -> None:
    assert load_settings({"WALLET_PORT_OFFSET": raw}, tmp_path).port_offset == offset


@pytest.mark.parametrize("raw", ["abc", "1.5", "1e3", "0x10", "100 200"])
def test_a_port_offset_that_is_not_an_integer_names_the_variable_and_value(tmp_path: Path, raw: str) -> None:
    with pytest.raises(DevstackError) as caught:
        load_settings({"WALLET_PORT_OFFSET": raw}, tmp_path)
    assert str(caught.value) == f"WALLET_PORT_OFFSET must be an integer, got {raw!r}"


@pytest.mark.parametrize("raw", ["-1", str(PORT_OFFSET_MAX + 1), "70000"])
def test_a_port_offset_out_of_range_names_the_range(tmp_path: Path, raw: str) -> None:
    with pytest.raises(DevstackError) as caught:
        load_settings({"WALLET_PORT_OFFSET": raw}, tmp_path)
    assert str(caught.value) == f"WALLET_PORT_OFFSET must be between 0 and {PORT_OFFSET_MAX}, got {int(raw)}"
