"""HTTP verb + path → the public method and binding that serve it, with the path variables it captured."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.catalog import HttpBinding, PublicMethod


@dataclass(frozen=True, slots=True)
class RouteMatch:
    method: PublicMethod
    binding: HttpBinding
    path_variables: dict[str, str]


class Router:
    def __init__(self, methods: Sequence[PublicMethod]) -> None:
        routes: dict[str, list[tuple[PublicMethod, HttpBinding]]] = {}
        for method in methods:
            for binding in method.bindings:
                routes.setdefault(binding.verb, []).append((method, binding))
        # Most specific first: a custom verb beats a bare variable (`/v1/transfers/{id}:post` vs `{id}`), then more
        # literal segments beat fewer; the first match wins.
        for candidates in routes.values():
            candidates.sort(key=lambda pair: (pair[1].template.verb is None, -pair[1].template.literal_count))
        self._routes = routes

    def match(self, verb: str, raw_path: str) -> RouteMatch | None:
        for method, binding in self._routes.get(verb, ()):
            found = binding.template.match(raw_path)
            if found is not None:
                return RouteMatch(method, binding, found.variables)
        return None

    def allowed_verbs(self, raw_path: str) -> list[str]:
        """The verbs some route serves at this path (for 405 and CORS preflight)."""
        return sorted(
            verb
            for verb, candidates in self._routes.items()
            if any(binding.template.match(raw_path) is not None for _, binding in candidates)
        )
