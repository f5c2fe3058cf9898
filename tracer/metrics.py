"""Evaluation metrics for text classifiers and sequence taggers.

Classification metrics follow scikit-learn's definitions, arguments and ``zero_division``
rules (``accuracy_score``, ``precision_recall_fscore_support``, ``confusion_matrix``).
Entity metrics over BIO/IOB2/IOBES tag sequences follow ``seqeval``: the default lenient mode
(conlleval's chunking, where an ``I-`` tag with no ``B-`` before it starts an entity) and
the strict mode with a scheme (only well-formed entities count). Inputs may be lists, NumPy
arrays or ``tracer`` tensors.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

_AVERAGES = (None, "binary", "micro", "macro", "weighted")


def _array(x: Any) -> np.ndarray:
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.detach().numpy() if hasattr(x, "detach") else x.numpy()
    return np.asarray(x)


def _labels_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _array(y_true), _array(y_pred)
    if p.ndim == t.ndim + 1 and p.dtype.kind == "f":
        p = p.argmax(-1)  # scores or logits: the predicted class is the largest
    t, p = t.reshape(-1), p.reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred have {t.size} and {p.size} samples; they must match")
    return t, p


def accuracy_score(y_true: Any, y_pred: Any, normalize: bool = True) -> float:
    """The fraction (or with ``normalize=False`` the count) of correct predictions.

    ``y_pred`` may hold class scores with one more dimension than ``y_true``: its argmax
    over the last axis is the prediction.
    """
    t, p = _labels_pair(y_true, y_pred)
    correct = float(np.sum(t == p))
    return (correct / t.size if t.size else 0.0) if normalize else correct


accuracy = accuracy_score


def _zero_value(zero_division: Any) -> float:
    if isinstance(zero_division, str):
        if zero_division != "warn":
            raise ValueError(f"zero_division must be 'warn', 0, 1 or nan, got {zero_division!r}")
        return 0.0
    return float(zero_division)


def _divide(num: np.ndarray, den: np.ndarray, what: str, zero_division: Any) -> np.ndarray:
    mask = den == 0
    out = np.divide(num, np.where(mask, 1, den), dtype=np.float64)
    if mask.any():
        out[mask] = _zero_value(zero_division)
        if zero_division == "warn":
            warnings.warn(
                f"{what} is ill-defined and set to 0.0 in labels with no samples; "
                "use zero_division to control this",
                UndefinedMetricWarning,
                stacklevel=3,
            )
    return out


class UndefinedMetricWarning(UserWarning):
    """A metric divided by zero and took the ``zero_division`` value."""


def _nanaverage(a: np.ndarray, weights: np.ndarray | None) -> float:
    keep = ~np.isnan(a)
    if a.size == 0 or not keep.any():
        return float("nan")
    if weights is None or weights[keep].sum() == 0:
        return float(np.mean(a[keep]))
    return float(np.average(a[keep], weights=weights[keep]))


def precision_recall_fscore_support(
    y_true: Any,
    y_pred: Any,
    beta: float = 1.0,
    labels: Sequence[Any] | None = None,
    pos_label: Any = 1,
    average: str | None = None,
    zero_division: Any = "warn",
) -> tuple[Any, Any, Any, Any]:
    """Precision, recall, F-beta and support, as scikit-learn computes them.

    Args:
        y_true: the true labels.
        y_pred: the predicted labels (or scores, reduced by argmax).
        beta: the weight of recall in the F-score.
        labels: the labels to report, in order; defaults to the sorted labels present.
        pos_label: the positive class for ``average="binary"``.
        average: ``None`` (per label), ``"binary"``, ``"micro"``, ``"macro"``, ``"weighted"``.
        zero_division: the value of a metric whose denominator is zero: 0, 1, ``nan``, or
            ``"warn"`` (0 and a warning). F is ``(1+b^2)tp / ((1+b^2)tp + b^2 fn + fp)``.

    Returns:
        ``(precision, recall, fbeta, support)``: arrays per label, or floats and ``None``
        when averaged.

    Raises:
        ValueError: an unknown average, or ``"binary"`` on more than two classes.
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
    t, p = _labels_pair(y_true, y_pred)
    present = np.unique(np.concatenate([t, p]))
    if average == "binary":
        if len(present) > 2:
            raise ValueError(
                f"target is multiclass ({len(present)} labels) but average='binary'; "
                "choose average='micro', 'macro' or 'weighted'"
            )
        if pos_label not in present and len(present) >= 2:
            raise ValueError(f"pos_label={pos_label!r} is not a valid label: {present.tolist()}")
        labels = [pos_label]
    lab = present if labels is None else np.asarray(list(labels))
    tp = np.array([np.sum((t == c) & (p == c)) for c in lab], dtype=np.int64)
    pred_sum = np.array([np.sum(p == c) for c in lab], dtype=np.int64)
    true_sum = np.array([np.sum(t == c) for c in lab], dtype=np.int64)
    if average == "micro":
        tp, pred_sum, true_sum = (
            tp.sum(keepdims=True),
            pred_sum.sum(keepdims=True),
            true_sum.sum(keepdims=True),
        )
    precision = _divide(tp, pred_sum, "precision", zero_division)
    recall = _divide(tp, true_sum, "recall", zero_division)
    b2 = beta * beta
    f = _divide((1 + b2) * tp, b2 * true_sum + pred_sum, "F-score", zero_division)
    if average is None:
        return precision, recall, f, true_sum
    weights = true_sum.astype(np.float64) if average == "weighted" else None
    return (
        _nanaverage(precision, weights),
        _nanaverage(recall, weights),
        _nanaverage(f, weights),
        None,
    )


def precision_score(y_true: Any, y_pred: Any, **kwargs: Any) -> Any:
    """Precision; the arguments of :func:`precision_recall_fscore_support` (default binary)."""
    kwargs.setdefault("average", "binary")
    return precision_recall_fscore_support(y_true, y_pred, **kwargs)[0]


def recall_score(y_true: Any, y_pred: Any, **kwargs: Any) -> Any:
    """Recall; the arguments of :func:`precision_recall_fscore_support` (default binary)."""
    kwargs.setdefault("average", "binary")
    return precision_recall_fscore_support(y_true, y_pred, **kwargs)[1]


def f1_score(y_true: Any, y_pred: Any, **kwargs: Any) -> Any:
    """F1; the arguments of :func:`precision_recall_fscore_support` (default binary)."""
    kwargs.setdefault("average", "binary")
    return precision_recall_fscore_support(y_true, y_pred, beta=1.0, **kwargs)[2]


def confusion_matrix(
    y_true: Any, y_pred: Any, labels: Sequence[Any] | None = None, normalize: str | None = None
) -> np.ndarray:
    """``C[i, j]``: samples of true label ``labels[i]`` predicted as ``labels[j]``.

    Samples whose true or predicted label is not in ``labels`` are left out.

    Args:
        y_true: the true labels.
        y_pred: the predicted labels.
        labels: the labels, in order; defaults to the sorted labels present.
        normalize: ``"true"`` (rows sum to 1), ``"pred"`` (columns), ``"all"``, or ``None``
            for counts. Empty rows or columns give zeros.

    Raises:
        ValueError: an unknown ``normalize``.
    """
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be 'true', 'pred', 'all' or None, got {normalize!r}")
    t, p = _labels_pair(y_true, y_pred)
    lab = np.unique(np.concatenate([t, p])) if labels is None else list(labels)
    index = {(c.item() if hasattr(c, "item") else c): i for i, c in enumerate(lab)}
    cm = np.zeros((len(lab), len(lab)), dtype=np.int64)
    for a, b in zip(t.tolist(), p.tolist(), strict=True):
        if a in index and b in index:
            cm[index[a], index[b]] += 1
    if normalize is None:
        return cm
    axis = {"true": 1, "pred": 0, "all": None}[normalize]
    total = cm.sum(axis=axis, keepdims=axis is not None)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(cm / total)


def plot_confusion_matrix(
    cm: Any, labels: Sequence[str], path: str | Path, title: str = "Confusion matrix"
) -> Path:
    """Draw ``cm`` (true labels down, predictions across) with its values to a PNG file.

    Raises:
        ImportError: matplotlib is not installed (the message gives the pip command).
        ValueError: ``cm`` is not square or does not match ``labels``.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "plot_confusion_matrix needs matplotlib: pip install matplotlib"
        ) from None
    cm = _array(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(labels):
        raise ValueError(f"a {len(labels)}-label confusion matrix must be square, got {cm.shape}")
    size = 2.5 + 0.5 * len(labels)
    fig = Figure(figsize=(size + 1, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(cm, cmap="Blues")
    fig.colorbar(image, ax=ax)
    ticks = range(len(labels))
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticklabels(labels)
    threshold = (cm.max() + cm.min()) / 2 if cm.size else 0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            text = f"{cm[i, j]:.2f}" if cm.dtype.kind == "f" else str(cm[i, j])
            color = "white" if cm[i, j] > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", color=color)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png", dpi=100)
    return path


# ------------------------------------------------------------------- entity-level (seqeval)


def _split_tag(tag: str, suffix: bool) -> tuple[str, str]:
    if suffix:
        return tag[-1], tag[:-1].rsplit("-", maxsplit=1)[0] or "_"
    return tag[0], tag[1:].split("-", maxsplit=1)[-1] or "_"


def _chunk_ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _chunk_starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def get_entities(seq: Sequence[Any], suffix: bool = False) -> list[tuple[str, int, int]]:
    """Entities ``(type, start, end)`` (inclusive end) in a tag sequence, as seqeval's.

    The lenient (conlleval) rules: an entity starts at ``B-``/``S-``, or at ``I-``/``E-``
    after ``O`` or after an entity of another type; it ends before ``B-``/``S-``/``O``, after
    ``E-``/``S-``, or where the type changes. A list of sentences is joined with an ``O``
    between them, and positions count in that joined sequence.
    """
    if any(isinstance(s, list) for s in seq):
        seq = [tag for sent in seq for tag in [*sent, "O"]]
    prev_tag, prev_type, begin = "O", "", 0
    chunks = []
    for i, chunk in enumerate([*seq, "O"]):
        tag, type_ = _split_tag(chunk, suffix)
        if _chunk_ends(prev_tag, tag, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _chunk_starts(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


# Strict schemes: (prev prefix, prefix, same type?) patterns; None matches anything.
_SCHEMES: dict[str, dict[str, Any]] = {
    "IOB2": {
        "allowed": "IOB",
        "start": {(None, "B", None)},
        "inside": {("B", "I", True), ("I", "I", True)},
        "end": {
            ("I", "O", None),
            ("I", "I", False),
            ("I", "B", None),
            ("B", "O", None),
            ("B", "I", False),
            ("B", "B", None),
        },
    },
    "IOBES": {
        "allowed": "IOBES",
        "start": {(None, "B", None), (None, "S", None)},
        "inside": {("B", "I", True), ("B", "E", True), ("I", "I", True), ("I", "E", True)},
        "end": {("S", None, None), ("E", None, None)},
    },
}


def _matches(patterns: set[Any], prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    same = prev[1] == cur[1]
    return any(
        (a is None or a == prev[0]) and (b is None or b == cur[0]) and (s is None or s == same)
        for a, b, s in patterns
    )


def _strict_entities(sent: Sequence[str], scheme: str, suffix: bool) -> list[tuple[str, int, int]]:
    """Well-formed entities ``(type, start, end_exclusive)`` of one sentence, as seqeval's."""
    rules = _SCHEMES[scheme]
    toks = []
    for tag in [*sent, "O"]:
        prefix = tag[-1] if suffix else tag[0]
        if prefix not in rules["allowed"]:
            raise ValueError(f"tag {tag!r} is not allowed in the {scheme} scheme")
        body = tag[:-1] if suffix else tag[1:]
        toks.append((prefix, body.strip("-") or "_"))
    out, i, prev = [], 0, ("O", "_")
    while i < len(toks):
        if _matches(rules["start"], prev, toks[i]):
            end, last = i + 1, toks[i]
            while end < len(toks) and _matches(rules["inside"], last, toks[end]):
                last, end = toks[end], end + 1
            if _matches(rules["end"], toks[end - 1], toks[end]):
                out.append((toks[i][1], i, end))
            i = end
        else:
            i += 1
        prev = toks[i - 1]
    return out


def _sentences(y: Sequence[Any]) -> Sequence[Sequence[str]]:
    """A flat sequence of tags becomes one sentence."""
    return [y] if len(y) and isinstance(y[0], str) else y


def _entity_sets(
    y: Sequence[Sequence[str]], mode: str | None, scheme: str, suffix: bool
) -> dict[str, set[tuple[int, ...]]]:
    sets: dict[str, set[tuple[int, ...]]] = defaultdict(set)
    y = _sentences(y)
    if mode == "strict":
        for k, sent in enumerate(y):
            for type_, start, end in _strict_entities(list(sent), scheme, suffix):
                sets[type_].add((k, start, end))
    else:
        for type_, start, end in get_entities([list(s) for s in y], suffix):
            sets[type_].add((start, end))
    return sets


def entity_precision_recall_fscore_support(
    y_true: Sequence[Sequence[str]],
    y_pred: Sequence[Sequence[str]],
    average: str | None = None,
    beta: float = 1.0,
    zero_division: Any = "warn",
    mode: str | None = None,
    scheme: str = "IOB2",
    suffix: bool = False,
) -> tuple[Any, Any, Any, Any]:
    """Entity-level precision, recall, F-beta and support per type, as ``seqeval``'s.

    An entity counts as found when type, start and end all match. Types are sorted by name.
    As in seqeval, F is ``(1+b^2)PR / (b^2 P + R)`` (0 when both are 0), and a weighted
    average with no true entity gives ``zero_division`` (or 0 for ``"warn"``).

    Args:
        y_true: true tags, one list per sentence.
        y_pred: predicted tags, same shape.
        average: ``None`` (per type), ``"micro"``, ``"macro"`` or ``"weighted"``.
        beta: the weight of recall.
        zero_division: 0, 1 or ``"warn"``.
        mode: ``None`` for conlleval's lenient chunking, ``"strict"`` to count only
            well-formed entities of ``scheme``.
        scheme: ``"IOB2"`` or ``"IOBES"`` (strict mode).
        suffix: tags are written ``PER-B`` rather than ``B-PER``.

    Returns:
        ``(precision, recall, fbeta, support)``: arrays per type (see
        :func:`entity_types`), or when averaged floats and the total number of true entities.

    Raises:
        ValueError: sentences of different lengths, an unknown average or scheme, or (strict
            mode) a tag the scheme does not allow.
    """
    if average not in (None, "micro", "macro", "weighted"):
        raise ValueError(f"average must be None, 'micro', 'macro' or 'weighted', got {average!r}")
    if mode == "strict" and scheme not in _SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(_SCHEMES)}, got {scheme!r}")
    y_true, y_pred = _sentences(y_true), _sentences(y_pred)
    _check_lengths(y_true, y_pred)
    true_sets = _entity_sets(y_true, mode, scheme, suffix)
    pred_sets = _entity_sets(y_pred, mode, scheme, suffix)
    names = sorted(set(true_sets) | set(pred_sets))
    tp = np.array([len(true_sets[n] & pred_sets[n]) for n in names], dtype=np.int64)
    pred_sum = np.array([len(pred_sets[n]) for n in names], dtype=np.int64)
    true_sum = np.array([len(true_sets[n]) for n in names], dtype=np.int64)
    if average == "micro":
        tp, pred_sum, true_sum = (
            tp.sum(keepdims=True),
            pred_sum.sum(keepdims=True),
            true_sum.sum(keepdims=True),
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        zd = 0 if zero_division == "warn" else zero_division
        precision = _divide(tp, pred_sum, "precision", zd)
        recall = _divide(tp, true_sum, "recall", zd)
    b2 = beta * beta
    denom = b2 * precision + recall
    f = (1 + b2) * precision * recall / np.where(denom == 0, 1, denom)
    if average is None:
        return precision, recall, f, true_sum
    support = int(true_sum.sum())
    if average == "weighted":
        if support == 0:
            z = _zero_value(zd)
            return (z, z, z, 0) if pred_sum.sum() == 0 else (0.0, z, 0.0, 0)
        weights = true_sum
    else:
        weights = None
    if precision.size == 0:
        return float("nan"), float("nan"), float("nan"), 0
    avg = [float(np.average(m, weights=weights)) for m in (precision, recall, f)]
    return avg[0], avg[1], avg[2], support


def _check_lengths(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true sentences but {len(y_pred)} predicted")
    for k, (a, b) in enumerate(zip(y_true, y_pred, strict=True)):
        if len(a) != len(b):
            raise ValueError(f"sentence {k}: {len(a)} true tags but {len(b)} predicted")


def entity_types(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], **kwargs: Any
) -> list[str]:
    """The sorted entity types found in either sequence (the rows of the per-type arrays)."""
    mode, scheme, suffix = (
        kwargs.get("mode"),
        kwargs.get("scheme", "IOB2"),
        kwargs.get("suffix", False),
    )
    return sorted(
        set(_entity_sets(y_true, mode, scheme, suffix))
        | set(_entity_sets(y_pred, mode, scheme, suffix))
    )


def entity_f1_score(y_true: Any, y_pred: Any, average: str = "micro", **kwargs: Any) -> Any:
    """Entity-level F1 (micro by default, as seqeval's ``f1_score``)."""
    return entity_precision_recall_fscore_support(y_true, y_pred, average=average, **kwargs)[2]


def entity_precision_score(y_true: Any, y_pred: Any, average: str = "micro", **kwargs: Any) -> Any:
    """Entity-level precision (micro by default)."""
    return entity_precision_recall_fscore_support(y_true, y_pred, average=average, **kwargs)[0]


def entity_recall_score(y_true: Any, y_pred: Any, average: str = "micro", **kwargs: Any) -> Any:
    """Entity-level recall (micro by default)."""
    return entity_precision_recall_fscore_support(y_true, y_pred, average=average, **kwargs)[1]


def entity_report(y_true: Any, y_pred: Any, **kwargs: Any) -> dict[str, dict[str, float]]:
    """Per-type and averaged ``{precision, recall, f1, support}``, like seqeval's report dict.

    Keys: each entity type, then ``"micro avg"``, ``"macro avg"`` and ``"weighted avg"``.
    """
    names = entity_types(y_true, y_pred, **kwargs)
    p, r, f, s = entity_precision_recall_fscore_support(y_true, y_pred, **kwargs)
    report = {
        n: {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, n in enumerate(names)
    }
    total = int(np.sum(s))
    for avg in ("micro", "macro", "weighted"):
        ap, ar, af, _ = entity_precision_recall_fscore_support(
            y_true, y_pred, average=avg, **kwargs
        )
        report[f"{avg} avg"] = {"precision": ap, "recall": ar, "f1": af, "support": total}
    return report


def token_accuracy(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> float:
    """The fraction of tags predicted right over all tokens (seqeval's ``accuracy_score``)."""
    _check_lengths(y_true, y_pred)
    flat_t = [t for s in y_true for t in s]
    flat_p = [t for s in y_pred for t in s]
    return sum(a == b for a, b in zip(flat_t, flat_p, strict=True)) / len(flat_t) if flat_t else 0.0
