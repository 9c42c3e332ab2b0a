import pytest

import bench.sections  # noqa: F401  (registers the real sections)
from bench import registry
from bench.context import BenchContext
from bench.errors import BenchError
from bench.figures import Figure
from bench.registry import ALL, Section, plan, register, section_names


def _no_figures(context: BenchContext) -> list[Figure]:
    return []


def _section(name: str, *requires: str) -> Section:
    return Section(name=name, summary=f"{name} section", run=_no_figures, requires=requires)


@pytest.fixture
def sections(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry of its own, in this registration order: baseline, ledger (needs baseline), gateway (needs ledger),
    contacts."""
    monkeypatch.setattr(registry, "_SECTIONS", {})
    register(_section("baseline"))
    register(_section("ledger", "baseline"))
    register(_section("gateway", "ledger"))
    register(_section("contacts"))


def _names(selection: str) -> list[str]:
    return [section.name for section in plan(selection)]


def test_the_real_registry_plans_all_sections_requirements_first() -> None:
    planned = plan(ALL)
    assert [section.name for section in planned] == section_names()
    assert "baseline" in section_names()
    for position, section in enumerate(planned):
        earlier = {previous.name for previous in planned[:position]}
        assert set(section.requires) <= earlier, section.name


@pytest.mark.usefixtures("sections")
def test_all_is_every_section_in_registration_order() -> None:
    assert _names(ALL) == ["baseline", "ledger", "gateway", "contacts"]
    assert _names(f"contacts,{ALL}") == ["baseline", "ledger", "gateway", "contacts"]


@pytest.mark.usefixtures("sections")
def test_one_section_brings_what_it_requires_first() -> None:
    assert _names("ledger") == ["baseline", "ledger"]
    assert _names("gateway") == ["baseline", "ledger", "gateway"]
    assert _names("contacts") == ["contacts"]


@pytest.mark.usefixtures("sections")
def test_a_list_is_deduplicated_and_keeps_requirements_first() -> None:
    assert _names("gateway,baseline,ledger") == ["baseline", "ledger", "gateway"]
    assert _names(" contacts , ledger ,,contacts") == ["contacts", "baseline", "ledger"]


@pytest.mark.usefixtures("sections")
def test_an_unknown_section_is_named_with_the_choices() -> None:
    with pytest.raises(BenchError) as caught:
        plan("ledger,ledgr,nope")
    assert str(caught.value) == (
        "unknown bench section ledgr, nope; choose all or one of: baseline, ledger, gateway, contacts"
    )


@pytest.mark.usefixtures("sections")
@pytest.mark.parametrize("selection", ["", " ", ",", " , "])
def test_an_empty_selection_is_refused(selection: str) -> None:
    with pytest.raises(BenchError, match=r"^--section is empty; choose all or one of: baseline, ledger"):
        plan(selection)


@pytest.mark.usefixtures("sections")
def test_a_name_is_registered_once_and_all_is_reserved() -> None:
    with pytest.raises(ValueError, match="'ledger' is registered twice or reserved"):
        register(_section("ledger"))
    with pytest.raises(ValueError, match="'all' is registered twice or reserved"):
        register(_section(ALL))
    assert section_names() == ["baseline", "ledger", "gateway", "contacts"]


def test_a_requirement_cycle_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_SECTIONS", {})
    register(_section("a", "b"))
    register(_section("b", "c"))
    register(_section("c", "a"))
    with pytest.raises(ValueError, match=r"in a cycle: a -> b -> c -> a"):
        plan("a")


def test_a_shared_requirement_runs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_SECTIONS", {})
    register(_section("baseline"))
    register(_section("ledger", "baseline"))
    register(_section("risk", "baseline"))
    register(_section("report", "ledger", "risk"))
    assert _names("report") == ["baseline", "ledger", "risk", "report"]
