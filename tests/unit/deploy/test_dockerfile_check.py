"""deploy/dockerfile_check.py: our Dockerfile and .dockerignore pass; each broken rule is caught."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from deploy.dockerfile_check import dockerfile_violations, dockerignore_violations, ignored, main, parse

REPO_ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
DOCKERIGNORE = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8")
DIGEST = "sha256:" + "0" * 64
GOOD = f"""\
FROM python:3.11-slim@{DIGEST} AS build
RUN pip install --require-hashes -r lock \\
 && echo done
FROM python:3.11-slim@{DIGEST}
COPY --from=build /opt/venv /opt/venv
COPY services services
USER 10001:10001
CMD ["python", "-m", "gateway"]
"""


def test_the_repository_dockerfile_and_dockerignore_pass() -> None:
    assert dockerfile_violations(DOCKERFILE) == []
    assert dockerignore_violations(DOCKERIGNORE) == []
    assert main([str(REPO_ROOT / "Dockerfile"), str(REPO_ROOT / ".dockerignore")]) == 0


def test_a_good_minimal_dockerfile_passes() -> None:
    assert dockerfile_violations(GOOD) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (f"FROM python:3.11-slim@{DIGEST}\n", "FROM python:3.11-slim\n", "must be pinned by @sha256 digest"),
        (f"python:3.11-slim@{DIGEST} AS", f"python:latest@{DIGEST} AS", "must not be latest"),
        ("USER 10001:10001\n", "", "has no USER"),
        ("USER 10001:10001\n", "USER wallet\n", "must be a numeric, non-zero uid"),
        ("USER 10001:10001\n", "USER 0\n", "must be a numeric, non-zero uid"),
        ("COPY services services\n", "RUN apt-get install -y build-essential\n", "must not install build tools"),
        ("COPY services services\n", "COPY . /app\n", "must not copy ."),
        ("COPY services services\n", "COPY tests tests\n", "must not copy tests"),
        ("COPY services services\n", "ADD https://example.com/x.tgz /x\n", "use COPY, not ADD"),
        ("COPY services services\n", "ARG NPM_TOKEN\n", "ARG NPM_TOKEN looks like a secret"),
        ("COPY services services\n", "ENV APP=1 SIGNING_KEY=abc\n", "ENV SIGNING_KEY looks like a secret"),
        ("COPY services services\n", "RUN curl https://u:p4ss@host/x\n", "a credential in the Dockerfile"),
        ("--require-hashes ", "", "pip install without --require-hashes"),
    ],
)
def test_each_rule_catches_its_break(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    problems = dockerfile_violations(GOOD.replace(old, new, 1))
    assert any(expected in problem for problem in problems), problems


def test_a_stage_alias_needs_no_digest_and_comments_inside_continuations_are_skipped() -> None:
    text = f"FROM base@{DIGEST} AS one\nFROM one AS two\nRUN a \\\n# note\n b\nUSER 1\n"
    assert dockerfile_violations(text) == []
    assert [instruction.arguments for instruction in parse(text)][2] == "a b"
    assert dockerfile_violations("# nothing\n") == ["no FROM instruction"]


def test_dockerignore_semantics() -> None:
    allow_list = "*\n!services/\n**/__pycache__\n"
    assert ignored(allow_list, ".run/secrets/key")
    assert not ignored(allow_list, "services/kit/config.py")
    assert ignored(allow_list, "services/kit/__pycache__/config.pyc")
    assert dockerignore_violations("") != []
    assert any("lets .run/secrets" in problem for problem in dockerignore_violations(".git\n"))
    assert any("keeps services/kit/config.py out" in problem for problem in dockerignore_violations("*\n"))


def _protoc_flags(text: str) -> list[str]:
    command = next(line for line in text.replace("\\\n", " ").splitlines() if "grpc_tools.protoc" in line)
    words = shlex.split(command.split("grpc_tools.protoc", 1)[1])
    includes = [words[index + 1] for index, word in enumerate(words) if word == "-I"]
    return [word for word in words if word.startswith("--")] + includes[:1]


def test_the_image_generates_code_with_the_makefiles_protoc_flags() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert _protoc_flags(DOCKERFILE) == _protoc_flags(makefile)
    assert _protoc_flags(DOCKERFILE)[-1] == "protos"
    assert "--python_out=." in _protoc_flags(DOCKERFILE)


def test_both_stages_use_the_same_pinned_base() -> None:
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE, flags=re.MULTILINE)
    assert len(bases) == 2
    assert bases[0] == bases[1]
