"""Small pipelines and ONNX models for the pipeline and serving tests, and a server runner.

Models are ``tracer.nn`` modules with seeded weights, traced with batch and sequence length
dynamic: a bag-of-embeddings classifier (masking its padding, or not), a per-token tagger
with BIO labels, and the classifier as a plain ``.onnx`` file. ``Server`` starts
``graphcap serve`` in a subprocess on a free port of 127.0.0.1 and stops it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import tracer
from runtime.text import RegexTokenizer, Vocab
from tracer import nn

ROOT = Path(__file__).resolve().parent.parent
WORDS = [
    "<pad>", "<unk>", "a", "the", "film", "movie", "was", "is", "not", "very", "great", "good",
    "dull", "boring", "fun", "plot", "acting", "story", "alice", "bob", "paris", "london",
    "met", "in", "and", "but", "!",
]  # fmt: skip
TOKENS = RegexTokenizer(r"[a-z]+|!")
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TEXTS = [
    "a great film",
    "dull",
    "the plot was not very good but the acting was great !",
    "boring boring boring",
    "",
    "Alice met Bob in Paris",
    "the story is fun and the movie is great",
    "zebra",
]


def vocab() -> Vocab:
    """The test vocabulary: ``<pad>`` 0, ``<unk>`` 1 (the default index)."""
    return Vocab(WORDS, default_index=1)


class BagClassifier(nn.Module):
    """Mean of the token embeddings (over real tokens when ``masked``), then a linear layer."""

    def __init__(self, labels: int, masked: bool = True, dim: int = 8) -> None:
        super().__init__()
        self.masked = masked
        self.embedding = nn.Embedding(len(WORDS), dim, padding_idx=0)
        self.fc = nn.Linear(dim, labels)

    def forward(self, ids: tracer.Tensor) -> tracer.Tensor:
        """Logits ``(batch, labels)``."""
        vectors = self.embedding(ids)
        if not self.masked:  # the padding counts: answers depend on the batch's width
            return self.fc(vectors.mean(1))
        weights = ids.ne(0).unsqueeze(-1).float()
        return self.fc((vectors * weights).sum(1) / weights.sum(1).clamp(min=1.0))


class Tagger(nn.Module):
    """One label per token: an embedding, tanh, a linear layer."""

    def __init__(self, labels: int, dim: int = 8, vocab_size: int = len(WORDS)) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim)
        self.fc = nn.Linear(dim, labels)

    def forward(self, ids: tracer.Tensor, mask: tracer.Tensor) -> tracer.Tensor:
        """Logits ``(batch, seq, labels)``; ``mask`` zeroes the padding's logits."""
        return self.fc(self.embedding(ids).tanh()) * mask.unsqueeze(-1).float()


def trace_classifier(labels: int = 2, seed: int = 0, masked: bool = True) -> tuple[Any, Any]:
    """The classifier (eval mode) and its traced graph."""
    tracer.manual_seed(seed)
    model = BagClassifier(labels, masked).eval()
    ids = tracer.tensor(np.array([[2, 3, 4], [5, 0, 0]], dtype=np.int64))
    with tracer.no_grad():
        graph = tracer.trace(
            model, (ids,), {"ids": {0: "batch", 1: "seq"}}, output_names=["logits"]
        )
    return model, graph


def trace_tagger(seed: int = 0, vocab_size: int = len(WORDS)) -> tuple[Any, Any]:
    """The tagger (eval mode) and its traced graph."""
    tracer.manual_seed(seed)
    model = Tagger(len(TAGS), vocab_size=vocab_size).eval()
    ids = tracer.tensor(np.array([[2, 3, 4], [5, 0, 0]], dtype=np.int64))
    mask = tracer.tensor(np.array([[1, 1, 1], [1, 0, 0]], dtype=np.int64))
    dynamic = {"ids": {0: "batch", 1: "seq"}, "mask": {0: "batch", 1: "seq"}}
    with tracer.no_grad():
        graph = tracer.trace(model, (ids, mask), dynamic, output_names=["logits"])
    return model, graph


def save_classifier(folder: Path, labels: tuple[str, ...] = ("neg", "pos"), **kwargs: Any) -> Any:
    """A classifier pipeline in ``folder``; returns the eager model."""
    from runtime import save_pipeline

    seed = kwargs.pop("seed", 0)
    model, graph = trace_classifier(len(labels), seed, kwargs.pop("masked", True))
    save_pipeline(folder, graph, tokenizer=vocab(), split=TOKENS, labels=list(labels), **kwargs)
    return model


def save_tagger(folder: Path, **kwargs: Any) -> Any:
    """A BIO tagger pipeline in ``folder``; returns the eager model."""
    from runtime import save_pipeline

    model, graph = trace_tagger()
    save_pipeline(
        folder,
        graph,
        tokenizer=vocab(),
        split=TOKENS,
        labels=TAGS,
        task="token-classification",
        inputs={"ids": "input_ids", "mask": "attention_mask"},
        **kwargs,
    )
    return model


def ids_of(text: str) -> list[int]:
    """The ids the training side would feed for ``text`` (the pipeline must agree)."""
    return vocab()(TOKENS(text)) or [1]


class Server:
    """``graphcap serve ARGS`` on 127.0.0.1 and a free port, in a subprocess.

    Use as a context manager; ``url`` is the base URL, ``stderr()`` what it printed.
    """

    def __init__(self, *args: str, startup: float = 60.0) -> None:
        self.args, self.startup = [str(a) for a in args], startup
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Server:
        fd, self._path = tempfile.mkstemp(prefix="graphcap-serve-", suffix=".log")
        self._err = os.fdopen(fd, "w+")
        cmd = [sys.executable, "-m", "export.cli", "serve", *self.args, "--port", "0"]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._err, text=True
        )
        deadline = time.monotonic() + self.startup
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if match:
                self.url = match.group(1)
                break
        if not self.url:
            self.stop()
            raise RuntimeError(f"graphcap serve did not start: {self.stderr()}")
        self._wait_ready(deadline)
        return self

    def _wait_ready(self, deadline: float) -> None:
        import urllib.request

        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"graphcap serve never got ready: {self.stderr()}")

    def stderr(self) -> str:
        """What the server printed on stderr so far."""
        with open(self._path) as f:
            return f.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` and wait for the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self._err.close()
        os.unlink(self._path)
