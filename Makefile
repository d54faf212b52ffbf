# DrishtiStream developer entry points. `make run` starts a camera; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export DRISHTI_CACHE_DIR ?= $(HOME)/.cache/drishti

.PHONY: install install-camera run test lint clean-cache mutation

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.camera: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.camera

install-camera: $(VENV)/.camera ## What the camera needs, nothing more

install: $(VENV)/.installed ## The camera, the operator and everything the tests and tools need

run: install-camera ## Run a camera (synthetic scene unless DRISHTI_VIDEO_PATH or config.yaml names a video)
	$(VENV)/bin/drishti-stream

test: install ## Install everything the tests need, then run the whole suite
	$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: an empty suite counts as a failure" >&2; fi; \
	exit $$rc

lint: install ## ruff (E, F, I, FA, UP; 110 columns) and mypy (strict): CI runs it before the tests
	$(VENV)/bin/ruff check service operator tests bench hack
	$(VENV)/bin/mypy

mutation: install ## Mutation testing of the core modules (cosmic-ray; minutes per module, not in CI): make mutation MODULES="clock protocol"
	$(PY) -m hack.mutation $(MODULES)

clean-cache: ## Free the disk the project's caches take outside the work tree: its Docker images and $(DRISHTI_CACHE_DIR) (Go's caches: README)
	@case "$(abspath $(DRISHTI_CACHE_DIR))" in /|$(HOME)|"") echo "refusing to remove DRISHTI_CACHE_DIR=$(DRISHTI_CACHE_DIR)" >&2; exit 1;; esac
	hack/docker/prune.sh --all
	hack/docker/engine.sh --stop
	rm -rf "$(DRISHTI_CACHE_DIR)"

# --- cluster (control-plane harness) ---
.PHONY: cluster-build cluster-up cluster-down cluster-status

cluster-build: install ## Build (or reuse) the cached etcd, kube-apiserver/-controller-manager/-scheduler, kwok, kubectl, helm
	$(PY) -m hack.cluster build

cluster-up: install ## Start a local control plane on 127.0.0.1 (builds it first if needed); prints `export KUBECONFIG=...`
	$(PY) -m hack.cluster up

cluster-down: install ## Stop the control plane started by cluster-up and remove its state
	$(PY) -m hack.cluster down

cluster-status: install ## Show the running control plane: components, memory, KUBECONFIG
	$(PY) -m hack.cluster status
# --- end cluster ---

# --- kind (real nodes) ---
.PHONY: kind-build kind-up kind-down

kind-build: install ## Build (or reuse) the offline kind node image drishti/kind-node (hack/kind/README.md)
	$(PY) -m hack.kind build

kind-up: install ## A kind cluster "drishti" on real nodes, offline, with drishti/{stream,operator}:dev loaded (context kind-drishti)
	$(PY) -m hack.kind up

kind-down: install ## Delete the kind cluster made by kind-up
	$(PY) -m hack.kind down
# --- end kind ---

# --- delivery ---
.PHONY: manifests delivery-tools

manifests: install ## Regenerate the CRD (the operator's and the chart's), RBAC copy, values schema, version and manifests/ from their sources
	PYTHONPATH=service:operator $(PY) -m drishti_operator.crd -o operator/drishti_operator/crd.yaml
	PYTHONPATH=service:operator $(PY) -m hack.delivery

delivery-tools: ## Build (or reuse) skaffold, helm 3, kind and the `docker compose` plugin from the Go module proxy (cached in ~/.cache/drishti/tools)
	hack/delivery/tools.sh skaffold helm3 kind compose
# --- end delivery ---
