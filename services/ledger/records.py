"""``evolve``: ``dataclasses.replace`` for the ledger's hot path (the commit of a group or batch copies each touched
account and each new transfer with a few fields changed).

``dataclasses.replace`` walks the fields, builds keyword arguments and runs the frozen ``__init__``; a function
generated once per class that copies the slots directly costs about half. It only serves frozen, slotted dataclasses
whose fields are all plain ``__init__`` parameters and that have no ``__post_init__`` (checked when the function is
made), so the copy is exactly what ``replace`` would build.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R")

_Copier = Callable[[Any, dict[str, Any]], Any]
_copiers: dict[type, tuple[_Copier, frozenset[str]]] = {}


def evolve(record: R, **changes: Any) -> R:
    """A copy of ``record`` with ``changes`` applied, like ``dataclasses.replace(record, **changes)``."""
    cls = type(record)
    made = _copiers.get(cls)
    if made is None:
        made = _copiers[cls] = _make_copier(cls)
    copier, names = made
    assert names.issuperset(changes), f"{cls.__name__} has no fields {sorted(changes.keys() - names)}"
    result: R = copier(record, changes)
    return result


def _make_copier(cls: type) -> tuple[_Copier, frozenset[str]]:
    assert dataclasses.is_dataclass(cls), cls
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen, f"{cls.__name__}: only frozen dataclasses"
    assert "__slots__" in cls.__dict__, f"{cls.__name__}: only slotted dataclasses"
    assert not hasattr(cls, "__post_init__"), f"{cls.__name__}: __post_init__ would be skipped"
    fields = dataclasses.fields(cls)
    assert all(f.init for f in fields), f"{cls.__name__}: every field must be an __init__ parameter"
    names = [f.name for f in fields]
    assert set(names) == set(cls.__dict__["__slots__"]), f"{cls.__name__}: fields and slots differ"
    lines = ["def copy(record, changes):", "    new = new_instance(cls)"]
    lines += [
        f"    set_attribute(new, {name!r}, changes[{name!r}] if {name!r} in changes else record.{name})"
        for name in names
    ]
    lines.append("    return new")
    namespace: dict[str, Any] = {"new_instance": object.__new__, "set_attribute": object.__setattr__, "cls": cls}
    exec("\n".join(lines), namespace)  # noqa: S102 -- the source is built from the class's own field names
    copier: _Copier = namespace["copy"]
    return copier, frozenset(names)
