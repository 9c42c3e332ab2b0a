"""The comments of the ``.proto`` files, by element full name, for OpenAPI descriptions.

Generated ``_pb2`` modules carry descriptors without source info, so the comments are read once by compiling
``protos/`` with ``grpc_tools.protoc --include_source_info`` into a temporary descriptor set (about a second, done
once, on the first request for ``/openapi.json``). Where the protos are not shipped, descriptions are left out and
a warning says so; the routes themselves never depend on this.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

from google.protobuf import descriptor_pb2

log = logging.getLogger(__name__)

PROTOS_DIR = Path(__file__).resolve().parent.parent / "protos"

# Field numbers of FileDescriptorProto / DescriptorProto / ServiceDescriptorProto / EnumDescriptorProto, the path
# components of SourceCodeInfo locations.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_SERVICE_METHOD = 2
_ENUM_VALUE = 2


def _include_dirs() -> list[str]:
    import google.api.annotations_pb2 as annotations  # type: ignore[import-untyped]
    import grpc_tools  # type: ignore[import-untyped]

    googleapis = Path(annotations.__file__).resolve().parent.parent.parent
    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    return [str(PROTOS_DIR), str(googleapis), str(well_known)]


def _compile(protos_dir: Path) -> descriptor_pb2.FileDescriptorSet:
    from grpc_tools import protoc

    files = sorted(str(path.relative_to(protos_dir)) for path in protos_dir.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "descriptors.pb"
        args = ["protoc", *(f"-I{d}" for d in _include_dirs()), "--include_source_info"]
        if protoc.main([*args, f"--descriptor_set_out={out}", *files]) != 0:
            raise RuntimeError("protoc failed on protos/")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _clean(comment: str) -> str:
    return "\n".join(line.strip() for line in comment.strip().splitlines()).strip()


def _walk_message(
    message: descriptor_pb2.DescriptorProto, name: str, path: tuple[int, ...], out: dict[tuple[int, ...], str]
) -> None:
    out[path] = name
    for index, field in enumerate(message.field):
        out[(*path, _MESSAGE_FIELD, index)] = f"{name}.{field.name}"
    for index, nested in enumerate(message.nested_type):
        _walk_message(nested, f"{name}.{nested.name}", (*path, _MESSAGE_NESTED, index), out)
    for index, enum in enumerate(message.enum_type):
        _walk_enum(enum, f"{name}.{enum.name}", (*path, _MESSAGE_ENUM, index), out)


def _walk_enum(
    enum: descriptor_pb2.EnumDescriptorProto, name: str, path: tuple[int, ...], out: dict[tuple[int, ...], str]
) -> None:
    out[path] = name
    scope = name.rsplit(".", 1)[0]
    for index, value in enumerate(enum.value):
        out[(*path, _ENUM_VALUE, index)] = f"{scope}.{value.name}"


def comments_of(files: Sequence[descriptor_pb2.FileDescriptorProto]) -> dict[str, str]:
    comments: dict[str, str] = {}
    for file in files:
        names: dict[tuple[int, ...], str] = {}
        prefix = file.package
        for index, message in enumerate(file.message_type):
            _walk_message(message, f"{prefix}.{message.name}", (_FILE_MESSAGE, index), names)
        for index, enum in enumerate(file.enum_type):
            _walk_enum(enum, f"{prefix}.{enum.name}", (_FILE_ENUM, index), names)
        for index, service in enumerate(file.service):
            names[(_FILE_SERVICE, index)] = f"{prefix}.{service.name}"
            for method_index, method in enumerate(service.method):
                names[(_FILE_SERVICE, index, _SERVICE_METHOD, method_index)] = (
                    f"{prefix}.{service.name}.{method.name}"
                )
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            if name is not None and location.leading_comments.strip():
                comments[name] = _clean(location.leading_comments)
    return comments


def load_comments(protos_dir: Path = PROTOS_DIR) -> dict[str, str]:
    if not protos_dir.is_dir():
        log.warning(
            "protos/ not found: OpenAPI descriptions are left out", extra={"fields": {"dir": str(protos_dir)}}
        )
        return {}
    return comments_of(_compile(protos_dir).file)
