"""Small random-init Hugging Face checkpoints, written by ``transformers`` into a folder.

The ``tracer.models`` tests load these with graphcap and compare against the same
``transformers`` model (no network: the configs are built here). Importing this module
skips the calling test module when torch or transformers is missing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
logging.getLogger("transformers").setLevel(logging.ERROR)  # "newly initialised" notices

VOCAB = 99
BERT = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=2,
)
GPT2 = dict(
    vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=1,
    eos_token_id=2, pad_token_id=0,
)  # fmt: skip
T5 = dict(
    vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_decoder_layers=3,
    num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=20,
    decoder_start_token_id=0,
)  # fmt: skip


def save(model: Any, folder: Path) -> Path:
    """``model.save_pretrained(folder)`` in eval mode; the folder."""
    model.eval().save_pretrained(folder)
    return folder


def spread(model: Any, std: float = 0.5, seed: int = 0) -> Any:
    """Redraw the weights (not the norms' scales) from N(0, std).

    A random-init T5 or GPT-2 otherwise repeats one token, which would make generation
    tests blind.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name and "ln_" not in name:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model


def bert(kind: str = "BertModel", **config: Any) -> Any:
    """A ``transformers`` BERT class ``kind`` of the small config (seeded)."""
    torch.manual_seed(0)
    return getattr(transformers, kind)(transformers.BertConfig(**{**BERT, **config}))


def gpt2(std: float | None = 0.5, **config: Any) -> Any:
    """A small ``transformers.GPT2LMHeadModel`` (seeded; weights spread to ``std`` unless None)."""
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**{**GPT2, **config}))
    return model if std is None else spread(model, std)


def t5(
    kind: str = "T5ForConditionalGeneration",
    untied: bool = False,
    std: float | None = 0.2,
    **config: Any,
) -> Any:
    """A small ``transformers`` T5 class ``kind`` (seeded; weights spread unless None).

    ``untied`` gives the LM head its own weights and no output scaling (T5 v1.1 / FLAN-T5).
    A wider spread than 0.2 makes T5's unscaled attention amplify float32 rounding past 1e-5
    in ``transformers`` itself (against its own float64 result).
    """
    torch.manual_seed(0)
    model = getattr(transformers, kind)(transformers.T5Config(**{**T5, **config}))
    model = model if std is None else spread(model, std)
    if untied:
        model.lm_head.weight = torch.nn.Parameter(torch.randn(VOCAB, T5["d_model"]) * 0.2)
        model.config.tie_word_embeddings = False
        model.config.scale_decoder_outputs = False
    return model


def left_padded(lengths: list[int], seed: int = 0, low: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Random ids of the given lengths, left-padded with 0: ``(ids, mask)``."""
    rng = np.random.default_rng(seed)
    width = max(lengths)
    ids, mask = np.zeros((len(lengths), width), np.int64), np.zeros((len(lengths), width), np.int64)
    for row, n in enumerate(lengths):
        ids[row, width - n :] = rng.integers(low, VOCAB, n)
        mask[row, width - n :] = 1
    return ids, mask


def right_padded(lengths: list[int], seed: int = 0, low: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Random ids of the given lengths, right-padded with 0: ``(ids, mask)``."""
    ids, mask = left_padded(lengths, seed, low)
    for row in range(len(lengths)):
        shift = int((mask[row] == 0).sum())
        ids[row], mask[row] = np.roll(ids[row], -shift), np.roll(mask[row], -shift)
    return ids, mask


def t(x: np.ndarray) -> Any:
    """A torch tensor of ``x``."""
    return torch.from_numpy(np.ascontiguousarray(x))
