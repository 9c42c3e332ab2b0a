from pathlib import Path

import pytest

from bench.__main__ import main
from bench.registry import section_names


def test_list_prints_every_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == section_names()
    assert "baseline" in printed


def test_an_unknown_section_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--section", "nope"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: unknown bench section nope; choose all or one of: ")
    assert error.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
