# The two set-up commands of the README: `make quickstart` and `make test`.
# Both create the local virtual environment .venv from pyproject.toml first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= out/quickstart
SEED ?= 1

$(BIN)/sagachain: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

.PHONY: quickstart test clean
quickstart: $(BIN)/sagachain
	$(BIN)/sagachain run scenarios/quickstart.py --seed $(SEED) --out $(OUT)
	$(BIN)/sagachain audit $(OUT)/chain.sgc --enclave-state $(OUT)/enclaves/acme.sealed --enclave-key $(OUT)/enclaves/acme.key

test: $(BIN)/sagachain
	$(BIN)/python -m pytest -n 2 --durations=10

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
