# ptde — common jobs. `make demo` runs the default experiment, `make test` the test suite;
# both install what they need first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is pinned through a constraints file on every pip call (a loose pin pulls CUDA wheels)
PIP_INSTALL := $(PIP) install --disable-pip-version-check -c constraints.txt
EXTRAS ?= smax,grf,ltr,report,cluster,dev
ARGS ?=
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: install grf demo test test-all lint train bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP_INSTALL) -q --upgrade pip wheel
	$(PIP_INSTALL) -q torch==2.13.0
	$(PIP_INSTALL) -q -e ".[$(EXTRAS)]"
	@if [[ ",$(EXTRAS)," == *",grf,"* ]]; then PTDE_PIP_ARGS="-c constraints.txt" bash ptde/envs/install_grf.sh $(PY); fi
	touch $@

# the Google Research Football engine alone (built once from source, then cached outside the repo)
grf:
	PTDE_PIP_ARGS="-c constraints.txt" bash ptde/envs/install_grf.sh $(PY)

demo: install
	$(PY) -m ptde.train algo=qmix env=smac/3m logger=csv trainer.max_env_steps=50000 trainer.test_interval=10000 trainer.log_interval=5000 $(ARGS)

test: install
	$(PY) -m pytest -q $(ARGS)

test-all: install
	$(PY) -m pytest -q -m "" $(ARGS)

lint: install
	$(VENV)/bin/ruff check ptde tests
	$(VENV)/bin/ruff format --check ptde tests

train: install
	$(PY) -m ptde.train $(ARGS)

bench: install
	$(PY) -m ptde.bench --grf $(ARGS)

clean:
	rm -rf outputs/2* outputs/multirun bench/ .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
