# syntax=docker/dockerfile:1
# One image for the whole suite: the command picks the process (`python -m services.<svc>`, `python -m gateway`,
# `python -m services.<svc> migrate`). Build: `docker build -t wallet:dev .` (deploy/README.md).
#
# The base is pinned by digest (python:3.11-slim-bookworm, linux/amd64 + arm64 index). To move to a newer patch
# release: `docker buildx imagetools inspect python:3.11-slim-bookworm`, then replace the digest in both FROM lines.
# tests/unit/deploy/test_dockerfile_check.py enforces the rules that matter here (deploy/dockerfile_check.py).

# --- build: dependencies from the hashed lock, and the generated protobuf code ---------------------------------
FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91 AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src

# The lock holds runtime and dev packages together: install only what the services import (deploy/lock_subset.py),
# every one as a hash-checked binary wheel, so no compiler is needed even here.
COPY requirements.lock pyproject.toml ./
COPY deploy/__init__.py deploy/lock_subset.py deploy/
RUN python -m deploy.lock_subset requirements.lock pyproject.toml > /tmp/runtime.lock \
 && python -m deploy.lock_subset requirements.lock pyproject.toml --with mypy-protobuf > /tmp/codegen.lock \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: -r /tmp/runtime.lock \
 && python -m venv /opt/codegen \
 && /opt/codegen/bin/pip install --require-hashes --no-deps --only-binary=:all: -r /tmp/codegen.lock

# The same protoc invocation as the Makefile's `proto` target.
COPY protos protos
RUN PATH="/opt/codegen/bin:$PATH" \
    GOOGLEAPIS="$(/opt/codegen/bin/python -c 'import google.api.annotations_pb2 as m, os; print(os.path.dirname(os.path.dirname(os.path.dirname(m.__file__))))')" \
    GRPC_TOOLS_PROTO="$(/opt/codegen/bin/python -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')" \
 && mkdir wallet \
 && /opt/codegen/bin/python -m grpc_tools.protoc -I protos -I "$GOOGLEAPIS" -I "$GRPC_TOOLS_PROTO" \
        --python_out=. --grpc_python_out=. --mypy_out=quiet:. --mypy_grpc_out=quiet:. $(find protos -name '*.proto') \
 && find wallet -type d -exec touch {}/__init__.py \;

# --- runtime: the interpreter, the locked packages and our code; no compiler, no tests, no dev tools ----------
FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91 AS runtime

LABEL org.opencontainers.image.title="wallet" \
      org.opencontainers.image.description="Wallet platform: auth, ledger, contacts, risk and the gateway"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WALLET_RUN_DIR=/tmp/wallet

# A fixed numeric uid/gid, so Kubernetes can verify runAsNonRoot and the manifests can name the same ids.
RUN groupadd --system --gid 10001 wallet \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin wallet

WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/wallet wallet
COPY services services
COPY gateway gateway
COPY cli cli
# The gateway reads the .proto comments for its OpenAPI descriptions.
COPY protos protos
# Bytecode compiled at build time: the root filesystem is read-only at run time.
RUN python -m compileall -q /app

USER 10001:10001
EXPOSE 8080 50050 50051 50052 50053 50054
# No HEALTHCHECK: Kubernetes probes the gRPC health service and the gateway's /healthz and /readyz.
CMD ["python", "-m", "gateway"]
