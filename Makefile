# Two commands for a newcomer: `make run` and `make test` (see README.md).
# Both create .venv on first use; later calls reuse it.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test test-all lint install bench bench-peers recipe clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test,sweep,tensorboard,stream]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# Pretrain on the embedded digits, evaluate, print where the report is.
run: $(STAMP)
	$(VENV)/bin/simclr-pretrain $(ARGS)

# The default suite (what CI runs): everything but the tests marked slow.
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

# The slow tests too (multi-process DDP, signals, README examples, ~15 min more here).
test-all: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check simclr tests benchmarks
	$(VENV)/bin/ruff format --check simclr tests benchmarks
	$(VENV)/bin/mypy

# Our benchmarks only (CPU, about 15 minutes here); results in benchmarks/results/.
bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# Peer toolkits (lightning-bolts 0.7.0, lightly) each in a venv of its own, then the
# side-by-side benchmarks.
bench-peers: $(STAMP)
	bash benchmarks/peers/install.sh
	$(PY) benchmarks/run_all.py --peers

# The SimCLRv2 recipe table (README, "Semi-supervised") from a pretraining run:
# make recipe RUN=outputs/<date>/<time> OUT=recipe [ARGS="--seeds 3"] (~1 hour on 2 CPU cores).
recipe: $(STAMP)
	$(PY) -m simclr.jobs.recipe run $(OUT) --checkpoint $(RUN) $(ARGS)

clean:
	rm -rf outputs multirun lightning_logs .pytest_cache .mypy_cache .ruff_cache
