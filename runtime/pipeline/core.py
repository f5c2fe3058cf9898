"""``Pipeline``: texts in, labels and scores out, with a model from a pipeline folder.

``Pipeline.load(folder)`` reads ``pipeline.json`` (see ``runtime.pipeline.spec``), checks
the SHA-256 of every file it lists, builds the tokenizer and opens the model as a
``runtime.Session``; ``pipe("great film")`` or ``pipe([...])`` answers. Nothing here needs
the training library (``tracer``).

Batching and padding: texts are padded on the right to the longest of their batch (rounded
up to ``pad_to_multiple_of``). Whether a model's answers depend on that padding is
measured when the pipeline loads (:attr:`Pipeline.pad_invariant`): two probe texts run
alone and with extra padding. A model that masks its padding batches texts of any length
together; one whose outputs move with padding runs only texts of one padded width in a
batch, so every text sees exactly the input it would see alone.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from runtime.pipeline import postprocess
from runtime.pipeline.encoders import Encoded, TextEncoder, build_encoder
from runtime.pipeline.spec import PipelineError, PipelineInputError, PipelineSpec, file_sha256
from runtime.session import Session

SPEC_FILE = "pipeline.json"
_PROBES = ("a", "the film was not as good as the book , but the acting was fine !")
_PROBE_PAD = 5  # extra padding the probes get
_PROBE_RTOL, _PROBE_ATOL = 1e-4, 1e-5  # float32 rounding of reordered sums stays well inside
_MAX_CALL_COST = 4096  # "never cut": a model whose cost hardly grows with the tokens


class Pipeline:
    """A tokenizer, a model and post-processing, run in process.

    Use :meth:`load`. Calling the pipeline on a string returns one answer, on a list of
    strings a list of answers (see ``runtime.pipeline.postprocess`` for their form).

    Attributes:
        spec: the parsed ``pipeline.json``.
        session: the model's ``runtime.Session``.
        encoder: the tokenizer.
        name: the folder's name.
        labels: the label names.
        task: ``"text-classification"`` or ``"token-classification"``.
        output: the model output the answer is read from.
        pad_invariant: whether the model's outputs stay the same (to float32 rounding) when
            a text gets extra padding; measured at load.
        call_cost: what one model run costs beyond its tokens, in padded tokens (onnxruntime's
            per-run work, small matrices' poor use of the CPU); measured at load, it decides
            how a batch is cut by length (see :meth:`scores`).
        fingerprint: SHA-256 over the files read, identifying this version of the folder.
    """

    def __init__(
        self, spec: PipelineSpec, session: Session, encoder: TextEncoder, name: str = ""
    ) -> None:
        self.spec, self.session, self.encoder, self.name = spec, session, encoder, name
        self.labels, self.task = spec.labels, spec.task
        self.output = _check_model(spec, session)
        self._dtypes = {n: session.input_signature[n].dtype for n in spec.inputs}
        self.fingerprint = ""
        try:
            self.pad_invariant = self._probe_padding()
            self.call_cost = self._measure_call_cost() if self.pad_invariant else 0.0
        except PipelineError:
            raise
        except Exception as err:
            raise PipelineError(f"the model fails on a probe text: {err}") from err

    @classmethod
    def load(
        cls,
        folder: str | Path,
        *,
        device: str = "cpu",
        backend: str = "auto",
        intra_op_threads: int | None = None,
        spinning: bool = True,
    ) -> Pipeline:
        """Open the pipeline folder ``folder``.

        Args:
            folder: a folder with ``pipeline.json``, the model and the tokenizer's file.
            device: ``"cpu"`` or ``"cuda"`` (onnxruntime's CUDA provider; see ``Session``).
            backend: ``"auto"``, ``"interpreter"`` or ``"onnxruntime"``.
            intra_op_threads: onnxruntime's threads inside one op (None: graphcap's setting,
                ``runtime.get_num_threads()``).
            spinning: whether onnxruntime's idle threads spin-wait (see ``Session``).

        Raises:
            PipelineError: no ``pipeline.json``, a malformed one (the message names the
                field), a missing file, a file whose SHA-256 differs from the one listed, a
                model whose inputs or outputs do not fit the spec.
        """
        folder = Path(folder)
        raw = _read(folder, SPEC_FILE, None)
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise PipelineError(f"{folder / SPEC_FILE} is not valid JSON: {err}") from None
        spec = PipelineSpec.from_json(data, str(folder / SPEC_FILE))
        model_bytes = _read(folder, spec.model, spec.files.get(spec.model))
        tok_bytes = _read(folder, spec.tokenizer.file, spec.files.get(spec.tokenizer.file))
        for name, digest in spec.files.items():
            if name not in (spec.model, spec.tokenizer.file):
                _verify(folder / name, digest)
        options = {"device": device, "backend": backend, "intra_op_threads": intra_op_threads}
        session = _session(folder, spec.model, model_bytes, {**options, "spinning": spinning})
        spans = spec.task == "token-classification"
        encoder = build_encoder(spec.tokenizer, tok_bytes, spans)
        pipe = cls(spec, session, encoder, folder.name)
        pipe.fingerprint = hashlib.sha256(raw + model_bytes + tok_bytes).hexdigest()
        return pipe

    def __call__(
        self, texts: str | Sequence[str], *, batch_size: int = 32
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Answer one text (a dict) or a list of texts (a list of dicts, in order).

        Raises:
            PipelineInputError: a text that is not a string, or too long with truncation off.
        """
        if isinstance(texts, str):
            return self.run([self.encode(texts)])[0]
        encoded = [self.encode(t) for t in texts]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].ids))
        answers: list[dict[str, Any]] = [{}] * len(encoded)
        for lo in range(0, len(order), batch_size):
            chunk = order[lo : lo + batch_size]
            for i, answer in zip(chunk, self.run([encoded[i] for i in chunk]), strict=True):
                answers[i] = answer
        return answers

    def encode(self, text: str) -> Encoded:
        """Tokenize one text, applying ``max_length`` and ``truncation``.

        Raises:
            PipelineInputError: not a string, or too long with truncation off.
        """
        if not isinstance(text, str):
            raise PipelineInputError(f"expected a text (a string), got {type(text).__name__}")
        return self.encoder.encode(text, self.spec.max_length, self.spec.truncation)

    def width(self, enc: Encoded) -> int:
        """The padded width ``enc`` gets when it runs alone."""
        m = self.spec.pad_to_multiple_of
        return -(-len(enc.ids) // m) * m

    def run(self, encoded: Sequence[Encoded]) -> list[dict[str, Any]]:
        """Answer encoded texts as one batch (or one batch per padded width, see the class)."""
        return [self.answer(s, e) for s, e in zip(self.scores(encoded), encoded, strict=True)]

    def scores(self, encoded: Sequence[Encoded]) -> list[np.ndarray]:
        """Each text's label scores (``(labels,)``, or ``(tokens, labels)`` for tokens).

        The texts run in as few batches as padding allows: a model that is not
        :attr:`pad_invariant` runs one batch per padded width; otherwise the texts, sorted
        by length, are cut into the batches that minimise the padded tokens plus
        :attr:`call_cost` per run, so that short texts are not padded to a long one's width.
        """
        out: list[np.ndarray] = [np.zeros(0)] * len(encoded)
        for rows in self._batches(encoded):
            logits = self.forward([encoded[i] for i in rows])
            scores = postprocess.score(logits, self.spec.postprocess.function)
            for j, i in enumerate(rows):
                out[i] = (
                    scores[j]
                    if self.task == "text-classification"
                    else (scores[j, : len(encoded[i].ids)])
                )
        return out

    def _batches(self, encoded: Sequence[Encoded]) -> list[list[int]]:
        if not self.pad_invariant:
            groups: dict[int, list[int]] = {}
            for i, enc in enumerate(encoded):
                groups.setdefault(self.width(enc), []).append(i)
            return list(groups.values())
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].ids))
        widths = [self.width(encoded[i]) for i in order]
        return [order[a:b] for a, b in split_by_width(widths, self.call_cost)]

    def answer(self, scores: np.ndarray, enc: Encoded) -> dict[str, Any]:
        """The answer for one text from its label scores (see ``runtime.pipeline.postprocess``)."""
        post = self.spec.postprocess
        if self.task == "text-classification":
            return postprocess.classify(scores, self.labels, post.top_k)
        return postprocess.tag(scores, enc, self.labels, post)

    def forward(self, encoded: Sequence[Encoded], width: int | None = None) -> np.ndarray:
        """The model's output for a padded batch of ``encoded`` (width: at least this)."""
        feeds = self.collate(encoded, width)
        return self.session.run(feeds, [self.output])[self.output]

    def collate(self, encoded: Sequence[Encoded], width: int | None = None) -> dict[str, Any]:
        """The model's feeds for ``encoded``, padded on the right to a common width."""
        longest = max(self.width(e) for e in encoded)
        w = max(longest, width or 0)
        ids = np.full((len(encoded), w), self.encoder.pad_id, np.int64)
        mask = np.zeros((len(encoded), w), np.int64)
        for r, enc in enumerate(encoded):
            ids[r, : len(enc.ids)] = enc.ids
            mask[r, : len(enc.ids)] = 1
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return {
            n: arrays[f].astype(self._dtypes[n], copy=False) for n, f in self.spec.inputs.items()
        }

    def _probe_padding(self) -> bool:
        for text in _PROBES:
            try:
                enc = self.encode(text)
            except PipelineInputError:  # e.g. no unk_index: any id but the padding's
                some = (self.encoder.pad_id + 1) % max(self.encoder.vocab_size, 1)
                enc = Encoded((some,), ("",), (False,), (None,), "")
            alone = self.forward([enc])[0]
            padded = self.forward([enc], self.width(enc) + _PROBE_PAD)[0]
            if alone.shape[-1] != len(self.labels):
                raise PipelineError(
                    f"pipeline.json: labels: {len(self.labels)} names, but output "
                    f"{self.output!r} gives {alone.shape[-1]} scores"
                )
            if self.task == "token-classification":
                alone, padded = alone[: len(enc.ids)], padded[: len(enc.ids)]
            if not np.allclose(alone, padded, rtol=_PROBE_RTOL, atol=_PROBE_ATOL, equal_nan=True):
                return False
        return True

    def _measure_call_cost(self) -> float:
        """The fixed cost of one run, in tokens, measured.

        One short text alone and four longer ones are timed (the best of three each); the
        line through the two points gives the cost per token and the cost per run.
        """
        enc = self.encode(_PROBES[1]) if self._encodes(_PROBES[1]) else None
        if enc is None:
            return float(_MAX_CALL_COST)
        short, long = self.width(enc), self.width(enc) + 48
        timings = []
        for rows, width in ((1, short), (4, long)):
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                self.forward([enc] * rows, width)
                best = min(best, time.perf_counter() - start)
            timings.append((rows * width, best))
        (n1, t1), (n2, t2) = timings
        per_token = (t2 - t1) / (n2 - n1)
        if per_token <= 0:
            return float(_MAX_CALL_COST)
        return float(min(max((t1 - per_token * n1) / per_token, 1.0), _MAX_CALL_COST))

    def _encodes(self, text: str) -> bool:
        try:
            self.encode(text)
        except PipelineInputError:
            return False
        return True

    def __repr__(self) -> str:
        return (
            f"Pipeline(name={self.name!r}, task={self.task!r}, labels={list(self.labels)}, "
            f"backend={self.session.backend!r}, pad_invariant={self.pad_invariant}, "
            f"call_cost={self.call_cost:.0f})"
        )


def split_by_width(widths: Sequence[int], call_cost: float) -> list[tuple[int, int]]:
    """Cut ascending ``widths`` into ``[a, b)`` runs minimising ``sum(call_cost + n * max)``.

    Each run is one batch padded to its widest text: ``n * max`` tokens are computed, plus
    ``call_cost`` tokens' worth of fixed cost per run. Dynamic programming over the cut
    points (quadratic in the number of texts; a batch holds tens).
    """
    n = len(widths)
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for b in range(1, n + 1):
        for a in range(b):
            cost = best[a] + call_cost + (b - a) * widths[b - 1]
            if cost < best[b]:
                best[b], cut[b] = cost, a
    runs = []
    b = n
    while b > 0:
        runs.append((cut[b], b))
        b = cut[b]
    return runs[::-1]


def _read(folder: Path, name: str, digest: str | None) -> bytes:
    path = folder / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        what = "not a pipeline folder: " if name == SPEC_FILE else ""
        raise PipelineError(f"{what}{path} does not exist") from None
    except OSError as err:
        raise PipelineError(f"cannot read {path}: {err}") from None
    if digest is not None and hashlib.sha256(data).hexdigest() != digest:
        raise PipelineError(
            f"{path} does not match the SHA-256 that {SPEC_FILE} lists for it: the folder is "
            "being replaced, or was edited by hand; refusing a half-written pipeline"
        )
    return data


def _verify(path: Path, digest: str) -> None:
    try:
        actual = file_sha256(path)
    except OSError as err:
        raise PipelineError(f"cannot read {path}, which {SPEC_FILE} lists: {err}") from None
    if actual != digest:
        raise PipelineError(
            f"{path} does not match the SHA-256 that {SPEC_FILE} lists for it: the folder is "
            "being replaced, or was edited by hand; refusing a half-written pipeline"
        )


def _session(folder: Path, name: str, data: bytes, options: dict[str, Any]) -> Session:
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as err:
        raise PipelineError(f"{folder / name} is not an ONNX model: {err}") from None
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    model: Any = folder / name if external else proto
    try:
        return Session(model, **options)
    except Exception as err:
        raise PipelineError(f"cannot open the model {folder / name}: {err}") from err


def _check_model(spec: PipelineSpec, session: Session) -> str:
    """The output to read; raises PipelineError where the model does not fit the spec."""
    names = set(session.input_names)
    missing = sorted(names - set(spec.inputs))
    extra = sorted(set(spec.inputs) - names)
    if missing or extra:
        raise PipelineError(
            f"pipeline.json: inputs: the model's inputs are {sorted(names)}; "
            + (f"not mapped: {missing}" if missing else f"not model inputs: {extra}")
        )
    for name in spec.inputs:
        dtype = session.input_signature[name].dtype
        if dtype.kind not in "iu":
            raise PipelineError(
                f"pipeline.json: inputs.{name}: the model takes {dtype}; token ids and masks "
                "need an integer input"
            )
    output = spec.output or session.output_names[0]
    if output not in session.output_names:
        raise PipelineError(
            f"pipeline.json: output: {output!r} is not an output of the model "
            f"({list(session.output_names)})"
        )
    shape = session.output_signature[output].shape
    rank = 2 if spec.task == "text-classification" else 3
    if shape is not None and len(shape) != rank:
        raise PipelineError(
            f"pipeline.json: output: {output!r} has rank {len(shape)}; {spec.task} reads "
            f"rank {rank} ({'batch, labels' if rank == 2 else 'batch, seq, labels'})"
        )
    if shape is not None and isinstance(shape[-1], int) and shape[-1] != len(spec.labels):
        raise PipelineError(
            f"pipeline.json: labels: {len(spec.labels)} names, but output {output!r} has "
            f"{shape[-1]} scores per {'text' if rank == 2 else 'token'}"
        )
    if spec.task == "token-classification" and spec.tokenizer.ngrams > 1:
        raise PipelineError("pipeline.json: tokenizer.ngrams: token classification needs 1")
    return output
