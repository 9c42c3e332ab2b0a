"""The toolkit every wallet service is built from.

Mechanics only, no business vocabulary: configuration, logging with redaction, telemetry, errors, paging, token
verification, authorization from method options, interceptors, Postgres and migrations, Redis, and the gRPC server
bootstrap. One concept per module; import from the module (``from services.kit.errors import NotFound``).
"""
