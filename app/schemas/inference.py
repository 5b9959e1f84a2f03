"""The Open Inference Protocol's REST bodies (KServe V2, as Triton, MLServer and KServe runtimes speak it).

https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol: tensors are named, typed
(`datatype`) and shaped, their `data` given row-major as a flat (or nested) JSON list.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The protocol's tensor data types that JSON can carry (FP16 and BF16 only as binary data, which is not served).
Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP32", "FP64", "BYTES"
]
Parameters = dict[str, Any]


class InferenceError(BaseModel):
    error: str = Field(description="What went wrong, for a person to read.")


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class MetadataTensor(BaseModel):
    name: str
    datatype: Datatype
    shape: list[int] = Field(description="-1 for a dimension of any size (the batch).")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] = Field(description="The version served now (the champion alias's).")
    platform: str
    inputs: list[MetadataTensor] = Field(description="One tensor per record field the version reads.")
    outputs: list[MetadataTensor]


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="A record field, as GET /v2/models/{name} lists them.")
    shape: list[int] = Field(
        min_length=1, max_length=2, description="[n] or [n, 1]: one value per record, n records."
    )
    datatype: Datatype
    parameters: Parameters | None = None
    data: list[Any] = Field(description="The n values, row-major (flat, or nested as [[v], ...]).")


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="Echoed in the response.")
    parameters: Parameters | None = Field(
        default=None,
        description='`content_type: "pd"` (MLServer\'s tabular content type: each input a column) is accepted; '
        "the inputs are read as columns either way.",
    )
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(default=None, description="Absent: every output.")


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: Datatype
    parameters: Parameters | None = None
    data: list[Any]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]
