"""tracer.metrics against scikit-learn and seqeval (when installed) and hand-checked cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tracer
from tracer import metrics as tm

# ------------------------------------------------------------------------- classification


def _random_labels(seed: int, n: int = 200, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k, n))
    return y_true, y_pred


def test_accuracy_hand_checked_and_logits():
    assert tm.accuracy_score([0, 1, 2, 2], [0, 2, 2, 2]) == 0.75
    assert tm.accuracy_score([0, 1, 2, 2], [0, 2, 2, 2], normalize=False) == 3.0
    logits = tracer.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, -1.0]])
    assert tm.accuracy(tracer.tensor([0, 1, 1]), logits) == pytest.approx(2 / 3)
    assert tm.accuracy_score([], []) == 0.0
    with pytest.raises(ValueError, match="samples"):
        tm.accuracy_score([0, 1], [0])


def test_prf_hand_checked():
    # class 0: tp 1, pred 2, true 1; class 1: tp 1, pred 1, true 2; class 2: never seen
    y_true, y_pred = [0, 1, 1], [0, 0, 1]
    p, r, f, s = tm.precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1, 2], zero_division=0
    )
    np.testing.assert_allclose(p, [0.5, 1.0, 0.0])
    np.testing.assert_allclose(r, [1.0, 0.5, 0.0])
    np.testing.assert_allclose(f, [2 / 3, 2 / 3, 0.0])
    np.testing.assert_array_equal(s, [1, 2, 0])
    p, r, f, s = tm.precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1, 2], average="macro", zero_division=math.nan
    )
    assert (p, r, f, s) == (0.75, 0.75, pytest.approx(2 / 3), None)
    with pytest.warns(tm.UndefinedMetricWarning):
        tm.precision_recall_fscore_support(y_true, y_pred, labels=[0, 1, 2])


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
@pytest.mark.parametrize("zero_division", [0, 1, math.nan])
def test_prf_matches_sklearn(average, zero_division):
    skm = pytest.importorskip("sklearn.metrics")
    for seed in range(5):
        y_true, y_pred = _random_labels(seed)
        # label 7 is never seen: exercises zero_division; label 4 is left out of `labels`
        for labels in (None, [0, 1, 2, 3, 7]):
            kw = dict(labels=labels, average=average, zero_division=zero_division)
            ours = tm.precision_recall_fscore_support(y_true, y_pred, **kw)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = skm.precision_recall_fscore_support(y_true, y_pred, **kw)
            for a, b in zip(ours, ref, strict=True):
                if b is None:
                    assert a is None
                else:
                    np.testing.assert_allclose(a, b, equal_nan=True)


def test_binary_and_string_labels_match_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 2, 50), rng.integers(0, 2, 50)
    for fn, ref in [
        (tm.precision_score, skm.precision_score),
        (tm.recall_score, skm.recall_score),
        (tm.f1_score, skm.f1_score),
    ]:
        assert fn(y_true, y_pred) == pytest.approx(ref(y_true, y_pred))
        assert fn(y_true, y_pred, pos_label=0) == pytest.approx(ref(y_true, y_pred, pos_label=0))
    words = np.array(["neg", "pos", "neu"])
    t, p = words[rng.integers(0, 3, 60)], words[rng.integers(0, 3, 60)]
    assert tm.f1_score(t, p, average="weighted") == pytest.approx(
        skm.f1_score(t, p, average="weighted")
    )
    with pytest.raises(ValueError, match="multiclass"):
        tm.f1_score([0, 1, 2], [0, 1, 1])


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix_matches_sklearn(normalize):
    skm = pytest.importorskip("sklearn.metrics")
    y_true, y_pred = _random_labels(3)
    for labels in (None, [4, 0, 2, 9]):
        ours = tm.confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
        ref = skm.confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
        np.testing.assert_allclose(ours, ref)


def test_confusion_matrix_hand_checked():
    cm = tm.confusion_matrix(["a", "b", "b", "c"], ["a", "a", "b", "c"])
    np.testing.assert_array_equal(cm, [[1, 0, 0], [1, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(
        tm.confusion_matrix([0, 0, 1], [0, 1, 1], labels=[0, 1, 2], normalize="true"),
        [[0.5, 0.5, 0], [0, 1, 0], [0, 0, 0]],
    )


def test_plot_confusion_matrix(tmp_path):
    pytest.importorskip("matplotlib")
    cm = tm.confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2])
    out = tm.plot_confusion_matrix(cm, ["neg", "neu", "pos"], tmp_path / "cm.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="square"):
        tm.plot_confusion_matrix(cm, ["a", "b"], tmp_path / "bad.png")


def test_plot_confusion_matrix_without_matplotlib(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        tm.plot_confusion_matrix(np.eye(2, dtype=int), ["a", "b"], tmp_path / "cm.png")


# -------------------------------------------------------------------------- entity-level

TRUE = [
    ["O", "B-PER", "I-PER", "O", "B-LOC"],
    ["B-ORG", "I-ORG", "O", "B-PER", "O", "O"],
    ["I-MISC", "I-MISC", "O", "B-LOC", "I-LOC"],
]
PRED = [
    ["O", "B-PER", "I-PER", "O", "O"],
    ["B-ORG", "O", "O", "B-PER", "I-PER", "O"],
    ["B-MISC", "I-MISC", "O", "I-LOC", "I-LOC"],
]


def test_get_entities_hand_checked():
    # an I- with no B- starts an entity (conlleval); a type change splits one
    assert tm.get_entities(["I-PER", "I-PER", "O", "B-LOC", "I-ORG"]) == [
        ("PER", 0, 1),
        ("LOC", 3, 3),
        ("ORG", 4, 4),
    ]
    assert tm.get_entities(["B-PER", "E-PER", "S-LOC", "I-LOC", "E-LOC"]) == [
        ("PER", 0, 1),
        ("LOC", 2, 2),
        ("LOC", 3, 4),
    ]
    # sentences are joined with an O between them
    assert tm.get_entities([["B-A"], ["I-A"]]) == [("A", 0, 0), ("A", 2, 2)]


def test_entity_metrics_hand_checked():
    # true: PER x2, LOC x2, ORG, MISC (I- run); found: PER in sentence 0, LOC and MISC in 2
    p, r, f, s = tm.entity_precision_recall_fscore_support(TRUE, PRED)
    assert tm.entity_types(TRUE, PRED) == ["LOC", "MISC", "ORG", "PER"]
    np.testing.assert_array_equal(s, [2, 1, 1, 2])
    np.testing.assert_allclose(p, [1.0, 1.0, 0.0, 0.5])  # LOC 1/1, MISC 1/1, ORG 0/1, PER 1/2
    np.testing.assert_allclose(r, [0.5, 1.0, 0.0, 0.5])
    np.testing.assert_allclose(f, [2 / 3, 1.0, 0.0, 0.5])
    assert tm.entity_precision_score(TRUE, PRED) == pytest.approx(3 / 5)
    assert tm.entity_recall_score(TRUE, PRED) == pytest.approx(3 / 6)
    assert tm.entity_f1_score(TRUE, PRED) == pytest.approx(2 * 0.6 * 0.5 / 1.1)
    # strict IOB2: the I-MISC/I-LOC runs without a B- do not count
    p, _, _, s = tm.entity_precision_recall_fscore_support(TRUE, PRED, mode="strict")
    np.testing.assert_array_equal(s, [2, 0, 1, 2])  # MISC only in the predictions
    np.testing.assert_allclose(p, [0.0, 0.0, 0.0, 0.5])  # B-LOC..O and I-LOC runs miss
    assert tm.token_accuracy(TRUE, PRED) == pytest.approx(11 / 16)
    with pytest.raises(ValueError, match="sentence 0"):
        tm.entity_f1_score([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="not allowed"):
        tm.entity_f1_score([["E-PER"]], [["O"]], mode="strict", scheme="IOB2")


def _random_tags(seed: int, scheme: str, n_sent: int = 60) -> list[list[str]]:
    """Random tag sequences; sentence lengths depend on ``n_sent`` only, not on ``seed``."""
    lengths = np.random.default_rng(n_sent).integers(1, 12, n_sent)
    rng = np.random.default_rng(seed)
    prefixes = list("BIO") if scheme == "IOB2" else list("BIOES")
    types = ["PER", "LOC", "ORG"]
    return [
        [
            "O" if (pre := rng.choice(prefixes)) == "O" else f"{pre}-{rng.choice(types)}"
            for _ in range(n)
        ]
        for n in lengths
    ]


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
@pytest.mark.parametrize("zero_division", ["warn", 0, 1])
def test_entity_metrics_match_seqeval_lenient(average, zero_division):
    seqeval = pytest.importorskip("seqeval.metrics.sequence_labeling")
    for seed in range(6):
        y_true = _random_tags(seed, "IOBES")
        y_pred = _random_tags(seed + 100, "IOBES")
        assert tm.get_entities(y_true) == seqeval.get_entities(y_true)
        ours = tm.entity_precision_recall_fscore_support(
            y_true, y_pred, average=average, zero_division=zero_division
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = seqeval.precision_recall_fscore_support(
                y_true, y_pred, average=average, zero_division=zero_division
            )
        for a, b in zip(ours, ref, strict=True):
            if b is None:
                assert a is None
            else:
                np.testing.assert_allclose(a, b)


@pytest.mark.parametrize("scheme", ["IOB2", "IOBES"])
@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
def test_entity_metrics_match_seqeval_strict(scheme, average):
    pytest.importorskip("seqeval")
    from seqeval import scheme as schemes
    from seqeval.metrics import v1

    for seed in range(6):
        y_true = _random_tags(seed, scheme)
        y_pred = _random_tags(seed + 50, scheme)
        ours = tm.entity_precision_recall_fscore_support(
            y_true, y_pred, average=average, mode="strict", scheme=scheme, zero_division=0
        )
        ref = v1.precision_recall_fscore_support(
            y_true, y_pred, average=average, scheme=getattr(schemes, scheme), zero_division=0
        )
        for a, b in zip(ours, ref, strict=True):
            if b is None:
                assert a is None
            else:
                np.testing.assert_allclose(a, b)


def test_entity_report_matches_seqeval_report():
    seqeval = pytest.importorskip("seqeval.metrics")
    ours = tm.entity_report(TRUE, PRED)
    ref = seqeval.classification_report(TRUE, PRED, output_dict=True, zero_division=0)
    for key in ref:
        for metric, ref_key in [
            ("precision", "precision"),
            ("recall", "recall"),
            ("f1", "f1-score"),
        ]:
            assert ours[key][metric] == pytest.approx(ref[key][ref_key]), (key, metric)
        assert ours[key]["support"] == ref[key]["support"]
