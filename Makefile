# modelops: the README's two commands are `make demo` and `make test`; the rest are for developers.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed
# Tests and CI read the wine-quality CSVs from a local copy; the demo downloads them when this is unset.
SHARED_DATA := $(abspath ../shared/data/wine-quality)
export MODELOPS_STATE_DIR ?= $(CURDIR)/.modelops

.PHONY: help venv locks demo train test test-unit test-component test-cluster lint manifests cluster-build helm-build cluster-up \
        mlflow-ui image image-tools node-tools clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# The editable install maps the packages that exist when it runs: a new modelops_* package reinstalls.
PACKAGES := $(wildcard lib/modelops_*/__init__.py operator/modelops_*/__init__.py service/modelops_*/__init__.py \
              training/modelops_*/__init__.py analytics/modelops_*/__init__.py cli/modelops_*/__init__.py \
              tools/*/modelops_*/__init__.py)

$(STAMP): pyproject.toml requirements/dev.txt $(PACKAGES)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q uv==$(UV_VERSION)
	VIRTUAL_ENV=$(VENV) $(VENV)/bin/uv pip install -q --require-hashes -r requirements/dev.txt
	VIRTUAL_ENV=$(VENV) $(VENV)/bin/uv pip install -q --no-deps -e .
	touch $@

venv: $(STAMP)  ## create the development environment (all three dependency sets, pinned, hashes required)

# The locks carry every distribution's sha256 and the installs require them (the Dockerfile's too).
# `make locks` re-locks from pyproject.toml keeping every locked version: delete a package's entry from a
# lock (or change its pin in pyproject.toml) to move it.
LOCKS := operator service dev
locks: $(STAMP)  ## re-lock requirements/*.txt from pyproject.toml with hashes, keeping the locked versions
	@for x in $(LOCKS); do cp requirements/$$x.txt $$x.previous.tmp; \
	  $(VENV)/bin/uv pip compile -q pyproject.toml --extra $$x -c $$x.previous.tmp --generate-hashes \
	    --python-version 3.11 --custom-compile-command "make locks" -o requirements/$$x.txt \
	  && sed -i "s|$$x.previous.tmp|requirements/$$x.txt (the previous lock)|" requirements/$$x.txt; \
	  rm -f $$x.previous.tmp; done

demo: $(STAMP) cluster-build  ## the main job: train, register, build the image, serve it from pods on a local real node
	@if [[ "$(DEMO_ARGS)" != *--kwok* ]]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "the demo's real node needs root (kubelet, containerd, a bridge):" \
	    "run it as root, or with DEMO_ARGS=--kwok (a fake node: nothing runs in pods)"; exit 1; fi; \
	  $(MAKE) --no-print-directory image-tools node-tools; fi
	@if [ -z "$$MODELOPS_DATA_DIR" ] && [ -d "$(SHARED_DATA)" ]; then export MODELOPS_DATA_DIR="$(SHARED_DATA)"; fi; \
	  $(PY) -m modelops_demo $(DEMO_ARGS)

demo-promotion: $(STAMP) cluster-build argocd-build  ## staged promotion: Git, Argo CD, soak, modelops promote, the gate (docs/promotion.md)
	@if [ -z "$$MODELOPS_DATA_DIR" ] && [ -d "$(SHARED_DATA)" ]; then export MODELOPS_DATA_DIR="$(SHARED_DATA)"; fi; \
	  $(PY) -m modelops_demo.promotion $(DEMO_ARGS)

test: $(STAMP) cluster-build helm-build argocd-build  ## every test tier: unit, component (MLflow, BentoML), cluster
	@if [ -z "$$MODELOPS_DATA_DIR" ] && [ -d "$(SHARED_DATA)" ]; then export MODELOPS_DATA_DIR="$(SHARED_DATA)"; fi; \
	  $(PY) -m pytest tests -p no:cacheprovider --durations=15

test-unit: $(STAMP) helm-build  ## pure functions only, no servers
	$(PY) -m pytest tests/unit

test-component: $(STAMP)  ## real MLflow server and bentoml serve on loopback
	@if [ -z "$$MODELOPS_DATA_DIR" ] && [ -d "$(SHARED_DATA)" ]; then export MODELOPS_DATA_DIR="$(SHARED_DATA)"; fi; \
	  $(PY) -m pytest tests/component

test-cluster: $(STAMP) cluster-build argocd-build  ## the project's control plane (or $$KUBECONFIG with MODELOPS_USE_KUBECONFIG=1)
	@if [ -z "$$MODELOPS_DATA_DIR" ] && [ -d "$(SHARED_DATA)" ]; then export MODELOPS_DATA_DIR="$(SHARED_DATA)"; fi; \
	  $(PY) -m pytest tests/cluster

manifests: $(STAMP)  ## regenerate the CRD YAML (crds/ and the chart's copy) from modelops_operator/crd.py
	$(PY) -m modelops_operator.crd --write

lint: $(STAMP)  ## ruff, mypy and the generated CRD copies, as in CI
	$(PY) -m modelops_operator.crd --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

cluster-build:  ## build the control plane, kwok, the real node (kubelet, kube-proxy), kubectl, Traefik and the registry into ~/.cache (once)
	tools/cluster/build.sh --node >/dev/null
	tools/kubectl/build.sh >/dev/null
	tools/traefik/build.sh >/dev/null
	tools/registry/build.sh >/dev/null

helm-build:  ## build helm, promtool and actionlint (chart, alert-rule and workflow tests) into ~/.cache (once)
	tools/helm/build.sh >/dev/null
	tools/prometheus/build.sh >/dev/null
	tools/actionlint/build.sh >/dev/null

argocd-build:  ## build Argo CD (application controller, repo server) into ~/.cache (once; ~7 min, Go 1.27)
	tools/argocd/build.sh >/dev/null

validate-manifests: $(STAMP)  ## check the GitOps manifests (deploy/) against the CRD schema, offline
	$(VENV)/bin/modelops validate deploy/*/*.yaml examples/*.yaml

cluster-up: $(STAMP) cluster-build  ## the local cluster in the foreground (NODE=real: real node + Traefik; Ctrl-C stops it)
	$(PY) -m modelops_cluster up --node $(or $(NODE),kwok)

train: $(STAMP)  ## only train and register (python -m modelops_training; ARGS="--trials 8 ...")
	@if [ -z "$$MODELOPS_DATA_DIR" ] && [ -d "$(SHARED_DATA)" ]; then export MODELOPS_DATA_DIR="$(SHARED_DATA)"; fi; \
	  $(PY) -m modelops_training $(ARGS)

mlflow-ui: $(STAMP)  ## a local MLflow server with the UI on 127.0.0.1:5000 (sqlite + local artifacts)
	mkdir -p $(MODELOPS_STATE_DIR)/mlflow
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(VENV)/bin/mlflow server --host 127.0.0.1 --port 5000 \
	  --backend-store-uri sqlite:///$(MODELOPS_STATE_DIR)/mlflow/mlflow.db \
	  --artifacts-destination $(MODELOPS_STATE_DIR)/mlflow/artifacts

image:  ## build the operator, service and builder images with buildah, no Docker engine (docs/images.md)
	tools/image/build.sh operator service builder

image-push:  ## push those images to $$IMAGE_REPOSITORY (REGISTRY_USER/REGISTRY_PASSWORD; tools/image/push.sh)
	tools/image/push.sh operator service builder

# Debian packages by the command that shows each is there.
IMAGE_TOOLS := buildah:buildah mmdebstrap:mmdebstrap
NODE_TOOLS := containerd:containerd ctr:containerd runc:runc conntrack:conntrack iptables:iptables nft:nftables \
              ip:iproute2 /usr/lib/cni/bridge:containernetworking-plugins redis-server:redis-server git:git \
              shellcheck:shellcheck
define apt_install  # $(1): command:package pairs; installs the packages whose command is missing
	@missing=$$(for pair in $(1); do t=$${pair%%:*}; p=$${pair#*:}; \
	    { [ -x "$$t" ] || command -v "$$t" >/dev/null; } || echo $$p; done | sort -u | tr '\n' ' '); \
	  if [ -z "$${missing// }" ]; then echo "present: $(foreach p,$(1),$(lastword $(subst :, ,$(p))))"; \
	  elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; { apt-get install -y -qq $$missing >/dev/null 2>&1 \
	      || { apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; }; } && echo "installed: $$missing"; \
	  else echo "missing $$missing: install them (Debian: apt-get install $$missing)"; exit 1; fi
endef

image-tools:  ## install buildah and mmdebstrap from Debian when missing (root; the image tests need them)
	$(call apt_install,$(IMAGE_TOOLS))

node-tools:  ## install containerd, runc, CNI plugins, conntrack, iptables, nftables, and Argo CD's redis-server and git, from Debian when missing (root)
	$(call apt_install,$(NODE_TOOLS))

clean:  ## remove the environment and local state (the control-plane cache in ~/.cache stays)
	rm -rf $(VENV) $(MODELOPS_STATE_DIR)
