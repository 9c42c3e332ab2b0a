import pytest

from devstack.__main__ import main


def test_a_malformed_setting_stops_the_runner_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WALLET_PORT_OFFSET", "lots")
    assert main(["run"]) == 1
    assert capsys.readouterr().err == "error: WALLET_PORT_OFFSET must be an integer, got 'lots'\n"


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert "run" in capsys.readouterr().err
