"""The Open Inference Protocol V2 over REST (KServe V2, as Triton and MLServer speak it) for every served model.

Health, server and model metadata, model readiness and inference, the model named as registered (clm-churn,
clm-leads-inbound, ...). Inference turns the input tensors into records and runs the /v1 routes' scoring
pipeline (app/scoring/open_inference.py). Same keys as the /v1 routes: metadata and inference need the score
scope, the health routes none (as /healthz and /readyz). Errors are the protocol's {"error": "..."}
(app/errors.py).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from app.auth import ScoreScope
from app.dependencies import ModelsDep, PipelineDep
from app.error_handlers import validation_detail
from app.errors import InvalidRecords, ModelNotLoaded, NotFound
from app.json_io import JsonRoute, scoring_response
from app.schemas.inference import (
    InferenceError,
    InferenceRequest,
    InferenceResponse,
    Live,
    ModelMetadata,
    ModelReady,
    Ready,
    ServerMetadata,
)
from app.schemas.products import MAX_TOP_N
from app.scoring import open_inference
from app.scoring.runtime.loaded import LoadedModels
from app.scoring.runtime.scorer import Scorer
from app.scoring.use_cases.base import Record, UseCase
from app.scoring.use_cases.pipeline import ScoringPipeline
from app.scoring.use_cases.registry import USE_CASES

SERVER_NAME = "clm-scoring"
SERVER_VERSION = "1.0.0"
PLATFORM = "xgboost"
TAG = "open inference protocol"
# The first use case of a name is its batch route's (the leads' ranking is another view of the same scores).
_USE_CASES = {use_case.name: use_case for use_case in reversed(USE_CASES)}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "A request the protocol refuses: tensor shapes, data types, parameters, unknown outputs",
        401: "Missing or unknown API key",
        403: "The key lacks the score scope",
        404: "No such model, or not the version served",
        413: "Batch or body over the limit",
        422: "Records the model cannot score; each bad field named with its path (infer only)",
        503: "The model is not loaded yet, or the database is unavailable",
    }
    return {status: {"model": InferenceError, "description": descriptions[status]} for status in statuses}


class ProtocolRoute(JsonRoute):
    """A body read as JSON whatever its Content-Type says: the protocol's bodies are JSON, and its clients do not
    all say so (tritonclient sends none). A body with binary tensor data is refused: only JSON data is served."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def read_as_json(request: Request) -> Response:
            if _BINARY_HEADER in request.headers:
                raise open_inference.BadTensor(
                    "binary tensor data is not served; send the tensors' data as JSON"
                )
            scope = dict(request.scope)
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope["headers"].append((b"content-type", b"application/json"))
            return await handler(Request(scope, request.receive))

        return read_as_json


_BINARY_HEADER = "inference-header-content-length"
health = APIRouter(prefix="/v2", tags=[TAG])
router = APIRouter(prefix="/v2", tags=[TAG], dependencies=[ScoreScope], route_class=ProtocolRoute)


@health.get("/health/live", response_model=Live, summary="Server liveness", operation_id="v2_live")
async def live() -> dict[str, bool]:
    return {"live": True}


@health.get(
    "/health/ready",
    response_model=Ready,
    summary="Server readiness: every configured model loaded",
    operation_id="v2_ready",
    responses=_errors(503),
)
async def ready(models: ModelsDep) -> Any:
    missing = models.missing()
    if missing:
        return JSONResponse({"error": f"models not loaded: {', '.join(missing)}"}, status_code=503)
    return {"ready": True}


@router.get(
    "",
    response_model=ServerMetadata,
    summary="Server metadata",
    operation_id="v2_server_metadata",
    responses=_errors(401, 403),
)
async def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": []}


def _served(
    models: LoadedModels, name: str, version: str | None = None
) -> tuple[UseCase, str | None, Scorer]:
    """The use case, line and loaded version of a served model: 404 for a model not served or another version
    than the one served, 503 while it loads."""
    if name not in models.names:
        raise NotFound(f"model {name!r} is not served; served: {', '.join(models.names)}")
    scorer = models.get(name)
    if version is not None and version != str(scorer.version):
        raise NotFound(f"version {version!r} of {name} is not served; version {scorer.version} is")
    served = models.line_of(name)
    if served is None:  # loaded under another alias only: not what this service serves
        raise ModelNotLoaded(f"{name} is not loaded yet; see /v2/health/ready")
    use_case, line = served
    if not open_inference.speaks(use_case):
        raise NotFound(
            f"model {name!r} ({use_case}) is not served through the Open Inference Protocol; "
            f"POST /v1/{use_case}/score serves it"
        )
    return _USE_CASES[use_case], line, scorer


def _metadata(models: LoadedModels, name: str, version: str | None = None) -> ModelMetadata:
    use_case, _, scorer = _served(models, name, version)
    return ModelMetadata(
        name=name,
        versions=[str(scorer.version)],
        platform=PLATFORM,
        inputs=open_inference.input_tensors(scorer),
        outputs=open_inference.output_tensors(use_case.name, scorer),
    )


def _readiness(models: LoadedModels, name: str, version: str | None = None) -> ModelReady:
    _served(models, name, version)
    return ModelReady(name=name, ready=True)


async def _infer(
    models: LoadedModels,
    pipeline: ScoringPipeline,
    background: BackgroundTasks,
    request: InferenceRequest,
    name: str,
    version: str | None = None,
) -> Response:
    use_case, line, _ = _served(models, name, version)
    body = _scoring_body(use_case, line, open_inference.records_of(request))
    scorer, results = await pipeline.results(use_case, body, background)
    outputs = open_inference.response_outputs(
        use_case.name, scorer, results, [o.name for o in request.outputs] if request.outputs else None
    )
    answer = InferenceResponse(
        model_name=name, model_version=str(scorer.version), id=request.id, outputs=outputs
    )
    return scoring_response(answer.model_dump(exclude_none=True))


def _scoring_body(use_case: UseCase, line: str | None, records: list[Record]) -> Any:
    """The /v1 route's request for these records: the model's line, no reasons (the protocol has no place for
    them), and every offer of the products (each product is an output)."""
    fields = use_case.request.model_fields
    body: dict[str, Any] = {use_case.records_field: records, "line": line}
    if "explain" in fields:
        body["explain"] = False
    if "top_n" in fields:
        body["top_n"] = MAX_TOP_N
    try:
        return use_case.request.model_validate(body)
    except ValidationError as exc:
        details = [validation_detail(e) for e in exc.errors()]
        raise InvalidRecords(f"{len(details)} field(s) are invalid", details) from exc


# Each model route with and without the version: the protocol's /v2/models/{name}[/versions/{version}]/...
for _prefix, _versioned in (("/models/{name}", False), ("/models/{name}/versions/{version}", True)):
    _label = "_version" if _versioned else ""

    if _versioned:

        async def model_metadata(models: ModelsDep, name: str, version: str) -> ModelMetadata:
            return _metadata(models, name, version)

        async def model_ready(models: ModelsDep, name: str, version: str) -> ModelReady:
            return _readiness(models, name, version)

        async def infer(
            models: ModelsDep,
            pipeline: PipelineDep,
            background: BackgroundTasks,
            request: InferenceRequest,
            name: str,
            version: str,
        ) -> Response:
            return await _infer(models, pipeline, background, request, name, version)

    else:

        async def model_metadata(models: ModelsDep, name: str) -> ModelMetadata:  # type: ignore[misc]
            return _metadata(models, name)

        async def model_ready(models: ModelsDep, name: str) -> ModelReady:  # type: ignore[misc]
            return _readiness(models, name)

        async def infer(  # type: ignore[misc]
            models: ModelsDep,
            pipeline: PipelineDep,
            background: BackgroundTasks,
            request: InferenceRequest,
            name: str,
        ) -> Response:
            return await _infer(models, pipeline, background, request, name)

    router.add_api_route(
        _prefix,
        model_metadata,
        methods=["GET"],
        response_model=ModelMetadata,
        summary="Model metadata: one input tensor per record field, the outputs",
        operation_id=f"v2_model_metadata{_label}",
        responses=_errors(401, 403, 404, 422, 503),
    )
    router.add_api_route(
        f"{_prefix}/ready",
        model_ready,
        methods=["GET"],
        response_model=ModelReady,
        summary="Model readiness",
        operation_id=f"v2_model_ready{_label}",
        responses=_errors(401, 403, 404, 422, 503),
    )
    router.add_api_route(
        f"{_prefix}/infer",
        infer,
        methods=["POST"],
        response_model=InferenceResponse,
        summary="Score records given as one tensor per field",
        description=open_inference.__doc__,
        operation_id=f"v2_infer{_label}",
        responses=_errors(400, 401, 403, 404, 413, 422, 503),
    )
