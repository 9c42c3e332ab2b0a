# The two commands that matter: `make run` and `make test`. Everything creates the virtualenv from the pinned lock
# file by itself and regenerates the protobuf code when a .proto changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-from-lock
PROTOS := $(shell find protos -name '*.proto')
GEN_STAMP := wallet/.generated
GOOGLEAPIS = $$($(PY) -c 'import google.api.annotations_pb2 as m, os; print(os.path.dirname(os.path.dirname(os.path.dirname(m.__file__))))')
GRPC_TOOLS_PROTO = $$($(PY) -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')
BENCH ?= all

.PHONY: help venv proto run demo test test-unit test-integration test-e2e soak k8s-validate lint fmt bench clean buf-lint

help:
	@echo "make run    start the whole suite (embedded Postgres/Redis unless DATABASE_URL/REDIS_URL are set)"
	@echo "make demo   a narrated walk-through against the suite make run started (or one it starts itself)"
	@echo "make test   run the whole test suite against real Postgres and Redis"
	@echo "make lint   ruff, mypy --strict, buf lint"
	@echo "make bench  benchmarks -> bench/results/latest.json (BENCH=<section> for one)"
	@echo "make soak   the reliability tests at soak strength (longer, still bounded)"

# The virtualenv is (re)built whenever the lock file is newer than the last install.
$(STAMP): requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	@touch $(STAMP)

venv: $(STAMP)

$(GEN_STAMP): $(STAMP) $(PROTOS)
	@rm -rf wallet && mkdir -p wallet
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m grpc_tools.protoc -I protos -I $(GOOGLEAPIS) -I $(GRPC_TOOLS_PROTO) \
	    --python_out=. --grpc_python_out=. --mypy_out=quiet:. --mypy_grpc_out=quiet:. $(PROTOS)
	@find wallet -type d -exec touch {}/__init__.py \;
	@touch $(GEN_STAMP)

proto: $(GEN_STAMP)

run: $(GEN_STAMP)
	$(PY) -m devstack run

# Against the suite `make run` started (its .run/devstack.json); when none runs, starts one for the demo's duration.
demo: $(GEN_STAMP)
	$(PY) -m demo

test: $(GEN_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(GEN_STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: $(GEN_STAMP)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: $(GEN_STAMP)
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

# The reliability tests at soak strength (bounded: about 10 minutes here): more crashes, fuzz cases and steps.
SOAK_TESTS := tests/integration/reliability tests/integration/ledger/test_concurrency_stateful.py \
	tests/integration/gateway/test_openapi_fuzz.py \
	tests/integration/auth/test_hostile_input.py tests/integration/ledger/test_hostile_input.py \
	tests/integration/contacts/test_hostile_input.py tests/integration/risk/test_hostile_input.py
soak: $(GEN_STAMP)
	WALLET_SOAK=1 $(PY) -m pytest $(SOAK_TESTS) $(PYTEST_ARGS)

# Render the kustomize overlays and validate them offline (schemas, security policy, the Dockerfile rules); also
# part of `make test`.
k8s-validate: $(STAMP)
	$(PY) -m pytest tests/unit/deploy $(PYTEST_ARGS)

lint: $(GEN_STAMP) buf-lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# buf runs offline: the google/api protos are copied from the installed googleapis-common-protos package into an
# ignored second module (.build/buf-deps) at lint time, never committed.
buf-lint: $(STAMP)
	@rm -rf .build/buf-deps && mkdir -p .build/buf-deps/google
	@cp -r $(GOOGLEAPIS)/google/api .build/buf-deps/google/api
	@cp -r $(GOOGLEAPIS)/google/rpc .build/buf-deps/google/rpc
	npx --yes @bufbuild/buf@1.75.0 lint

bench: $(GEN_STAMP)
	$(PY) -m bench --section $(BENCH)

clean:
	rm -rf wallet .build .mypy_cache .ruff_cache .pytest_cache
