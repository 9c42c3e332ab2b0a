"""The sections of ``make bench``, by name. A section module calls :func:`register` at import; the harness runs
``all`` in registration order, or the selected ones with the sections they require (e.g. ``baseline``) first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.context import BenchContext
from bench.errors import BenchError
from bench.figures import Figure

ALL = "all"

SectionRun = Callable[[BenchContext], list[Figure]]


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    summary: str
    run: SectionRun
    # Sections whose figures this one reads (it divides by them): they run first, in the same run.
    requires: tuple[str, ...] = ()
    # Drives gRPC with h2load: skipped, with a message, where h2load cannot be installed.
    needs_h2load: bool = False


_SECTIONS: dict[str, Section] = {}


def register(section: Section) -> Section:
    if section.name in _SECTIONS or section.name == ALL:
        raise ValueError(f"bench section {section.name!r} is registered twice or reserved")
    _SECTIONS[section.name] = section
    return section


def section_names() -> list[str]:
    return list(_SECTIONS)


def plan(selection: str) -> list[Section]:
    """The sections to run for ``--section`` (``all``, one name or a comma-separated list), requirements first."""
    wanted = [name.strip() for name in selection.split(",") if name.strip()]
    if not wanted:
        raise BenchError(f"--section is empty; choose {ALL} or one of: {', '.join(_SECTIONS)}")
    if ALL in wanted:
        wanted = list(_SECTIONS)
    unknown = [name for name in wanted if name not in _SECTIONS]
    if unknown:
        raise BenchError(
            f"unknown bench section {', '.join(unknown)}; choose {ALL} or one of: {', '.join(_SECTIONS)}"
        )
    ordered: list[Section] = []
    for name in wanted:
        _add_with_requirements(_SECTIONS[name], ordered, chain=())
    return ordered


def _add_with_requirements(section: Section, ordered: list[Section], chain: tuple[str, ...]) -> None:
    if section.name in chain:
        raise ValueError(f"bench sections require each other in a cycle: {' -> '.join((*chain, section.name))}")
    if section in ordered:
        return
    for required in section.requires:
        _add_with_requirements(_SECTIONS[required], ordered, (*chain, section.name))
    ordered.append(section)
