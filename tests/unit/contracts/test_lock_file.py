"""Supply chain: every dependency is pinned to one version with hashes, and the lock covers pyproject.toml.

A vulnerability audit (pip-audit) needs PyPI's advisory API, which this machine's package mirror does not serve;
this offline check is what CI can enforce here (see docs/reliability.md).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)")


def _locked() -> dict[str, tuple[str, int]]:
    """name -> (version, number of sha256 hashes)."""
    locked: dict[str, tuple[str, int]] = {}
    current: str | None = None
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("--hash=sha256:"):
            assert current is not None
            version, hashes = locked[current]
            locked[current] = (version, hashes + 1)
            continue
        if not stripped or stripped.startswith(("#", "--")):
            continue
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            assert current not in locked, f"{current} is pinned twice"
            locked[current] = (match.group(2), 0)
        else:
            raise AssertionError(f"unpinned or unexpected line in requirements.lock: {line!r}")
    return locked


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(text) for text in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        declared += [Requirement(text) for text in extra]
    return declared


def test_every_locked_package_is_pinned_with_hashes() -> None:
    locked = _locked()
    assert len(locked) > 50
    unhashed = sorted(name for name, (_, hashes) in locked.items() if hashes == 0)
    assert unhashed == []


def test_the_lock_satisfies_every_declared_dependency() -> None:
    locked = _locked()
    problems = []
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        if name not in locked:
            problems.append(f"{requirement} is not in the lock")
        elif not requirement.specifier.contains(locked[name][0], prereleases=True):
            problems.append(f"{requirement} is locked at {locked[name][0]}")
    assert problems == [], "regenerate requirements.lock with pip-compile (docs/decisions.md)"
