"""tracer.generation.generate against transformers' generate, token for token.

Oracles: ``transformers``' ``generate`` (greedy and beam search) on the same checkpoint,
its logits warpers (top-k, top-p, temperature) for the filters, and the filtered softmax
itself for the sampling frequencies (``transformers``' RNG is not reproduced). The EOS token
of each comparison is one the model actually emits, so rows stop at different steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tracer
from tests import hf_checkpoints as hf
from tests.hf_checkpoints import t, torch, transformers
from tracer.generation import generate, sample, warp
from tracer.models import GPT2LMHeadModel, T5ForConditionalGeneration

PAD = 0


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, GPT2LMHeadModel]:
    folder = hf.save(hf.gpt2(), tmp_path_factory.mktemp("gpt2"))
    theirs = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
    return theirs, GPT2LMHeadModel.from_pretrained(folder)


@pytest.fixture(scope="module")
def t5(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, T5ForConditionalGeneration]:
    # transformers 5 sizes its generation cache by num_layers: keep the decoder as deep.
    folder = hf.save(hf.t5(num_decoder_layers=2), tmp_path_factory.mktemp("t5"))
    theirs = transformers.T5ForConditionalGeneration.from_pretrained(folder).eval()
    return theirs, T5ForConditionalGeneration.from_pretrained(folder)


def _hf(model, ids, mask, **kw):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        out = model.generate(
            t(ids), attention_mask=t(mask), do_sample=False, pad_token_id=PAD, **kw
        )
    return out.numpy()


def _emitted_eos(model, ids, mask, start: int) -> int:  # type: ignore[no-untyped-def]
    """A token that row 0 emits at its third new step (so it ends early), as EOS."""
    free = _hf(model, ids, mask, max_new_tokens=4, eos_token_id=None)
    return int(free[0, start + 2])


def _row_zero_ended_early(out: np.ndarray, eos: int, start: int) -> bool:
    """Row 0 emitted ``eos``, then only padding, while the batch went on."""
    first = start + int(np.flatnonzero(out[0, start:] == eos)[0])
    return first + 1 < out.shape[1] and bool((out[0, first + 1 :] == PAD).all())


def _prompts() -> tuple[np.ndarray, np.ndarray]:
    return hf.left_padded([5, 9, 3, 7], seed=3)


def test_greedy_gpt2_equals_transformers_with_left_padding(gpt2) -> None:  # type: ignore[no-untyped-def]
    theirs, ours = gpt2
    ids, mask = _prompts()
    eos = _emitted_eos(theirs, ids, mask, ids.shape[1])
    ref = _hf(theirs, ids, mask, max_new_tokens=12, eos_token_id=eos)
    out = generate(ours, ids, 12, attention_mask=mask, eos_token_id=eos, pad_token_id=PAD).numpy()
    np.testing.assert_array_equal(out, ref)
    assert _row_zero_ended_early(out, eos, ids.shape[1])


def test_greedy_t5_equals_transformers(t5) -> None:  # type: ignore[no-untyped-def]
    theirs, ours = t5
    ids, mask = _prompts()
    eos = _emitted_eos(theirs, ids, mask, 1)
    ref = _hf(theirs, ids, mask, max_new_tokens=10, eos_token_id=eos)
    out = generate(ours, ids, 10, attention_mask=mask, eos_token_id=eos, pad_token_id=PAD).numpy()
    np.testing.assert_array_equal(out, ref)
    assert _row_zero_ended_early(out, eos, 1)


@pytest.mark.parametrize(
    ("beams", "options"),
    [
        (3, {}),
        (2, {"length_penalty": 0.5, "early_stopping": True}),
        (4, {"early_stopping": "never"}),
    ],
)
def test_beam_search_gpt2_equals_transformers(gpt2, beams: int, options: dict) -> None:  # type: ignore[no-untyped-def]
    theirs, ours = gpt2
    ids, mask = _prompts()
    eos = _emitted_eos(theirs, ids, mask, ids.shape[1])
    ref = _hf(theirs, ids, mask, max_new_tokens=8, num_beams=beams, eos_token_id=eos, **options)
    out = generate(
        ours,
        ids,
        8,
        attention_mask=mask,
        num_beams=beams,
        eos_token_id=eos,
        pad_token_id=PAD,
        **options,
    )
    np.testing.assert_array_equal(out.numpy(), ref)


def test_beam_search_t5_equals_transformers(t5) -> None:  # type: ignore[no-untyped-def]
    theirs, ours = t5
    ids, mask = _prompts()
    eos = _emitted_eos(theirs, ids, mask, 1)
    ref = _hf(theirs, ids, mask, max_new_tokens=8, num_beams=3, eos_token_id=eos)
    out = generate(
        ours, ids, 8, attention_mask=mask, num_beams=3, eos_token_id=eos, pad_token_id=PAD
    )
    np.testing.assert_array_equal(out.numpy(), ref)


# ------------------------------------------------------------------ sampling


def test_sampling_is_reproducible_under_a_seed(gpt2) -> None:  # type: ignore[no-untyped-def]
    _, ours = gpt2
    ids, mask = _prompts()
    kw = dict(
        attention_mask=mask, do_sample=True, top_k=20, top_p=0.9, temperature=0.8, eos_token_id=[]
    )
    a = generate(ours, ids, 10, seed=7, **kw).numpy()
    b = generate(ours, ids, 10, generator=np.random.default_rng(7), **kw).numpy()
    c = generate(ours, ids, 10, seed=8, **kw).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_sampling_with_top_k_one_is_greedy(gpt2) -> None:  # type: ignore[no-untyped-def]
    _, ours = gpt2
    ids, mask = _prompts()
    greedy = generate(ours, ids, 6, attention_mask=mask, eos_token_id=[])
    sampled = generate(
        ours, ids, 6, attention_mask=mask, eos_token_id=[], do_sample=True, top_k=1, seed=0
    )
    np.testing.assert_array_equal(sampled.numpy(), greedy.numpy())


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"),
    [(1.0, 5, None), (0.7, None, 0.8), (1.3, 12, 0.6), (1.0, None, 0.05)],
)
def test_filters_match_transformers_warpers(temperature: float, top_k, top_p) -> None:  # type: ignore[no-untyped-def]
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    logits = np.random.default_rng(0).normal(0, 2, (5, 40)).astype(np.float32)
    ref = t(logits)
    if temperature != 1.0:
        ref = TemperatureLogitsWarper(temperature)(None, ref)
    if top_k:
        ref = TopKLogitsWarper(top_k)(None, ref)
    if top_p:
        ref = TopPLogitsWarper(top_p)(None, ref)
    ours = warp(tracer.tensor(logits), temperature, top_k, top_p).numpy()
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(ref.numpy()))
    np.testing.assert_allclose(ours[~np.isinf(ours)], ref.numpy()[~np.isinf(ours)], rtol=1e-6)


def test_samples_follow_the_filtered_distribution() -> None:
    logits = np.random.default_rng(1).normal(0, 1.5, (1, 30)).astype(np.float32)
    probs = warp(tracer.tensor(logits), 0.9, 10, 0.8).softmax(-1)
    n = 20000
    draws = sample(
        probs.expand(n, 30), tracer.from_numpy(np.random.default_rng(2).random(n))
    ).numpy()
    expected = probs.numpy()[0]
    counts = np.bincount(draws, minlength=30) / n
    assert counts[expected == 0].sum() == 0  # never a filtered token
    sigma = np.sqrt(expected * (1 - expected) / n)
    assert (np.abs(counts - expected) <= 5 * sigma + 1e-9).all()


def test_bad_arguments_raise_clear_errors(gpt2, t5) -> None:  # type: ignore[no-untyped-def]
    _, ours = gpt2
    ids = np.ones((1, 3), np.int64)
    with pytest.raises(ValueError, match="temperature"):
        generate(ours, ids, 3, do_sample=True, temperature=0)
    with pytest.raises(ValueError, match="top_p"):
        generate(ours, ids, 3, do_sample=True, top_p=1.5)
    with pytest.raises(NotImplementedError, match="beam search with sampling"):
        generate(ours, ids, 3, num_beams=2, do_sample=True)
    with pytest.raises(ValueError, match="input_ids"):
        generate(ours, np.ones(3, np.int64), 3)
    _, seq2seq = t5
    seq2seq.config.decoder_start_token_id = None
    try:
        with pytest.raises(ValueError, match="decoder_start_token_id"):
            generate(seq2seq, ids, 3)
    finally:
        seq2seq.config.decoder_start_token_id = 0


# ------------------------------------------------------------------ the step protocol traces


def test_gpt2_step_traces_with_dynamic_sizes_and_runs_on_onnxruntime(gpt2, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from runtime import Session

    _, ours = gpt2
    n = 2 * ours.config.n_layer
    names = ["input_ids", "attention_mask", "position_ids"] + [f"past_{i}" for i in range(n)]
    axes = {name: {0: "batch", 1: "new"} for name in names[:3]}
    axes["attention_mask"] = {0: "batch", 1: "total"}
    axes.update({f"past_{i}": {0: "batch", 2: "past"} for i in range(n)})

    def step(input_ids, attention_mask, position_ids, *past):  # type: ignore[no-untyped-def]
        logits, present = ours.step(input_ids, attention_mask, position_ids, past)
        return (logits, *present)

    with tracer.no_grad():
        ids = tracer.tensor(np.array([[5, 6], [7, 8]]))
        _, past = ours.step(
            ids,
            tracer.ones(2, 2, dtype=tracer.int64),
            tracer.tensor([[0, 1], [0, 1]]),
            ours.empty_past(2),
        )
        example = (
            ids[:, :1],
            tracer.ones(2, 3, dtype=tracer.int64),
            tracer.tensor([[2], [2]]),
            *past,
        )
        graph = tracer.trace(step, example, dynamic_axes=axes, input_names=names)
        # Run it as a prefill: another batch, no past, a left-padded prompt.
        ids, mask = hf.left_padded([4, 6, 2], seed=5)
        positions = np.maximum(mask.cumsum(-1) - 1, 0) * mask
        logits, present = ours.step(
            tracer.tensor(ids), tracer.tensor(mask), tracer.tensor(positions), ours.empty_past(3)
        )
    feeds = dict(zip(names[:3], (ids, mask, positions), strict=True))
    feeds.update({f"past_{i}": np.zeros((3, 4, 0, 8), np.float32) for i in range(n)})
    got = Session(graph, backend="onnxruntime").run(feeds)
    np.testing.assert_allclose(got["output_0"], logits.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(got[f"output_{n}"], present[-1].numpy(), atol=1e-5, rtol=0)


def test_t5_step_and_encode_trace_with_dynamic_sizes(t5) -> None:  # type: ignore[no-untyped-def]
    from runtime import Session

    _, ours = t5
    n = 2 * ours.config.num_decoder_layers
    names = [
        "ids",
        "memory_mask",
        *(f"memory_{i}" for i in range(n)),
        *(f"past_{i}" for i in range(n)),
    ]
    axes = {"ids": {0: "batch", 1: "new"}, "memory_mask": {0: "batch", 1: "src"}}
    axes.update({f"memory_{i}": {0: "batch", 2: "src"} for i in range(n)})
    axes.update({f"past_{i}": {0: "batch", 2: "past"} for i in range(n)})

    def step(ids, memory_mask, *rest):  # type: ignore[no-untyped-def]
        logits, present = ours.step(ids, rest[:n], memory_mask, rest[n:])
        return (logits, *present)

    with tracer.no_grad():
        src, src_mask = (tracer.tensor(a) for a in hf.right_padded([6, 4], seed=6))
        memory = ours.encode(src, src_mask)
        _, past = ours.step(tracer.tensor([[0, 5], [0, 7]]), memory, src_mask, ours.empty_past(2))
        graph = tracer.trace(
            step, (tracer.tensor([[9], [4]]), src_mask, *memory, *past), axes, input_names=names
        )
        # Run it as the first step of a longer batch: distances beyond max_distance (20).
        src, src_mask = hf.right_padded([25, 30, 8], seed=7)
        memory = ours.encode(tracer.tensor(src), tracer.tensor(src_mask))
        dec = hf.left_padded([24, 24, 24], seed=8)[0]
        logits, _ = ours.step(
            tracer.tensor(dec), memory, tracer.tensor(src_mask), ours.empty_past(3)
        )
    feeds = {
        "ids": dec,
        "memory_mask": src_mask,
        **{f"memory_{i}": m.numpy() for i, m in enumerate(memory)},
    }
    feeds.update({f"past_{i}": np.zeros((3, 4, 0, 8), np.float32) for i in range(n)})
    got = Session(graph, backend="onnxruntime").run(feeds)
    np.testing.assert_allclose(got["output_0"], logits.numpy(), atol=1e-5, rtol=0)
