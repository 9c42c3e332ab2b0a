"""The public methods of every wallet service, read from the generated descriptors at start.

Every ``wallet.<svc>.v1`` module is imported and its services walked; a method is public when its
``(wallet.common.v1.policy)`` says ``public: true``. Its ``google.api.http`` rule (and ``additional_bindings``)
gives its HTTP bindings; a public method without one is reachable over the gRPC pass-through only. Nothing here is
written by hand: adding an annotated RPC to a proto adds the route.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped]
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

import wallet
from gateway.path_template import PathTemplate, parse_template
from services.kit.policy import MethodPolicy, policy_for

HTTP_VERBS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True, slots=True)
class HttpBinding:
    verb: str  # upper case: GET, POST, ...
    template: PathTemplate
    # "" (no body: the rest comes from the query), "*" (the whole request) or one top-level field name.
    body: str
    # "" (the whole response) or one top-level field name of the response.
    response_body: str


@dataclass(frozen=True, slots=True)
class PublicMethod:
    full_method: str  # /wallet.ledger.v1.LedgerService/GetAccount
    owner: str  # the service that serves it: ledger
    descriptor: MethodDescriptor
    policy: MethodPolicy
    bindings: tuple[HttpBinding, ...]
    request_class: type[Message]
    response_class: type[Message]

    @property
    def name(self) -> str:
        return f"{self.descriptor.containing_service.name}.{self.descriptor.name}"


class CatalogError(ValueError):
    """A public method's annotation cannot be served (bad template, unknown body field)."""


def _wallet_modules() -> Iterator[Any]:
    for info in pkgutil.walk_packages(wallet.__path__, prefix="wallet."):
        if info.name.endswith("_pb2"):
            yield importlib.import_module(info.name)


def wallet_services() -> list[ServiceDescriptor]:
    """Every service declared in the generated ``wallet.*.v1`` modules."""
    found: dict[str, ServiceDescriptor] = {}
    for module in _wallet_modules():
        for service in module.DESCRIPTOR.services_by_name.values():
            found[service.full_name] = service
    return [found[name] for name in sorted(found)]


def owner_of(service: ServiceDescriptor) -> str:
    """``wallet.ledger.v1.LedgerService`` → ``ledger``."""
    return service.full_name.split(".")[1]


def _rule_bindings(rule: http_pb2.HttpRule, method: MethodDescriptor) -> list[HttpBinding]:
    pattern = rule.WhichOneof("pattern")
    bindings: list[HttpBinding] = []
    if pattern in HTTP_VERBS:
        verb, path = pattern.upper(), getattr(rule, pattern)
    elif pattern == "custom":
        verb, path = rule.custom.kind.upper(), rule.custom.path
    else:
        raise CatalogError(f"{method.full_name}: http rule without a pattern")
    _check_field(method.input_type, rule.body, method, "body")
    _check_field(method.output_type, rule.response_body, method, "response_body")
    try:
        template = parse_template(path)
    except ValueError as err:
        raise CatalogError(f"{method.full_name}: {err}") from None
    for variable in template.variables:
        _check_path(method, variable)
    bindings.append(HttpBinding(verb, template, rule.body, rule.response_body))
    for additional in rule.additional_bindings:
        bindings.extend(_rule_bindings(additional, method))
    return bindings


def _check_field(message: Any, name: str, method: MethodDescriptor, what: str) -> None:
    if name not in ("", "*") and name not in message.fields_by_name:
        raise CatalogError(f"{method.full_name}: {what} names unknown field {name!r}")


def _check_path(method: MethodDescriptor, field_path: str) -> None:
    message = method.input_type
    parts = field_path.split(".")
    for depth, part in enumerate(parts):
        field = message.fields_by_name.get(part)
        if field is None:
            raise CatalogError(f"{method.full_name}: path variable {field_path!r} names no field")
        if depth < len(parts) - 1:
            if field.message_type is None:
                raise CatalogError(f"{method.full_name}: {field_path!r} goes through a non-message field")
            message = field.message_type


@cache
def public_methods() -> tuple[PublicMethod, ...]:
    """Every public wallet method, in a stable order (service, then declaration order)."""
    methods: list[PublicMethod] = []
    for service in wallet_services():
        for method in service.methods:
            full_method = f"/{service.full_name}/{method.name}"
            policy = policy_for(full_method)
            if policy is None or not policy.public:
                continue
            if method.client_streaming or method.server_streaming:
                raise CatalogError(f"{full_method}: streaming methods are not supported by the gateway")
            options = method.GetOptions()
            bindings: list[HttpBinding] = []
            if options.HasExtension(annotations_pb2.http):
                bindings = _rule_bindings(options.Extensions[annotations_pb2.http], method)
            methods.append(
                PublicMethod(
                    full_method=full_method,
                    owner=owner_of(service),
                    descriptor=method,
                    policy=policy,
                    bindings=tuple(bindings),
                    request_class=message_factory.GetMessageClass(method.input_type),
                    response_class=message_factory.GetMessageClass(method.output_type),
                )
            )
    return tuple(methods)


def public_method_index() -> dict[str, PublicMethod]:
    return {method.full_method: method for method in public_methods()}
