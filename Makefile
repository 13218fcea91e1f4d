# ptde — common jobs. `make demo` runs the default experiment, `make test` the test suite;
# both install what they need first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is pinned through a constraints file on every pip call (a loose pin pulls CUDA wheels)
PIP_INSTALL := $(PIP) install --disable-pip-version-check -c constraints.txt
EXTRAS ?= smax,grf,ltr,report,cluster,dev,wandb-report
ARGS ?=
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

# the paper's experiment grids (conf/grid/*.yaml): `make paper-smac`, or with a smoke budget on one
# map: `make paper-smac BUDGET=smoke MAPS=smac/3m ALGOS=qmix,qmix_gip`; LAUNCHER=joblib runs jobs in
# parallel on this machine, LAUNCHER=submitit_slurm on a Slurm cluster (see README)
PAPER := paper-smac paper-grf paper-ltr paper-universality paper-two-stage
BUDGET ?= full
LAUNCHER ?= basic
ALGOS ?=
MAPS ?=
SEEDS ?=
SWEEP_ARGS = budget=$(BUDGET) launcher=$(LAUNCHER) $(if $(ALGOS),'algos=[$(ALGOS)]') \
	$(if $(MAPS),'envs=[$(MAPS)]') $(if $(SEEDS),'seeds=[$(SEEDS)]')
SOURCE ?=

.PHONY: install grf demo test test-all lint train bench campaign clean report $(PAPER)

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

# two workers (CI has 2 cores); a file's tests stay on one worker so module fixtures are built once
test: install
	$(PY) -m pytest -q -n 2 --dist loadfile $(ARGS)

test-all: install
	$(PY) -m pytest -q -n 2 --dist loadfile -m "" $(ARGS)

lint: install
	$(VENV)/bin/ruff check ptde tests
	$(VENV)/bin/ruff format --check ptde tests

train: install
	$(PY) -m ptde.train $(ARGS)

bench: install
	$(PY) -m ptde.tools.bench --grf --parts throughput collection replay checkpoint speed $(ARGS)

$(PAPER): install
	$(PY) -m ptde.sweep grid=$(subst -,_,$@) $(SWEEP_ARGS) $(ARGS)

# tables and figures of any folder of runs: make report SOURCE=outputs/multirun/<date>/<time>
report: install
	$(PY) -m ptde.report source=$(SOURCE) $(ARGS)

clean:
	rm -rf outputs/2* outputs/multirun .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# the evidence campaign (conf/campaign/*.yaml), resumable: finished runs are skipped, interrupted
# ones continue from their checkpoint; artefacts and report under benchmarks/<campaign>/.
# `make campaign BUDGET=smoke ARGS="out=/tmp/b work_dir=/tmp/w"` runs the pipeline in minutes.
CAMPAIGN ?= smax
JOBS ?= 2
campaign: install
	$(PY) -m ptde.tools.campaign campaign=$(CAMPAIGN) budget=$(BUDGET) jobs=$(JOBS) $(ARGS)
