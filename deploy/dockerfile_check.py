"""A small Dockerfile checker for the rules that matter to us (hadolint is not installable here):

- every base image is pinned by digest (``@sha256:`` and 64 hex digits), never ``latest``;
- the final stage runs as a numeric, non-zero USER (Kubernetes can only verify runAsNonRoot for a numeric uid);
- the final stage installs no compiler or build tool and copies no tests, benchmarks or whole build context;
- every ``pip install`` installs hash-checked requirements (``--require-hashes``);
- no secret in the image: no ARG/ENV with a secret-looking name, no credential in any instruction, no ADD (which
  fetches URLs and unpacks archives) — COPY only;
- ``.dockerignore`` keeps dev secrets (.run/), .git, .venv, tests and generated code out of the build context.

HEALTHCHECK is deliberately not required: Kubernetes probes the processes.

``python -m deploy.dockerfile_check Dockerfile .dockerignore`` prints the violations and exits 1 on any.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
SECRET_NAME = re.compile(r"(KEY|KEK|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIALS?)(_V\d+)?$")
CREDENTIAL = re.compile(r"://[^/\s:@]+:[^/\s@]+@|-----BEGIN ")
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cmake|cargo|rustc|gfortran)\b")
FORBIDDEN_SOURCES = frozenset({".", "./", "tests", "tests/", "bench", "bench/", ".run", ".run/"})
# Paths that must stay out of the build context, and a few that must reach it.
IGNORED_PATHS = (".run/secrets/auth_signing_key", ".git/config", ".venv/bin/python", "tests/unit/x.py", "wallet/x.py")
KEPT_PATHS = ("requirements.lock", "services/kit/config.py", "gateway/app.py", "protos/wallet/common/v1/money.proto")


@dataclass(frozen=True, slots=True)
class Instruction:
    line: int
    keyword: str
    arguments: str


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and blank lines dropped."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        pending.append(stripped.removesuffix("\\").strip())
        if not stripped.endswith("\\"):
            keyword, _, arguments = " ".join(pending).partition(" ")
            instructions.append(Instruction(start, keyword.upper(), arguments.strip()))
            pending = []
    return instructions


def stages(instructions: Sequence[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def _base_violations(instructions: Sequence[Instruction]) -> Iterator[str]:
    aliases: set[str] = set()
    for instruction in instructions:
        if instruction.keyword != "FROM":
            continue
        words = [word for word in instruction.arguments.split() if not word.startswith("--")]
        image = words[0]
        if image not in aliases:
            if not DIGEST.search(image):
                yield f"line {instruction.line}: base image {image} must be pinned by @sha256 digest"
            if image.split("@")[0].endswith(":latest"):
                yield f"line {instruction.line}: base image {image} must not be latest"
        if len(words) >= 3 and words[1].upper() == "AS":
            aliases.add(words[2])


def _final_stage_violations(final: Sequence[Instruction]) -> Iterator[str]:
    users = [instruction for instruction in final if instruction.keyword == "USER"]
    if not users:
        yield "the final stage has no USER: it would run as root"
    else:
        user = users[-1].arguments.split(":")[0]
        if not user.isdigit() or int(user) == 0:
            yield f"line {users[-1].line}: USER {users[-1].arguments} must be a numeric, non-zero uid"
    for instruction in final:
        if instruction.keyword == "RUN" and BUILD_TOOLS.search(instruction.arguments):
            yield f"line {instruction.line}: the final stage must not install build tools"
        if instruction.keyword == "COPY" and "--from=" not in instruction.arguments:
            sources = instruction.arguments.split()[:-1]
            for source in sources:
                if source in FORBIDDEN_SOURCES:
                    yield f"line {instruction.line}: the final stage must not copy {source}"


def _secret_violations(instructions: Sequence[Instruction]) -> Iterator[str]:
    for instruction in instructions:
        if instruction.keyword == "ADD":
            yield f"line {instruction.line}: use COPY, not ADD"
        if instruction.keyword in ("ARG", "ENV"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", instruction.arguments) or [instruction.arguments]
            for name in names:
                if SECRET_NAME.search(name.upper().split("=")[0]):
                    yield f"line {instruction.line}: {instruction.keyword} {name} looks like a secret baked in"
        if CREDENTIAL.search(instruction.arguments):
            yield f"line {instruction.line}: a credential in the Dockerfile"
        if instruction.keyword == "RUN" and "pip install" in instruction.arguments:
            for command in instruction.arguments.split("&&"):
                if "pip install" in command and "--require-hashes" not in command:
                    yield f"line {instruction.line}: pip install without --require-hashes"


def dockerfile_violations(text: str) -> list[str]:
    instructions = parse(text)
    all_stages = stages(instructions)
    if not all_stages:
        return ["no FROM instruction"]
    return [
        *_base_violations(instructions),
        *_final_stage_violations(all_stages[-1]),
        *_secret_violations(instructions),
    ]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts) + "$")


def ignored(dockerignore: str, path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories decides."""
    candidates = [path] + ["/".join(path.split("/")[:depth]) for depth in range(1, path.count("/") + 1)]
    result = False
    for raw in dockerignore.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = _pattern_regex(line.removeprefix("!").strip("/"))
        if any(pattern.match(candidate) for candidate in candidates):
            result = not negated
    return result


def dockerignore_violations(text: str) -> list[str]:
    problems = [
        f".dockerignore lets {path} into the build context" for path in IGNORED_PATHS if not ignored(text, path)
    ]
    problems += [
        f".dockerignore keeps {path} out, but the image needs it" for path in KEPT_PATHS if ignored(text, path)
    ]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    dockerfile, dockerignore = (Path(arg) for arg in (args or ["Dockerfile", ".dockerignore"]))
    problems = [
        *dockerfile_violations(dockerfile.read_text(encoding="utf-8")),
        *dockerignore_violations(dockerignore.read_text(encoding="utf-8")),
    ]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
