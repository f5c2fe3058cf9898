"""Generation as one graph: the decoding loop, written once, run eagerly or exported.

:func:`decode` is greedy search (or sampling) over a model that follows the step protocol
of ``docs/generation.md``, written with ``tracer`` ops and :func:`tracer.while_loop`: it
runs eagerly as it is, and :func:`generation_graph` traces it into one graph whose ``Loop``
body runs one decoding step, with the KV cache as loop-carried values whose position axis
grows. :func:`export_generate` writes that graph as an ONNX file that plain onnxruntime
runs: inputs ``input_ids`` and ``attention_mask`` (int64 ``[batch, prompt]``, left-padded
for decoder-only models, both sizes dynamic), ``max_new_tokens`` (int64 scalar) and, when
sampling, ``seed`` (int64 scalar); output ``sequences``, int64 ``[batch, prompt + n]``
(encoder-decoder models: ``[batch, 1 + n]``, the decoder's start token first) with
``n <= max_new_tokens``: the loop stops once every row has emitted an end-of-sequence
token, and ended rows are padded, as ``tracer.generation.generate`` does. The loop runs the
model once more after the last token (its logits are not used).

Sampling draws its uniforms from a counter-based hash of ``(seed, step, row)`` in integer
ops (:func:`uniform_draws`), so a seed gives the same tokens on graphcap's interpreter, on
onnxruntime and eagerly. ONNX's ``RandomUniformLike`` is not used: onnxruntime's keeps its
generator's state from one run to the next, so a file could not reproduce a seed's tokens.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import tracer
from export.onnx import save
from ir.graph import Graph
from ir.ops.registry import op
from tracer.tensor import Tensor

__all__ = ["DecodeSettings", "decode", "export_generate", "generation_graph", "uniform_draws"]

_M31 = 2**31  # the hash works on 31-bit words, so every product fits in an int64
_MIX = 0x45D9F3B


@dataclass(frozen=True)
class DecodeSettings:
    """What :func:`decode` fixes when it is traced.

    Attributes:
        eos: tokens that end a row (empty: rows never end early).
        pad: what ended rows get.
        do_sample: sample instead of taking the argmax.
        temperature: divides the logits before sampling.
        top_k: keep only the ``top_k`` most likely tokens when sampling (None or 0: all).
        top_p: keep the fewest most likely tokens whose probability reaches ``top_p``.
        decoder_start_token_id: an encoder-decoder model's first decoder token.
    """

    eos: tuple[int, ...] = ()
    pad: int = 0
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    decoder_start_token_id: int | None = None


def uniform_draws(seed: Tensor, step: Tensor, rows: Any) -> Tensor:
    """``rows`` uniform draws in [0, 1) (float64), a hash of ``(seed, step, row)``.

    Three rounds of xor-shift and multiply on 31-bit words (int64 ``Div``, ``Mod``, ``Mul``
    and ``BitwiseXor``, so no product overflows). Not cryptographic; good enough to sample
    tokens, and the same on every runtime.
    """
    row = tracer.arange(rows)
    x = (seed % _M31) * 1000003 + (step % _M31) * 7919 + row * 104729 + 12345
    x = x % _M31
    for _ in range(3):
        x = op.BitwiseXor(x, x // 65536)
        x = (x * _MIX) % _M31
    x = op.BitwiseXor(x, x // 65536)
    return x.double() / float(_M31)


def _pick(logits: Tensor, seed: Tensor | None, step: Tensor, s: DecodeSettings) -> Tensor:
    """The next token of each row: the argmax, or a draw from the filtered distribution."""
    if not s.do_sample:
        return logits.argmax(-1)
    from tracer.generation._logits import sample, warp  # the eager generate's own filters

    assert seed is not None
    probs = warp(logits, s.temperature, s.top_k, s.top_p).softmax(-1)
    return sample(probs, uniform_draws(seed, step, logits.shape[0]))


def _ended(tokens: Tensor, eos: Sequence[int]) -> Tensor:
    stops = tracer.tensor(np.asarray(eos, np.int64))
    return (tokens.unsqueeze(-1) == stops).any(-1)


def decode(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor,
    max_new_tokens: Tensor,
    seed: Tensor | None = None,
    settings: DecodeSettings = DecodeSettings(),
) -> Tensor:
    """Greedy search or sampling with a step-protocol model, as one loop.

    Args:
        model: decoder-only (``empty_past(batch)`` and ``step(input_ids, attention_mask,
            position_ids, past) -> (logits [B, V], past)``, as
            ``tracer.models.GPT2LMHeadModel``) or encoder-decoder (also ``encode``, and
            ``step(decoder_input_ids, memory, memory_mask, past)``, as
            ``tracer.models.T5ForConditionalGeneration``).
        input_ids: int64 ``[B, L]`` prompts (left-padded for decoder-only models).
        attention_mask: 0/1 ``[B, L]``.
        max_new_tokens: int64 0-d tensor, the most tokens to add per row.
        seed: int64 0-d tensor, for sampling.
        settings: special tokens and sampling settings.

    Returns:
        int64 ``[B, L + n]`` (decoder-only: the prompts, then the new tokens) or
        ``[B, 1 + n]`` (encoder-decoder: the start token, then the new tokens): up to
        ``max_new_tokens`` new tokens per row, ``pad`` after a row's end; ``n`` stops
        growing once every row has ended.
    """
    mask = attention_mask.long()
    batch = input_ids.shape[0]
    if hasattr(model, "encode"):
        if settings.decoder_start_token_id is None:
            raise ValueError("an encoder-decoder model needs settings.decoder_start_token_id")
        memory = tuple(model.encode(input_ids, mask))
        seq = tracer.full_like(input_ids[:, :1], settings.decoder_start_token_id)
        logits, past = model.step(seq, memory, mask, model.empty_past(batch))

        def advance(tokens: Tensor, extra: tuple[Tensor, ...], past: Any) -> Any:
            logits, present = model.step(tokens.unsqueeze(-1), memory, mask, past)
            return logits, tuple(present), ()

        return _search(seq, logits, tuple(past), (), advance, max_new_tokens, seed, settings)
    positions = (mask.cumsum(-1) - 1).clamp(min=0) * (mask != 0).long()
    logits, past = model.step(input_ids, mask, positions, model.empty_past(batch))

    def advance_decoder(tokens: Tensor, extra: tuple[Tensor, ...], past: Any) -> Any:
        mask = tracer.cat([extra[0], tracer.ones_like(tokens).unsqueeze(-1)], dim=1)
        pos = extra[1] + 1
        logits, present = model.step(tokens.unsqueeze(-1), mask, pos, past)
        return logits, tuple(present), (mask, pos)

    extra = (mask, positions[:, -1:])
    return _search(
        input_ids, logits, tuple(past), extra, advance_decoder, max_new_tokens, seed, settings
    )


def _search(
    seq: Tensor,
    logits: Tensor,
    past: tuple[Tensor, ...],
    extra: tuple[Tensor, ...],
    advance: Any,
    max_new_tokens: Tensor,
    seed: Tensor | None,
    s: DecodeSettings,
) -> Tensor:
    """The loop: carried ``(step, seq, live, logits, *extra, *past)``; ``seq`` at the end.

    ``advance(tokens, extra, past) -> (logits, past, extra)`` runs one model step.
    """
    n = len(extra)

    def keep(step: Tensor, seq: Tensor, live: Tensor, *rest: Tensor) -> Tensor:
        return (step < max_new_tokens).logical_and(live.any())

    def body(step: Tensor, seq: Tensor, live: Tensor, logits: Tensor, *rest: Tensor) -> Any:
        tokens = _pick(logits.float(), seed, step, s)
        if s.eos:
            tokens = tracer.where(live, tokens, tracer.tensor(s.pad))
            live = live.logical_and(_ended(tokens, s.eos).logical_not())
        seq = tracer.cat([seq, tokens.unsqueeze(-1)], dim=1)
        logits, past, extra = advance(tokens, tuple(rest[:n]), tuple(rest[n:]))
        return (step + 1, seq, live, logits, *extra, *past)

    live = tracer.ones_like(seq[:, 0]) == 1
    final = tracer.while_loop(keep, body, (tracer.tensor(0), seq, live, logits, *extra, *past))
    return final[1]


def generation_graph(
    model: Any,
    settings: DecodeSettings = DecodeSettings(),
    *,
    vocab_size: int | None = None,
) -> Graph:
    """:func:`decode` traced into one graph (see the module docstring for its signature).

    Args:
        model: a decoder-only step-protocol model, in the mode it should run in.
        settings: fixed in the graph (recorded in ``graph.meta["generation"]``).
        vocab_size: the model's vocabulary size, for the example prompt; default
            ``model.config.vocab_size``.
    """
    vocab = vocab_size or model.config.vocab_size
    ids = (np.arange(8, dtype=np.int64).reshape(2, 4) * 7 + 5) % vocab
    mask = np.ones_like(ids)
    mask[0, :1] = 0  # a left-padded row, so nothing about padding is baked
    example = [tracer.tensor(ids), tracer.tensor(mask), tracer.tensor(2)]
    names = ["input_ids", "attention_mask", "max_new_tokens"]
    if settings.do_sample:
        example.append(tracer.tensor(0))
        names.append("seed")

    axes = {"input_ids": {0: "batch", 1: "prompt"}, "attention_mask": {0: "batch", 1: "prompt"}}
    with tracer.no_grad():
        graph = tracer.trace(
            _Generate(model, settings),
            tuple(example),
            axes,
            input_names=names,
            output_names=["sequences"],
        )
    graph.meta["generation"] = {
        "eos_token_id": list(settings.eos),
        "pad_token_id": settings.pad,
        "do_sample": settings.do_sample,
        "temperature": settings.temperature,
        "top_k": settings.top_k,
        "top_p": settings.top_p,
        "decoder_start_token_id": settings.decoder_start_token_id,
    }
    return graph


class _Generate:
    """:func:`decode` as a traceable callable whose weights keep the model's names."""

    __name__ = "generate"  # the graph's name

    def __init__(self, model: Any, settings: DecodeSettings) -> None:
        self.model = model
        self.settings = settings

    def __call__(
        self, input_ids: Tensor, attention_mask: Tensor, max_new_tokens: Tensor, seed: Any = None
    ) -> Tensor:
        return decode(self.model, input_ids, attention_mask, max_new_tokens, seed, self.settings)

    def named_parameters(self) -> Any:
        return self.model.named_parameters()

    def named_buffers(self) -> Any:
        return self.model.named_buffers()


def export_generate(
    model: Any,
    path: str | os.PathLike[str],
    *,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_token_id: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
    decoder_start_token_id: int | None = None,
    opset: int | None = None,
) -> Graph:
    """Write greedy search (or sampling) with ``model`` as one ONNX file; return its graph.

    Special tokens default as ``tracer.generation.generate``'s: ``eos_token_id`` from
    ``model.config`` (``[]`` for none), ``pad_token_id`` from the config, else the first EOS
    (else 0), and an encoder-decoder model's ``decoder_start_token_id`` from the config,
    else its ``bos_token_id``.

    Raises:
        ValueError: a sampling setting outside its domain, or an encoder-decoder model
            without a start token.
    """
    config = getattr(model, "config", None)
    eos = eos_token_id if eos_token_id is not None else getattr(config, "eos_token_id", None)
    eos_list = (
        [] if eos is None else ([int(e) for e in eos] if isinstance(eos, Sequence) else [int(eos)])
    )
    pad = pad_token_id if pad_token_id is not None else getattr(config, "pad_token_id", None)
    if pad is None and eos_list:
        pad = eos_list[0]
    start = None
    if hasattr(model, "encode"):
        start = _start_token(decoder_start_token_id, config)
    _check_sampling(temperature, top_k, top_p)
    settings = DecodeSettings(
        tuple(eos_list), int(pad or 0), do_sample, float(temperature), top_k, top_p, start
    )
    graph = generation_graph(model, settings)
    save(graph, path, opset=opset)
    return graph


def _start_token(given: int | None, config: Any) -> int:
    for value in (given, getattr(config, "decoder_start_token_id", None)):
        if value is not None:
            return int(value)
    bos = getattr(config, "bos_token_id", None)
    if bos is None:
        raise ValueError(
            "an encoder-decoder model needs decoder_start_token_id (T5 uses its pad token, 0)"
        )
    return int(bos)


def _check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if not (isinstance(temperature, int | float) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if top_k is not None and not (isinstance(top_k, int) and top_k >= 0):
        raise ValueError(f"top_k must be a non-negative int (0 or None: no filter), got {top_k!r}")
    if top_p is not None and not (isinstance(top_p, int | float) and 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
