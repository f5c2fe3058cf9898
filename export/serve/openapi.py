"""The server's OpenAPI 3.1 description, served at ``GET /openapi.json``.

Written out by hand (the server has no request models to derive it from); a test checks
that it describes every route the app has and nothing else.
"""

from __future__ import annotations

from typing import Any

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}
_TENSOR_IN = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {
            "type": "string",
            "enum": [
                "BOOL",
                "UINT8",
                "UINT16",
                "UINT32",
                "UINT64",
                "INT8",
                "INT16",
                "INT32",
                "INT64",
                "FP16",
                "FP32",
                "FP64",
                "BYTES",
            ],
        },
        "data": {"type": "array", "description": "row-major values (nested lists accepted)"},
        "parameters": {
            "type": "object",
            "properties": {"binary_data_size": {"type": "integer"}},
        },
    },
}
_INFER_REQUEST = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {
            "type": "object",
            "properties": {
                "binary_data_output": {"type": "boolean"},
                "timeout": {"type": "integer", "description": "microseconds"},
            },
        },
        "inputs": {"type": "array", "items": _TENSOR_IN},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "parameters": {
                        "type": "object",
                        "properties": {"binary_data": {"type": "boolean"}},
                    },
                },
            },
        },
    },
}
_INFER_RESPONSE = {
    "type": "object",
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "outputs": {"type": "array", "items": _TENSOR_IN},
    },
}
_ANSWER = {
    "type": "object",
    "description": "text classification: label, score, scores (ranked); token "
    "classification: tokens, tags, entities",
    "properties": {
        "label": {"type": "string"},
        "score": {"type": "number"},
        "scores": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"label": {"type": "string"}, "score": {"type": "number"}},
            },
        },
        "tokens": {"type": "array", "items": {"type": "string"}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "entities": {"type": "array", "items": {"type": "object"}},
    },
}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _json(_ERROR, "an error") for c in codes}


def _get(summary: str, schema: dict[str, Any] | None = None, *codes: int) -> dict[str, Any]:
    ok = _json(schema or {"type": "object"}, "OK")
    return {"get": {"summary": summary, "responses": {"200": ok, **_errors(*codes)}}}


def _model_paths(base: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    infer = {
        "post": {
            "summary": "Run the model on typed tensors (JSON, or JSON then binary tensor data)",
            "parameters": params,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _INFER_REQUEST},
                    "application/octet-stream": {
                        "schema": {"type": "string", "format": "binary"},
                        "description": "the JSON request, then the inputs' binary data; the "
                        "Inference-Header-Content-Length header gives the JSON's length",
                    },
                },
            },
            "responses": {
                "200": _json(_INFER_RESPONSE, "the outputs"),
                **_errors(400, 404, 408, 413, 415, 500, 504),
            },
        }
    }
    paths = {
        base: _get("Model metadata: inputs, outputs, versions, platform", None, 404),
        f"{base}/ready": _get("Whether the model is ready", None, 404, 503),
        f"{base}/config": _get("Triton-style model configuration", None, 404),
        f"{base}/infer": infer,
    }
    for item in paths.values():
        for op in item.values():
            op["parameters"] = params
    return paths


def document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the server."""
    predict = {
        "post": {
            "summary": "Answer texts with a pipeline model",
            "parameters": [_NAME],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["instances"],
                            "properties": {
                                "instances": {
                                    "type": "array",
                                    "items": {
                                        "oneOf": [
                                            {"type": "string"},
                                            {
                                                "type": "object",
                                                "properties": {"text": {"type": "string"}},
                                            },
                                        ]
                                    },
                                }
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "predictions": {"type": "array", "items": _ANSWER},
                            "model_name": {"type": "string"},
                            "model_version": {"type": "string"},
                        },
                    },
                    "one answer per instance, in order",
                ),
                **_errors(400, 404, 408, 413, 415, 500, 504),
            },
        }
    }
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "summary": "A web page to try the pipeline models",
                "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
            }
        },
        "/openapi.json": _get("This document"),
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text format 0.0.4)",
                "responses": {"200": {"description": "metrics", "content": {"text/plain": {}}}},
            }
        },
        "/v2": _get("Server metadata: name, version, extensions"),
        "/v2/health/live": _get("Liveness"),
        "/v2/health/ready": _get("Readiness: every model loaded", None, 503),
        "/v1/models": _get("The served models"),
        "/v1/models/{name}": {
            "get": {
                **_get("One model: kind, task, labels, version, backend, device", None, 404)["get"],
                "parameters": [_NAME],
            }
        },
        "/v1/models/{name}:predict": predict,
    }
    paths |= _model_paths("/v2/models/{name}", [_NAME])
    paths |= _model_paths("/v2/models/{name}/versions/{version}", [_NAME, _VERSION])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "graphcap serve",
            "version": version or "unknown",
            "description": "The KServe / Triton v2 inference protocol over HTTP/JSON, and "
            "KServe v1 :predict for pipeline models.",
        },
        "paths": paths,
    }
