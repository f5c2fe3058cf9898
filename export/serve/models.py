"""What the server serves: pipelines (texts in, answers out) and plain ONNX models (tensors).

:class:`PipelineModel` wraps a ``runtime.Pipeline``: its v2 input is one ``BYTES`` tensor
``text`` (shape ``[n]`` or ``[n, 1]``), its outputs ``label`` (BYTES), ``score`` (FP32) and
``scores`` (FP32 ``[n, labels]``, in label order) for text classification, or ``tags`` and
``entities`` (BYTES, one JSON document per text) for token classification; it also answers
``/v1/models/{name}:predict``.

:class:`OnnxModel` wraps a ``runtime.Session``: typed tensors in and out. Requests batch
together when every input and output has the same symbolic first dimension (the batch)
and their other dimensions agree; tensors are never padded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.serve.batcher import Work
from export.serve.tensors import InferRequest, RequestError, bytes_array, datatype_of, texts_of
from runtime.errors import FeedError
from runtime.pipeline import Pipeline, PipelineInputError
from runtime.session import Session

TEXT_INPUT = "text"


@dataclass(frozen=True)
class Limits:
    """Per-request limits.

    Attributes:
        max_instances: the most texts (or tensor rows) in one request.
        max_text_chars: the most characters in one text.
    """

    max_instances: int = 1024
    max_text_chars: int = 20_000


def _tensor_meta(name: str, datatype: str, shape: Sequence[Any]) -> dict[str, Any]:
    return {
        "name": name,
        "datatype": datatype,
        "shape": [d if isinstance(d, int) else -1 for d in shape],
    }


@dataclass(frozen=True)
class Answers:
    """One request's answers and each text's label scores (in label order)."""

    answers: list[dict[str, Any]]
    scores: list[np.ndarray]


class PipelineModel:
    """A pipeline folder, served.

    Attributes:
        name: the model's name in URLs.
        version: the first 12 hex digits of the pipeline's fingerprint (changes on reload).
        pipe: the ``runtime.Pipeline``.
    """

    platform = "graphcap_pipeline"

    def __init__(self, name: str, pipe: Pipeline) -> None:
        self.name, self.pipe = name, pipe
        self.version = pipe.fingerprint[:12]
        self.session = pipe.session

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/models/{name}`` and the web page show."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": "pipeline",
            "task": self.pipe.task,
            "labels": list(self.pipe.labels),
            "backend": self.session.backend,
            "device": self.session.device,
            "pad_invariant": self.pipe.pad_invariant,
        }

    def metadata(self) -> dict[str, Any]:
        """The v2 model metadata."""
        n = len(self.pipe.labels)
        if self.pipe.task == "text-classification":
            outputs = [
                _tensor_meta("label", "BYTES", [-1]),
                _tensor_meta("score", "FP32", [-1]),
                _tensor_meta("scores", "FP32", [-1, n]),
            ]
        else:
            outputs = [_tensor_meta("tags", "BYTES", [-1]), _tensor_meta("entities", "BYTES", [-1])]
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": self.platform,
            "inputs": [_tensor_meta(TEXT_INPUT, "BYTES", [-1])],
            "outputs": outputs,
        }

    def texts_work(self, texts: Sequence[Any], limits: Limits) -> Work:
        """Tokenize a request's texts (400 for a non-string, too long or too many)."""
        if not texts:
            raise RequestError("no texts: give at least one instance")
        if len(texts) > limits.max_instances:
            raise RequestError(
                f"{len(texts)} instances in one request, more than the limit of "
                f"{limits.max_instances} (--max-instances)",
                413,
            )
        encoded = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise RequestError(f"instance {i} must be a string, not {type(text).__name__}")
            if len(text) > limits.max_text_chars:
                raise RequestError(
                    f"instance {i} has {len(text)} characters, more than the limit of "
                    f"{limits.max_text_chars} (--max-text-chars)",
                    413,
                )
            try:
                encoded.append(self.pipe.encode(text))
            except PipelineInputError as err:
                raise RequestError(f"instance {i}: {err}") from None
        return Work(self, len(encoded), encoded)

    def v2_work(self, request: InferRequest, limits: Limits) -> Work:
        """The work of a v2 request: its ``text`` input."""
        names = sorted(request.inputs)
        if names != [TEXT_INPUT]:
            raise RequestError(
                f"model {self.name!r} takes one input, {TEXT_INPUT!r} (BYTES, shape [n]); "
                f"got {names}"
            )
        for name, _ in request.outputs:
            if name not in self._output_names():
                raise RequestError(
                    f"model {self.name!r} has no output {name!r}; its outputs are "
                    f"{self._output_names()}"
                )
        return self.texts_work(texts_of(TEXT_INPUT, request.inputs[TEXT_INPUT]), limits)

    def _output_names(self) -> list[str]:
        return [t["name"] for t in self.metadata()["outputs"]]

    def run_batch(self, payloads: list[list[Any]]) -> list[Answers]:
        """Answer each request's encoded texts; all of them run as one batch."""
        flat = [enc for encoded in payloads for enc in encoded]
        scores = self.pipe.scores(flat)
        answers = [self.pipe.answer(s, e) for s, e in zip(scores, flat, strict=True)]
        out, at = [], 0
        for encoded in payloads:
            end = at + len(encoded)
            out.append(Answers(answers[at:end], scores[at:end]))
            at = end
        return out

    def v1_answers(self, result: Answers) -> list[dict[str, Any]]:
        """The ``:predict`` predictions of one request."""
        return result.answers

    def v2_outputs(self, result: Answers) -> dict[str, np.ndarray]:
        """The v2 output tensors of one request's answers."""
        answers = result.answers
        if self.pipe.task != "text-classification":
            return {
                "tags": bytes_array([json.dumps(a["tags"]) for a in answers]),
                "entities": bytes_array([json.dumps(a.get("entities", [])) for a in answers]),
            }
        return {
            "label": bytes_array([a["label"] for a in answers]),
            "score": np.array([a["score"] for a in answers], np.float32),
            "scores": np.stack(result.scores).astype(np.float32, copy=False),
        }


class OnnxModel:
    """An ``.onnx`` file, served with typed tensors."""

    platform = "onnxruntime_onnx"

    def __init__(self, name: str, session: Session, version: str) -> None:
        self.name, self.session, self.version = name, session, version
        self.batch_dim = _batch_symbol(session)

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/models/{name}`` shows."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": "onnx",
            "backend": self.session.backend,
            "device": self.session.device,
            "batch_dim": self.batch_dim,
        }

    def metadata(self) -> dict[str, Any]:
        """The v2 model metadata."""

        def tensors(sig: Any) -> list[dict[str, Any]]:
            return [_tensor_meta(n, datatype_of(t.dtype), t.shape or []) for n, t in sig]

        return {
            "name": self.name,
            "versions": [self.version],
            "platform": self.platform,
            "inputs": tensors(self.session.input_signature),
            "outputs": tensors(self.session.output_signature),
        }

    def texts_work(self, texts: Sequence[Any], limits: Limits) -> Work:
        """Plain ONNX models take tensors, not texts."""
        raise RequestError(
            f"model {self.name!r} is a plain ONNX model: send tensors to "
            f"/v2/models/{self.name}/infer; :predict with texts needs a pipeline folder"
        )

    def v2_work(self, request: InferRequest, limits: Limits) -> Work:
        """Check a request's tensors against the signature (400 naming what is wrong)."""
        try:
            arrays = self.session.input_signature.validate(request.inputs)
        except FeedError as err:
            raise RequestError(str(err)) from None
        for name, _ in request.outputs:
            if name not in self.session.output_names:
                raise RequestError(
                    f"model {self.name!r} has no output {name!r}; its outputs are "
                    f"{list(self.session.output_names)}"
                )
        rows = 1
        if self.batch_dim is not None:
            rows = int(next(iter(arrays.values())).shape[0])
            if rows > limits.max_instances:
                raise RequestError(
                    f"{rows} rows in one request, more than the limit of "
                    f"{limits.max_instances} (--max-instances)",
                    413,
                )
        return Work(self, max(rows, 1), arrays)

    def run_batch(self, payloads: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Run requests; those with the same non-batch shapes are concatenated into one run."""
        if self.batch_dim is None or len(payloads) == 1:
            return [self.session.run(p) for p in payloads]
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, p in enumerate(payloads):
            groups.setdefault(tuple((n, a.shape[1:]) for n, a in p.items()), []).append(i)
        out: list[dict[str, np.ndarray]] = [{}] * len(payloads)
        for rows in groups.values():
            feeds = {n: np.concatenate([payloads[i][n] for i in rows]) for n in payloads[rows[0]]}
            result = self.session.run(feeds)
            at = 0
            for i in rows:
                n = next(iter(payloads[i].values())).shape[0]
                out[i] = {k: v[at : at + n] for k, v in result.items()}
                at += n
        return out

    def v1_answers(self, result: Any) -> list[dict[str, Any]]:
        """Plain ONNX models do not answer ``:predict`` (``texts_work`` refuses first)."""
        raise RequestError(f"model {self.name!r} takes tensors: use /v2/models/{self.name}/infer")

    def v2_outputs(self, result: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The v2 output tensors of one request's result."""
        return result


def _batch_symbol(session: Session) -> str | None:
    """The symbolic first dim every input and output shares, or None (no batching)."""
    firsts = set()
    for _, t in [*session.input_signature, *session.output_signature]:
        if not t.shape or not isinstance(t.shape[0], str) or not t.shape[0].isidentifier():
            return None
        firsts.add(t.shape[0])
    return firsts.pop() if len(firsts) == 1 else None


def model_name(path: Path) -> str:
    """The URL name of a model file or folder: its name without ``.onnx``."""
    return path.stem if path.suffix == ".onnx" else path.name
