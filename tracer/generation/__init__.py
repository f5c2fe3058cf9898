"""``tracer.generation``: text generation for models that follow the step protocol.

``generate`` runs greedy search, sampling (temperature, top-k, top-p, a seeded generator)
or beam search over any model that implements the step protocol described in
``docs/generation.md``: decoder-only models (``empty_past`` and ``step(input_ids,
attention_mask, position_ids, past)``, e.g. ``tracer.models.GPT2LMHeadModel``) and
encoder-decoder models (``encode``, ``empty_past`` and ``step(decoder_input_ids, memory,
memory_mask, past)``, e.g. ``tracer.models.T5ForConditionalGeneration``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import tracer
from tracer._creation import default_generator
from tracer.generation._beam import beam_search
from tracer.generation._logits import check_sampling, sample, top_k_filter, top_p_filter, warp
from tracer.generation._search import greedy_or_sample
from tracer.generation._session import DecoderOnlySession, EncoderDecoderSession, Session
from tracer.tensor import Tensor

__all__ = ["generate", "sample", "top_k_filter", "top_p_filter", "warp"]


def generate(
    model: Any,
    input_ids: Any,
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    num_beams: int = 1,
    eos_token_id: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
    attention_mask: Any = None,
    *,
    length_penalty: float = 1.0,
    early_stopping: bool | str = False,
    decoder_start_token_id: int | None = None,
    generator: np.random.Generator | None = None,
    seed: int | None = None,
) -> Tensor:
    """Generate token ids, as ``transformers``' ``model.generate`` does with these settings.

    Args:
        model: a model following the step protocol; one with an ``encode`` method is treated
            as encoder-decoder. It runs without gradients, in whatever mode it is in (call
            ``model.eval()`` to turn dropout off, as ``transformers`` expects too).
        input_ids: int ``[B, L]`` prompts (left-padded for decoder-only batches).
        max_new_tokens: the most tokens to add per row.
        do_sample: sample from the (filtered) distribution instead of taking the argmax.
        temperature: divides the logits before sampling.
        top_k: keep only the ``top_k`` most likely tokens when sampling (None or 0: all).
        top_p: keep the fewest most likely tokens whose probability reaches ``top_p``.
        num_beams: beam search with this many beams when above 1 (no sampling).
        eos_token_id: token(s) that end a row; None takes ``model.config.eos_token_id``,
            ``[]`` means none.
        pad_token_id: what rows get after they end; None takes ``model.config.pad_token_id``,
            then the first EOS token.
        attention_mask: 0/1 ``[B, L]``; by default 0 where ``input_ids`` is the pad token
            (when it is not also EOS), 1 elsewhere.
        length_penalty: beam search scores a finished hypothesis ``sum / length ** it``.
        early_stopping: beam search's stopping rule (True, False or "never"), as
            ``transformers``'.
        decoder_start_token_id: an encoder-decoder model's first decoder token; None takes
            the config's, then its ``bos_token_id``.
        generator: the NumPy generator sampling draws from; default ``tracer``'s global one.
        seed: a seed for a fresh generator (overrides ``generator``).

    Returns:
        int64 ``[B, L + n]`` for decoder-only models (prompt then new tokens) and
        ``[B, 1 + n]`` for encoder-decoder models (start token then new tokens), with
        ``n <= max_new_tokens``: shorter when every row has ended.

    Raises:
        ValueError: an argument outside its domain, or a needed special token that neither
            the arguments nor the config give.
        NotImplementedError: beam search with sampling.
    """
    check_sampling(temperature, top_k, top_p)
    _check_counts(max_new_tokens, num_beams, do_sample, early_stopping)
    ids = _as_ids(input_ids)
    config = getattr(model, "config", None)
    eos = _eos(eos_token_id, config)
    pad = pad_token_id if pad_token_id is not None else getattr(config, "pad_token_id", None)
    if pad is None and eos:
        pad = eos[0]
    mask = _attention_mask(attention_mask, ids, pad, eos)
    if max_new_tokens == 0 and not hasattr(model, "encode"):
        return tracer.from_numpy(ids)
    if seed is not None:
        generator = np.random.default_rng(seed)
    with tracer.no_grad():
        session = _session(model, ids, mask, decoder_start_token_id, config)
        if num_beams > 1:
            out = beam_search(
                session, ids.shape[0], max_new_tokens, num_beams, eos, pad, length_penalty,
                early_stopping,
            )  # fmt: skip
        else:
            out = greedy_or_sample(
                session, max_new_tokens, eos, pad, do_sample, temperature, top_k, top_p,
                generator or default_generator(),
            )  # fmt: skip
    return tracer.from_numpy(out)


def _check_counts(max_new_tokens: int, num_beams: int, do_sample: bool, early: Any) -> None:
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}")
    if not isinstance(num_beams, int) or num_beams < 1:
        raise ValueError(f"num_beams must be a positive int, got {num_beams!r}")
    if num_beams > 1 and do_sample:
        raise NotImplementedError("beam search with sampling (num_beams > 1 and do_sample=True)")
    if early not in (True, False, "never"):
        raise ValueError(f"early_stopping must be True, False or 'never', got {early!r}")


def _as_ids(input_ids: Any) -> np.ndarray:
    ids = input_ids.numpy() if isinstance(input_ids, Tensor) else np.asarray(input_ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu" or ids.shape[0] == 0:
        raise ValueError(
            f"input_ids must be a non-empty integer [batch, length] array, got {ids.dtype} "
            f"{list(ids.shape)}"
        )
    return ids.astype(np.int64)


def _eos(eos_token_id: Any, config: Any) -> list[int]:
    value = eos_token_id if eos_token_id is not None else getattr(config, "eos_token_id", None)
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, Sequence) else [int(value)]


def _attention_mask(mask: Any, ids: np.ndarray, pad: int | None, eos: list[int]) -> np.ndarray:
    if mask is None:
        # transformers' rule: infer padding from the pad token unless it doubles as EOS.
        if pad is not None and pad not in eos and (ids == pad).any():
            return (ids != pad).astype(np.int64)
        return np.ones_like(ids)
    m = mask.numpy() if isinstance(mask, Tensor) else np.asarray(mask)
    if m.shape != ids.shape:
        raise ValueError(f"attention_mask {list(m.shape)} must match input_ids {list(ids.shape)}")
    return m.astype(np.int64)


def _session(model: Any, ids: np.ndarray, mask: np.ndarray, start: Any, config: Any) -> Session:
    if not hasattr(model, "encode"):
        return DecoderOnlySession(model, ids, mask)
    for source in (start, getattr(config, "decoder_start_token_id", None)):
        if source is not None:
            return EncoderDecoderSession(model, ids, mask, int(source))
    bos = getattr(config, "bos_token_id", None)
    if bos is None:
        raise ValueError(
            "an encoder-decoder model needs decoder_start_token_id (T5 uses its pad token, 0); "
            "pass it to generate or set it in the config"
        )
    return EncoderDecoderSession(model, ids, mask, int(bos))
