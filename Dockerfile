# syntax=docker/dockerfile:1
# Two images from one file, each with only its own pinned dependency set:
#
#   docker build --target operator -t modelops-operator .   # kopf operator: requirements/operator.txt
#   docker build --target service  -t modelops-service  .   # generic prediction service: requirements/service.txt
#
# The service image loads its models from MLflow at start-up (MLFLOW_TRACKING_URI, MODELOPS_*_URI; see
# docs/service.md). On the development machine (no container engine, no registry) `make image` builds
# both with buildah on a local stand-in for the base (tools/image/build.sh, docs/images.md).

ARG PYTHON_IMAGE=python:3.11-slim

# ---- common base: Python, a fixed non-root user -------------------------------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# UID/GID 10001 match the Helm chart's and the operator's Pod securityContext (runAsUser).
RUN groupadd --system --gid 10001 modelops \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/modelops modelops
WORKDIR /home/modelops

# Each image holds the packages its process imports and nothing else (pure Python, on PYTHONPATH):
#   operator: modelops_operator + modelops_contract;  service: modelops_service + modelops_contract +
#   modelops_detectors. Training, analytics and the development harnesses are in neither.
ENV PYTHONPATH=/opt/modelops

# ---- operator: kopf run -m modelops_operator.handlers ---------------------------------------------
FROM base AS operator
COPY requirements/operator.txt /tmp/requirements.txt
RUN pip install --no-compile --require-hashes -r /tmp/requirements.txt && rm /tmp/requirements.txt
COPY lib/modelops_contract/ /opt/modelops/modelops_contract/
COPY operator/modelops_operator/ /opt/modelops/modelops_operator/
LABEL org.opencontainers.image.title="modelops-operator" \
      org.opencontainers.image.description="Kubernetes operator for MLflow models served by BentoML" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001:10001
# kopf's liveness endpoint (the chart's livenessProbe).
EXPOSE 8080
ENTRYPOINT ["kopf", "run", "-m", "modelops_operator.handlers", "--liveness=http://0.0.0.0:8080/healthz", "--log-format=json"]
CMD ["--all-namespaces"]

# ---- service: bentoml serve, models from MLflow at start-up ---------------------------------------
FROM base AS service
COPY requirements/service.txt /tmp/requirements.txt
# The packages' own test suites (pandas', scipy's, scikit-learn's: ~47 MB) are never imported by serving.
RUN pip install --no-compile --require-hashes -r /tmp/requirements.txt && rm /tmp/requirements.txt \
 && find "$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
      -type d -name tests -prune -exec rm -rf {} +
COPY lib/modelops_contract/ /opt/modelops/modelops_contract/
COPY lib/modelops_detectors/ /opt/modelops/modelops_detectors/
COPY service/modelops_service/ /opt/modelops/modelops_service/
# Bytecode of what `bentoml serve` and its worker import, written here once instead of compiled by every
# pod at start-up (twice: the serve process and the worker); docs/images.md has the cold start figures.
RUN BENTOML_HOME=/tmp/bentoml-build python -m modelops_service.bytecode && rm -rf /tmp/bentoml-build
# One native thread per worker: OpenMP in scikit-learn oversubscribes the cores otherwise.
ENV OMP_NUM_THREADS=1 \
    BENTOML_HOME=/home/modelops/bentoml \
    BENTOML_DO_NOT_TRACK=true
LABEL org.opencontainers.image.title="modelops-service" \
      org.opencontainers.image.description="Generic BentoML prediction service with drift and outlier monitoring" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001:10001
EXPOSE 3000
ENTRYPOINT ["bentoml", "serve", "modelops_service.service:ModelService", "--host", "0.0.0.0", "--port", "3000"]
