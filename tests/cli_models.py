"""Small model factories for ``graphcap export`` tests (``tests.cli_models:make_mlp`` ...).

Each factory returns a model, or ``(model, example_inputs)``; weights come from the seeded
``tracer`` RNG, so the command's ``--seed`` fixes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tracer as gc


class MLP:
    """x[batch, 8] -> relu(x @ w1 + b1) @ w2 + b2 -> softmax over 4 classes."""

    def __init__(self) -> None:
        self.w1 = gc.randn(8, 16) * 0.3
        self.b1 = gc.randn(16) * 0.1
        self.w2 = gc.randn(16, 4) * 0.3
        self.b2 = gc.zeros(4)

    def forward(self, x: gc.Tensor) -> gc.Tensor:
        h = (x @ self.w1 + self.b1).relu()
        return (h @ self.w2 + self.b2).softmax(-1)

    def __call__(self, x: gc.Tensor) -> gc.Tensor:
        return self.forward(x)


def make_mlp() -> MLP:
    """The MLP, inputs declared on the command line."""
    return MLP()


class Reshaper:
    """x[batch, seq, 8]: merges batch and seq with ``x.shape``, projects, splits them back."""

    def __init__(self) -> None:
        self.w = gc.randn(8, 6) * 0.3

    def forward(self, x: gc.Tensor) -> gc.Tensor:
        b, t, d = x.shape
        flat = x.reshape(b * t, d) @ self.w
        return flat.reshape(b, t, 6).tanh()

    def __call__(self, x: gc.Tensor) -> gc.Tensor:
        return self.forward(x)


def make_reshaper() -> Reshaper:
    """The reshaping model, inputs declared on the command line."""
    return Reshaper()


def make_tagger() -> tuple[Any, tuple[np.ndarray, gc.Tensor]]:
    """A token tagger that brings its own example inputs: ids (int64, vocab 20) and a mask."""
    table = gc.randn(20, 8) * 0.5
    proj = gc.randn(8, 3) * 0.5

    def tagger(ids: gc.Tensor, mask: gc.Tensor) -> tuple[gc.Tensor, gc.Tensor]:
        b, t = ids.shape
        emb = table.index_select(0, ids.reshape(-1)).reshape(b, t, 8)
        logits = (emb @ proj) * mask.unsqueeze(-1)
        return logits, logits.argmax(-1)

    ids = np.random.default_rng(0).integers(0, 20, size=(2, 5))
    return tagger, (ids, gc.ones(2, 5))


def make_branchy() -> Any:
    """Wrong on purpose: a Python branch on the batch size is baked at trace time."""

    def branchy(x: gc.Tensor) -> gc.Tensor:
        scale = 2.0 if x.shape[0] == 2 else 3.0
        return (x * scale).sum(-1)

    return branchy


def make_not_a_model() -> int:
    """A factory that returns no model (a usage error)."""
    return 42


def make_broken() -> Any:
    """A factory that raises."""
    raise RuntimeError("weights file missing")


def make_tiny_lm() -> Any:
    """A small decoder-only model of the step protocol (for ``--generate``), EOS token 3."""
    from tests.generation_models import TinyLM

    return TinyLM()


class LSTMLanguageModel(gc.nn.Module):
    """ids[batch, seq] and state (h, c) -> (logits[batch, seq, vocab], (h, c)).

    A stateful language model whose state is a nested argument and a nested result.
    """

    def __init__(self, vocab: int = 13, dim: int = 6, hidden: int = 5) -> None:
        super().__init__()
        self.embed = gc.nn.Embedding(vocab, dim, padding_idx=0)
        self.lstm = gc.nn.LSTM(dim, hidden, batch_first=True)
        self.head = gc.nn.Linear(hidden, vocab)

    def forward(
        self, ids: gc.Tensor, state: tuple[gc.Tensor, gc.Tensor]
    ) -> tuple[gc.Tensor, tuple[gc.Tensor, gc.Tensor]]:
        out, (h, c) = self.lstm(self.embed(ids), state)
        return self.head(out), (h, c)


def make_lstm_lm() -> tuple[LSTMLanguageModel, tuple[gc.Tensor, tuple[gc.Tensor, gc.Tensor]]]:
    """The LSTM language model with example ids (vocab 13) and a (h, c) state."""
    model = LSTMLanguageModel()
    ids = gc.randint(0, 13, (2, 4))
    return model, (ids, (gc.randn(1, 2, 5), gc.randn(1, 2, 5)))
