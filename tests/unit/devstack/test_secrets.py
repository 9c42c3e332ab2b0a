import stat
from pathlib import Path

from devstack.secrets import DEV_SECRETS, secret_env


def test_secrets_are_generated_once_private_and_per_service(tmp_path: Path) -> None:
    first = secret_env("contacts", base={}, run_dir=tmp_path)
    second = secret_env("contacts", base={}, run_dir=tmp_path)
    assert first == second
    expected = {f"{name}_FILE" for name, owner in DEV_SECRETS.items() if owner == "contacts"}
    assert set(first) == expected
    for path in first.values():
        assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600
        assert len(Path(path).read_text().strip()) >= 43
    assert "CONTACTS_KEK_FILE" not in secret_env("ledger", base={}, run_dir=tmp_path)


def test_a_value_from_the_environment_wins(tmp_path: Path) -> None:
    env = secret_env("contacts", base={"CONTACTS_KEK_FILE": "/mounted/kek"}, run_dir=tmp_path)
    assert "CONTACTS_KEK_FILE" not in env
