# impbench: two commands do all the set-up.
#   make demo   set up, then run the main job end to end on the embedded default dataset
#   make test   set up, then run the default test suite
# Both are idempotent: a second call skips the set-up that is already done.

PYTHON      ?= python3
VENV        ?= .venv
TORCH_SPEC  ?= torch==2.13.0
DEMO_DATASET ?= sim-1kgp
DEMO_IMPUTERS ?=
# The real 1000 Genomes card runs the array scheme (untyped variants at its scaffold sites).
DEMO_SCHEME ?= $(if $(filter 1kgp-chr20,$(DEMO_DATASET)),array,)
PYTEST_ARGS ?=

BIN   := $(VENV)/bin
STAMP := $(VENV)/.impbench-setup
PLUGINS := plugins/biunet plugins/hapmlp plugins/scda plugins/beagle plugins/minimac4
SETUP_INPUTS := pyproject.toml $(foreach p,$(PLUGINS),$(p)/pyproject.toml) examples/impbench-example/pyproject.toml

.PHONY: setup system-deps demo test test-slow clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(SETUP_INPUTS) | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]" $(foreach p,$(PLUGINS),-e $(p)) -e examples/impbench-example
	touch $@

system-deps:
	@bash scripts/system-deps.sh

setup: system-deps $(STAMP)

demo: setup
	bash scripts/demo.sh $(DEMO_DATASET) "$(DEMO_IMPUTERS)" "$(DEMO_SCHEME)"

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
