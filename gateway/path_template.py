"""``google.api.http`` path templates: parse once at start, match request paths against them.

Grammar (from ``google/api/http.proto``)::

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

A variable without ``= Segments`` matches one segment. ``**`` matches the rest of the path and may only come last.
Matching works on the raw (still percent-encoded) path split at ``/``, and each captured segment is decoded after the
split, so an encoded ``%2F`` inside a variable does not create a new segment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_LITERAL = re.compile(r"^[A-Za-z0-9._~!$&'()+,;=@-]+$")


class TemplateError(ValueError):
    """A path template in a proto annotation does not follow the grammar."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One template segment: a literal, ``*`` (one segment) or ``**`` (the rest)."""

    literal: str | None
    multi: bool = False
    # The field path this segment is captured into, when it is inside a variable.
    variable: str | None = None


@dataclass(frozen=True, slots=True)
class PathMatch:
    variables: dict[str, str]


@dataclass(frozen=True, slots=True)
class PathTemplate:
    source: str
    segments: tuple[Segment, ...]
    verb: str | None
    variables: tuple[str, ...]

    @property
    def literal_count(self) -> int:
        """How specific the template is: more literal segments win when two templates match."""
        return sum(1 for segment in self.segments if segment.literal is not None)

    def match(self, raw_path: str) -> PathMatch | None:
        """The variables of ``raw_path`` (percent-encoded, as sent) when it matches, else None."""
        path = raw_path
        if self.verb is not None:
            suffix = ":" + self.verb
            if not path.endswith(suffix):
                return None
            path = path[: -len(suffix)]
        if not path.startswith("/"):
            return None
        parts = path[1:].split("/")
        captured: dict[str, list[str]] = {}
        index = 0
        for segment in self.segments:
            if segment.multi:
                taken = parts[index:]
                index = len(parts)
            else:
                if index >= len(parts):
                    return None
                taken = [parts[index]]
                index += 1
                if segment.literal is not None and unquote(taken[0]) != segment.literal:
                    return None
                if taken[0] == "":
                    return None
            if segment.variable is not None:
                captured.setdefault(segment.variable, []).extend(unquote(part) for part in taken)
        if index != len(parts):
            return None
        return PathMatch({name: "/".join(values) for name, values in captured.items()})

    def openapi_path(self) -> str:
        """The template as an OpenAPI path: one ``{field.path}`` parameter per variable."""
        rendered: list[str] = []
        current: str | None = None
        for segment in self.segments:
            if segment.variable is not None:
                if segment.variable != current:
                    rendered.append("{" + segment.variable + "}")
                current = segment.variable
                continue
            current = None
            rendered.append(segment.literal if segment.literal is not None else ("**" if segment.multi else "*"))
        path = "/" + "/".join(rendered)
        return path + (":" + self.verb if self.verb else "")


def _split_verb(template: str) -> tuple[str, str | None]:
    # The verb follows the last ':' that is outside braces.
    depth = 0
    verb_at = -1
    for position, char in enumerate(template):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == ":" and depth == 0:
            verb_at = position
    if verb_at < 0:
        return template, None
    verb = template[verb_at + 1 :]
    if not _LITERAL.match(verb):
        raise TemplateError(f"bad verb {verb!r} in {template!r}")
    return template[:verb_at], verb


def _split_segments(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        if char == "/" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _plain_segment(text: str, variable: str | None, template: str) -> Segment:
    if text == "*":
        return Segment(literal=None, variable=variable)
    if text == "**":
        return Segment(literal=None, multi=True, variable=variable)
    if not _LITERAL.match(text):
        raise TemplateError(f"bad segment {text!r} in {template!r}")
    return Segment(literal=text, variable=variable)


def parse_template(template: str) -> PathTemplate:
    if not template.startswith("/"):
        raise TemplateError(f"path template must start with '/': {template!r}")
    path, verb = _split_verb(template)
    segments: list[Segment] = []
    variables: list[str] = []
    for part in _split_segments(path[1:]):
        if part.startswith("{"):
            if not part.endswith("}"):
                raise TemplateError(f"unclosed variable in {template!r}")
            name, _, pattern = part[1:-1].partition("=")
            if not _FIELD_PATH.match(name) or name in variables:
                raise TemplateError(f"bad or repeated variable {name!r} in {template!r}")
            variables.append(name)
            for sub in (pattern or "*").split("/"):
                if sub.startswith("{"):
                    raise TemplateError(f"nested variable in {template!r}")
                segments.append(_plain_segment(sub, name, template))
        else:
            segments.append(_plain_segment(part, None, template))
    if any(segment.multi for segment in segments[:-1]):
        raise TemplateError(f"'**' must be the last segment in {template!r}")
    return PathTemplate(source=template, segments=tuple(segments), verb=verb, variables=tuple(variables))
