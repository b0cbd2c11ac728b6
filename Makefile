# The README's commands. `make test` and `make demo` set themselves up on a fresh clone.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck unit demo bench bench-full fuzz container-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	bash tests/system/install.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy sync_service ews_client
	$(BIN)/pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy sync_service ews_client

demo: $(STAMP)
	env -u SYNC_DATABASE_URL $(BIN)/python -m deploy.demo $(DEMO_ARGS)

# Both include the far Exchange cases (150 ms + 2 ms per item, service beside exchangelib);
# BENCH_ARGS passes options on, e.g. BENCH_ARGS="--latency 150,2" for the initial sync's latency.
bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python -m benchmarks.run --profile quick $(BENCH_ARGS)

bench-full: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python -m benchmarks.run --profile full --py-spy $(BENCH_ARGS)

# The schemathesis test of `make test` with many more examples per operation and a new seed.
fuzz: $(STAMP)
	SCHEMATHESIS_MAX_EXAMPLES=$${SCHEMATHESIS_MAX_EXAMPLES:-500} SCHEMATHESIS_SEED=$${SCHEMATHESIS_SEED:-$$(date +%s)} \
		$(BIN)/pytest -q -p no:cacheprovider tests/operator/test_schemathesis.py

# The Containerfile built and run by a private Docker engine (tests/container; minutes, as
# root, so not part of `make test`): Debian's docker.io and debootstrap installed if missing.
container-test: $(STAMP)
	bash tests/container/install.sh
	$(BIN)/pytest -q -p no:cacheprovider tests/container

clean:
	rm -rf $(VENV) .sync-data .mypy_cache .ruff_cache
