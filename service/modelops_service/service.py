"""The BentoML service: loads the models in the background and serves /predict through the pipeline.

Run with `bentoml serve modelops_service.service:ModelService`; see docs/service.md."""

from __future__ import annotations

import os

# Native thread pools (OpenMP in scikit-learn) must be one per worker before any of them starts:
# several workers x request threads x OpenMP threads on a few cores collapse throughput.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import gc
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import bentoml
from bentoml._internal.server.http import traffic as bentoml_traffic
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from modelops_service import oip
from modelops_service.errors import (
    InternalError,
    ModelLoadError,
    NotReady,
    PayloadTooLarge,
    ServiceError,
    error_body,
)
from modelops_service.events import LOG_FLUSH_SECONDS, EventLog, acceptable_request_id
from modelops_service.schema import ERROR_RESPONSES, PredictResponse, request_body_spec
from modelops_service.settings import Settings, load_settings
from modelops_service.traffic import AdmissionLimit, RequestTimeout

logger = logging.getLogger(__name__)
# Read once per process, at import: the worker count is needed by the decorator below, and a bad value
# stops start-up with a message naming the variable.
SETTINGS: Settings = load_settings()
LOAD_RETRY_SECONDS = 15.0  # first delay before loading again after a failure (doubles up to 5 min)

app = FastAPI(title="modelops prediction service", docs_url=None, redoc_url=None, openapi_url=None)


async def current_service() -> Any:
    """The service instance for an endpoint's `self`. BentoML injects it with the synchronous
    bentoml.get_current_service, which FastAPI runs in a thread pool: a thread hop on every request."""
    return bentoml.get_current_service()


app.dependency_overrides[bentoml.get_current_service] = current_service
app.add_middleware(AdmissionLimit, limit=SETTINGS.max_concurrency, max_lag=SETTINGS.max_queue_ms / 1000)
# BentoML builds its middlewares after importing this module: the request timeout it adds is ours, whose
# timer ends with the request (see traffic.RequestTimeout for what BentoML's own kept alive).
bentoml_traffic.TimeoutMiddleware = RequestTimeout  # type: ignore[misc,assignment]


T = TypeVar("T")


@app.exception_handler(ServiceError)
async def error_response(request: Request, error: ServiceError) -> JSONResponse:
    """The one mapping from service errors to HTTP responses (on /v2, the protocol's error object), with
    the request id the route chose (request.state.request_id) when it chose one."""
    request_id = getattr(request.state, "request_id", None)
    headers = {"X-Request-ID": request_id} if request_id else None
    body = error_body(error, v2=request.url.path.startswith("/v2"))
    return JSONResponse(body, status_code=error.status_code, headers=headers)


def request_id_of(request: Request, chosen: str | None = None) -> str:
    """The request's id (its X-Request-ID, else `chosen`, else a new one), kept for error_response."""
    given = request.headers.get("x-request-id")
    if given is not None and not acceptable_request_id(given):
        given = None  # replaced, never echoed: it would reach a response header and every log line
    request_id: str = given or chosen or uuid.uuid4().hex
    request.state.request_id = request_id
    return request_id


def guarded(request_id: str, work: Callable[[], T]) -> T:
    """Run a request's work; an unexpected exception (a bug) is logged with its traceback and answered
    as InternalError with the request id, never as a bare 500."""
    try:
        return work()
    except ServiceError:
        raise
    except Exception as e:
        logger.exception("unexpected error answering request %s", request_id)
        raise InternalError(f"unexpected error; request id {request_id}") from e


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("modelops")
    except PackageNotFoundError:
        return "unknown"


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@bentoml.service(
    workers=SETTINGS.workers,
    traffic={"timeout": 60},
)
@bentoml.asgi_app(app, path="/")
class ModelService:
    """Predictions with inline drift and outlier monitoring for the models named in the environment."""

    def __init__(self) -> None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
        self.settings: Settings = SETTINGS
        self.pipeline: Any = None
        self.load_error: str | None = None
        # Loading in __init__ keeps this worker off the shared socket until its models are in memory, so
        # with several workers no request reaches one that is still loading. When loading fails the
        # worker stays up, answers 503 with the reason (readyz too) and retries in the background.
        if not self._load():
            threading.Thread(target=self._retry_load, name="modelops-model-loader", daemon=True).start()

    def _load(self) -> bool:
        from modelops_service.metrics import MonitoringMetrics
        from modelops_service.model_loader import load_models
        from modelops_service.pipeline import PredictionPipeline

        try:
            models = load_models(self.settings)
        except ServiceError as e:
            self.load_error = e.message  # a ModelLoadError's (load_models' one error) message
            logger.error("model loading failed: %s", e.message)
            return False
        metrics = MonitoringMetrics(self.settings.service_name)
        self.pipeline = PredictionPipeline(
            models, self.settings, EventLog(flush_seconds=LOG_FLUSH_SECONDS), metrics
        )
        self.load_error = None
        logger.info("models loaded: %s", models.versions)
        # Everything alive now (modules, models) lives as long as the worker: out of every collection.
        # Without this a full collection walked them all, a 150-300 ms stall of the request it landed on.
        gc.collect()
        gc.freeze()
        return True

    def _retry_load(self) -> None:
        delay = LOAD_RETRY_SECONDS
        while not self._load():
            time.sleep(delay)
            delay = min(delay * 2, 300.0)

    def _not_ready(self) -> ServiceError:
        """Why this worker cannot answer yet: its last load attempt failed (contract.LOAD_FAILED, with the
        reason; it retries in the background), or it is still loading (NotReady)."""
        if self.load_error is not None:
            return ModelLoadError(self.load_error)
        return NotReady("the models are still loading")

    def __is_ready__(self) -> bool:
        """Ready once the predictor and both detectors are loaded."""
        return self.pipeline is not None

    @app.post(
        "/predict",
        summary="Predict a list of records, with drift and outlier monitoring",
        response_model=PredictResponse,
        responses=ERROR_RESPONSES,
        openapi_extra={"requestBody": request_body_spec()},
    )
    async def predict(self, request: Request) -> Response:
        """Predicted class and probability per record, plus drift (request and window) and outliers."""
        request_id = request_id_of(request)
        pipeline = self.pipeline
        if pipeline is None:
            raise self._not_ready()
        body = await read_body(request, self.settings.max_body_bytes)
        # CPU work runs inline: each worker serves one request at a time anyway (one OpenMP thread),
        # and skipping the thread hop saves more than it costs.
        result = guarded(request_id, lambda: pipeline.run(body, request_id))
        return Response(result, media_type="application/json", headers={"X-Request-ID": request_id})

    # ------------------------------------------------------------------ Open Inference Protocol V2 (REST)

    def _served(self, name: str, version: str | None) -> tuple[Any, oip.ModelId]:
        """The pipeline and the served model's id, if the path names them; NotReady / NotFound if not."""
        if self.pipeline is None:
            raise self._not_ready()
        model = oip.ModelId.from_label(self.pipeline.models.versions["predictor"])
        model.check(name, version)
        return self.pipeline, model

    @app.get("/v2", summary="Open Inference Protocol: server metadata")
    async def v2_server(self) -> JSONResponse:
        return JSONResponse(oip.server_metadata(package_version()))

    @app.get("/v2/health/live", summary="Open Inference Protocol: liveness")
    async def v2_live(self) -> JSONResponse:
        return JSONResponse({"live": True})

    @app.get("/v2/health/ready", summary="Open Inference Protocol: readiness (the models are loaded)")
    async def v2_ready(self) -> JSONResponse:
        if self.pipeline is None:
            raise self._not_ready()
        return JSONResponse({"ready": True})

    @app.get("/v2/models/{name}", summary="Open Inference Protocol: model metadata")
    @app.get("/v2/models/{name}/versions/{version}", summary="Open Inference Protocol: model metadata")
    async def v2_model(self, name: str, version: str | None = None) -> JSONResponse:
        pipeline, model = self._served(name, version)
        predictor = pipeline.models.predictor
        return JSONResponse(
            oip.model_metadata(model, pipeline.models.features, predictor.classes, predictor.has_probability)
        )

    @app.get("/v2/models/{name}/ready", summary="Open Inference Protocol: model readiness")
    @app.get("/v2/models/{name}/versions/{version}/ready", summary="Open Inference Protocol: model readiness")
    async def v2_model_ready(self, name: str, version: str | None = None) -> JSONResponse:
        _, model = self._served(name, version)
        return JSONResponse({"name": model.name, "ready": True})

    @app.post("/v2/models/{name}/infer", summary="Open Inference Protocol: inference")
    @app.post("/v2/models/{name}/versions/{version}/infer", summary="Open Inference Protocol: inference")
    async def v2_infer(self, request: Request, name: str, version: str | None = None) -> Response:
        """The same predictions, monitoring, log events and metrics as /predict, in the protocol's shapes."""
        request_id = request_id_of(request)
        pipeline, model = self._served(name, version)
        body = await read_body(request, self.settings.max_body_bytes)

        def infer() -> oip.EncodedInferResponse:
            decoded = oip.decode_infer_request(
                body, request.headers.get(oip.HEADER_LENGTH), pipeline.models.features, self.settings.max_rows
            )
            # The header's id first, then the body's, then the one chosen above.
            chosen = request_id_of(request, decoded.request_id or request_id)
            outcome = pipeline.process(decoded.batch, chosen)
            return oip.encode_infer_response(
                model, decoded, chosen, outcome.predictions, outcome.monitoring, outcome.response.monitoring
            )

        encoded = guarded(request_id, infer)
        request_id = request.state.request_id
        headers = {"X-Request-ID": request_id}
        if encoded.header_length is None:
            return Response(encoded.body, media_type="application/json", headers=headers)
        headers["Inference-Header-Content-Length"] = str(encoded.header_length)
        return Response(encoded.body, media_type="application/octet-stream", headers=headers)
