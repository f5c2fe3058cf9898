"""A small decoder-only language model that follows the step protocol of docs/generation.md.

GPT-2's layout in miniature (token and position embeddings, pre-norm attention with a KV
cache, an MLP, a tied-free head), written with ``tracer`` ops so it runs eagerly and traces
with every size dynamic. Tests of the exported generation loop use it where a pretrained
checkpoint would be too slow to build.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import tracer
from tracer import nn
from tracer.nn import functional as F  # noqa: N812 - PyTorch's short name


@dataclass
class TinyConfig:
    """Sizes and special tokens."""

    vocab_size: int = 37
    n_positions: int = 64
    n_embd: int = 16
    n_head: int = 2
    n_layer: int = 2
    eos_token_id: int = 3
    pad_token_id: int = 0


class _Block(nn.Module):
    def __init__(self, c: TinyConfig) -> None:
        super().__init__()
        self.n_head, self.head_dim = c.n_head, c.n_embd // c.n_head
        self.ln_1 = nn.LayerNorm(c.n_embd)
        self.qkv = nn.Linear(c.n_embd, 3 * c.n_embd)
        self.proj = nn.Linear(c.n_embd, c.n_embd)
        self.ln_2 = nn.LayerNorm(c.n_embd)
        self.fc = nn.Linear(c.n_embd, 4 * c.n_embd)
        self.out = nn.Linear(4 * c.n_embd, c.n_embd)

    def _heads(self, x: tracer.Tensor) -> tracer.Tensor:
        b, t = x.shape[0], x.shape[1]
        return x.reshape(b, t, self.n_head, self.head_dim).transpose(1, 2)

    def forward(
        self, h: tracer.Tensor, allowed: tracer.Tensor, k_past: tracer.Tensor, v_past: tracer.Tensor
    ) -> tuple[tracer.Tensor, tracer.Tensor, tracer.Tensor]:
        q, k, v = self.qkv(self.ln_1(h)).chunk(3, dim=-1)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        k = tracer.cat([k_past, k], dim=2)
        v = tracer.cat([v_past, v], dim=2)
        scores = q @ k.transpose(-1, -2) * (1.0 / math.sqrt(self.head_dim))
        scores = scores.masked_fill(allowed.logical_not(), -1e9)
        att = scores.softmax(-1) @ v
        b, t = h.shape[0], h.shape[1]
        h = h + self.proj(att.transpose(1, 2).reshape(b, t, -1))
        h = h + self.out(F.gelu(self.fc(self.ln_2(h))))
        return h, k, v


class TinyLM(nn.Module):
    """Decoder-only: ``empty_past(batch)`` and ``step``, the step protocol's two methods.

    ``step(input_ids, attention_mask, position_ids, past) -> (logits [B, V], past)``, the
    cache flat ``(k_0, v_0, k_1, v_1, ...)``.
    """

    def __init__(self, config: TinyConfig | None = None) -> None:
        super().__init__()
        c = self.config = config or TinyConfig()
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.n_positions, c.n_embd)
        self.blocks = nn.ModuleList([_Block(c) for _ in range(c.n_layer)])
        self.ln_f = nn.LayerNorm(c.n_embd)
        self.head = nn.Linear(c.n_embd, c.vocab_size, bias=False)

    def empty_past(self, batch_size: int) -> tuple[tracer.Tensor, ...]:
        """The cache of no positions: ``2 * n_layer`` tensors ``[B, H, 0, D]``."""
        c = self.config
        shape = (batch_size, c.n_head, 0, c.n_embd // c.n_head)
        return tuple(tracer.zeros(*shape) for _ in range(2 * c.n_layer))

    def step(
        self,
        input_ids: tracer.Tensor,
        attention_mask: tracer.Tensor,
        position_ids: tracer.Tensor,
        past: tuple[tracer.Tensor, ...],
    ) -> tuple[tracer.Tensor, tuple[tracer.Tensor, ...]]:
        """Next-token logits of the last position, and the cache grown by ``T`` positions."""
        t, total = input_ids.shape[1], attention_mask.shape[1]
        h = self.wte(input_ids) + self.wpe(position_ids)
        # Query i sits at position total - t + i: it sees keys up to there whose mask is 1.
        q_pos = tracer.arange(total - t, total).unsqueeze(-1)
        causal = tracer.arange(total).unsqueeze(0) <= q_pos
        allowed = causal.unsqueeze(0).unsqueeze(0) & (attention_mask == 1)[:, None, None, :]
        present = []
        for i, block in enumerate(self.blocks):
            h, k, v = block(h, allowed, past[2 * i], past[2 * i + 1])
            present += [k, v]
        logits = self.head(self.ln_f(h[:, -1]))
        return logits, tuple(present)


def reference_greedy(
    model: TinyLM, ids: np.ndarray, mask: np.ndarray, max_new: int, eos: int, pad: int
) -> np.ndarray:
    """Greedy decoding in plain Python around ``model.step``, as ``transformers`` does it."""
    positions = np.maximum(np.cumsum(mask, -1) - 1, 0) * (mask != 0)
    with tracer.no_grad():
        logits, past = model.step(
            tracer.tensor(ids), tracer.tensor(mask), tracer.tensor(positions),
            model.empty_past(ids.shape[0]),
        )  # fmt: skip
        seq, unfinished, pos = ids, np.ones(len(ids), bool), positions[:, -1:]
        for step in range(max_new):
            tokens = np.where(unfinished, logits.numpy().argmax(-1), pad)
            seq = np.concatenate([seq, tokens[:, None]], axis=1)
            unfinished &= tokens != eos
            if not unfinished.any() or step == max_new - 1:
                break
            mask = np.concatenate([mask, np.ones((len(ids), 1), mask.dtype)], axis=1)
            pos = pos + 1
            logits, past = model.step(
                tracer.tensor(tokens[:, None]), tracer.tensor(mask), tracer.tensor(pos), past
            )
    return seq


class TinySeq2Seq(nn.Module):
    """Encoder-decoder of the step protocol: ``encode``, ``empty_past`` and ``step``.

    One bidirectional encoder block; each decoder block attends to its own cache (causally)
    and to the encoder's output through ``memory``: per decoder block, the keys and values
    of the encoder states (``[B, H, S, D]``), computed once by ``encode``.
    """

    def __init__(self, config: TinyConfig | None = None) -> None:
        super().__init__()
        c = self.config = config or TinyConfig(eos_token_id=3, pad_token_id=0)
        self.embed = nn.Embedding(c.vocab_size, c.n_embd)
        self.pos = nn.Embedding(c.n_positions, c.n_embd)
        self.encoder = _Block(c)
        self.blocks = nn.ModuleList([_Block(c) for _ in range(c.n_layer)])
        self.cross = nn.ModuleList([nn.Linear(c.n_embd, 2 * c.n_embd) for _ in range(c.n_layer)])
        self.head = nn.Linear(c.n_embd, c.vocab_size, bias=False)

    def encode(
        self, input_ids: tracer.Tensor, attention_mask: tracer.Tensor
    ) -> tuple[tracer.Tensor, ...]:
        """Per decoder block, the encoder states' keys and values."""
        s = input_ids.shape[1]
        h = self.embed(input_ids) + self.pos(tracer.arange(s)).unsqueeze(0)
        allowed = (attention_mask == 1)[:, None, None, :]
        empty = self.empty_past(input_ids.shape[0])
        h, _, _ = self.encoder(h, allowed, empty[0], empty[1])
        memory = []
        for cross, block in zip(self.cross, self.blocks, strict=True):
            k, v = cross(h).chunk(2, dim=-1)
            memory += [block._heads(k), block._heads(v)]
        return tuple(memory)

    def empty_past(self, batch_size: int) -> tuple[tracer.Tensor, ...]:
        """The decoder's self-attention cache of no positions."""
        c = self.config
        shape = (batch_size, c.n_head, 0, c.n_embd // c.n_head)
        return tuple(tracer.zeros(*shape) for _ in range(2 * c.n_layer))

    def step(
        self,
        decoder_input_ids: tracer.Tensor,
        memory: tuple[tracer.Tensor, ...],
        memory_mask: tracer.Tensor,
        past: tuple[tracer.Tensor, ...],
    ) -> tuple[tracer.Tensor, tuple[tracer.Tensor, ...]]:
        """Logits of the last new position, and the self-attention cache grown."""
        t, p = decoder_input_ids.shape[1], past[0].shape[2]
        h = self.embed(decoder_input_ids) + self.pos(tracer.arange(p, p + t)).unsqueeze(0)
        q_pos = tracer.arange(p, p + t).unsqueeze(-1)
        causal = (tracer.arange(p + t).unsqueeze(0) <= q_pos).unsqueeze(0).unsqueeze(0)
        to_memory = (memory_mask == 1)[:, None, None, :]
        present = []
        for i, block in enumerate(self.blocks):
            h, k, v = block(h, causal, past[2 * i], past[2 * i + 1])
            present += [k, v]
            q = block._heads(h)
            scores = (q @ memory[2 * i].transpose(-1, -2)).masked_fill(
                to_memory.logical_not(), -1e9
            )
            att = scores.softmax(-1) @ memory[2 * i + 1]
            h = h + att.transpose(1, 2).reshape(h.shape[0], t, -1)
        return self.head(h[:, -1]), tuple(present)


def reference_greedy_seq2seq(
    model: TinySeq2Seq,
    ids: np.ndarray,
    mask: np.ndarray,
    max_new: int,
    eos: int,
    pad: int,
    start: int,
) -> np.ndarray:
    """Greedy decoding in plain Python around ``encode`` and ``step``."""
    with tracer.no_grad():
        memory = model.encode(tracer.tensor(ids), tracer.tensor(mask))
        seq = np.full((len(ids), 1), start, np.int64)
        logits, past = model.step(
            tracer.tensor(seq), memory, tracer.tensor(mask), model.empty_past(len(ids))
        )
        unfinished = np.ones(len(ids), bool)
        for step in range(max_new):
            tokens = np.where(unfinished, logits.numpy().argmax(-1), pad)
            seq = np.concatenate([seq, tokens[:, None]], axis=1)
            unfinished &= tokens != eos
            if not unfinished.any() or step == max_new - 1:
                break
            logits, past = model.step(
                tracer.tensor(tokens[:, None]), memory, tracer.tensor(mask), past
            )
    return seq
