"""Model outputs -> answers: scores (softmax, sigmoid), the top labels, entity spans.

- text classification: ``{"label": "fresh", "score": 0.93, "scores": [{"label": "fresh",
  "score": 0.93}, {"label": "rotten", "score": 0.07}]}`` (``scores`` sorted, best first,
  cut to ``top_k``);
- token classification: ``{"tokens": [...], "tags": [...], "entities": [{"entity": "PER",
  "score": 0.98, "start": 0, "end": 5, "word": "Alice", "tokens": [0, 2]}]}``: one tag per
  non-special token, and with ``aggregation: "bio"`` the B-/I- runs grouped into spans
  (``start``/``end`` are characters of the text, ``tokens`` the ``[first, last + 1)`` range
  into ``tokens``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime.pipeline.encoders import Encoded
from runtime.pipeline.spec import PostprocessSpec


def score(logits: np.ndarray, function: str) -> np.ndarray:
    """``softmax`` or ``sigmoid`` over the last axis (``none``: the logits as they are)."""
    x = np.asarray(logits)
    if function == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if function == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    return x


def classify(scores: np.ndarray, labels: Sequence[str], top_k: int | None) -> dict[str, Any]:
    """The answer for one text from its label scores (one row)."""
    order = np.argsort(-scores, kind="stable")[: top_k or len(labels)]
    ranked = [{"label": labels[i], "score": float(scores[i])} for i in order]
    return {"label": ranked[0]["label"], "score": ranked[0]["score"], "scores": ranked}


def tag(
    scores: np.ndarray, enc: Encoded, labels: Sequence[str], spec: PostprocessSpec
) -> dict[str, Any]:
    """The answer for one text from its per-position label scores ``(seq, labels)``."""
    keep = [i for i, s in enumerate(enc.special) if not s]
    best = scores[keep].argmax(axis=-1) if keep else np.zeros(0, np.int64)
    tags = [labels[int(k)] for k in best]
    probs = [float(scores[i, int(k)]) for i, k in zip(keep, best, strict=True)]
    tokens = [enc.tokens[i] for i in keep]
    spans = [enc.spans[i] for i in keep]
    out: dict[str, Any] = {"tokens": tokens, "tags": tags}
    if spec.aggregation == "bio":
        out["entities"] = [
            _entity(enc.text, tokens, spans, probs, kind, start, end)
            for kind, start, end in bio_chunks(tags, spec.ignore_labels)
        ]
    return out


def bio_chunks(tags: Sequence[str], ignore: Sequence[str] = ("O",)) -> list[tuple[str, int, int]]:
    """``(type, first, last + 1)`` of each entity in BIO tags.

    ``B-X`` starts an entity of type X; ``I-X`` continues one of type X and otherwise starts
    one (as seqeval reads IOB2 leniently); a tag without a prefix is its own type, continued
    by the same tag; tags in ``ignore`` end entities.
    """
    chunks: list[tuple[str, int, int]] = []
    kind: str | None = None
    start = 0
    for i, t in enumerate(tags):
        if t in ignore:
            prefix, name = "O", None
        elif t[:2] in ("B-", "I-"):
            prefix, name = t[0], t[2:]
        else:
            prefix, name = "I", t
        if kind is not None and (prefix != "I" or name != kind):
            chunks.append((kind, start, i))
            kind = None
        if name is not None and kind is None:
            kind, start = name, i
    if kind is not None:
        chunks.append((kind, start, len(tags)))
    return chunks


def _entity(
    text: str,
    tokens: Sequence[str],
    spans: Sequence[tuple[int, int] | None],
    probs: Sequence[float],
    kind: str,
    start: int,
    end: int,
) -> dict[str, Any]:
    first, last = spans[start], spans[end - 1]
    a: int | None = None
    b: int | None = None
    if first is not None and last is not None:
        a, b = first[0], last[1]
        word = text[a:b]
    else:
        word = " ".join(tokens[start:end]).replace(" ##", "")
    return {
        "entity": kind,
        "score": float(np.mean(probs[start:end])),
        "start": a,
        "end": b,
        "word": word,
        "tokens": [start, end],
    }
