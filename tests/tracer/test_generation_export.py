"""The generation loop as one ONNX file: tokens on onnxruntime and the interpreter vs eager.

The model is ``tests.generation_models.TinyLM`` (the step protocol of docs/generation.md);
the reference is greedy decoding in plain Python around its ``step``. Prompts are a
left-padded batch of different lengths, and the EOS token is one the model emits, so rows
end at different steps and the loop stops before its budget.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import tracer
from runtime import Session
from tests.generation_models import (
    TinyConfig,
    TinyLM,
    TinySeq2Seq,
    reference_greedy,
    reference_greedy_seq2seq,
)
from tracer.generation.export import (
    DecodeSettings,
    decode,
    export_generate,
    generation_graph,
    uniform_draws,
)

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def _model() -> TinyLM:
    tracer.manual_seed(0)
    model = TinyLM()
    model.eval()
    return model


def _prompts(rng: np.random.Generator, lengths: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded prompts of the given lengths (pad 0), and their attention mask."""
    width = max(lengths)
    ids = np.zeros((len(lengths), width), np.int64)
    mask = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, width - n :] = rng.integers(4, 37, size=n)
        mask[row, width - n :] = 1
    return ids, mask


@functools.cache
def _case() -> tuple[np.ndarray, np.ndarray, int]:
    """Prompts of lengths 5, 9, 3, 7 and an EOS token that ends rows at different steps."""
    ids, mask = _prompts(np.random.default_rng(0), [5, 9, 3, 7])
    free = reference_greedy(_model(), ids, mask, 12, eos=-1, pad=0)[:, ids.shape[1] :]
    return ids, mask, _eos_for(free)


def _eos_for(free: np.ndarray) -> int:
    """A token every row emits, at steps as different as can be (rows end apart)."""
    everywhere = [t for t in np.unique(free) if (free == t).any(axis=1).all()]
    firsts = {int(t): [int(np.argmax(r == t)) for r in free] for t in everywhere}
    return max(firsts, key=lambda t: (len(set(firsts[t])), -max(firsts[t])))


@functools.cache
def _exported(tmp: str) -> Path:
    path = Path(tmp) / "generate.onnx"
    export_generate(_model(), path, eos_token_id=_case()[2], pad_token_id=0)
    return path


def test_exported_greedy_loop_gives_eager_tokens_on_onnxruntime_and_the_interpreter(
    tmp_path: Path,
) -> None:
    ids, mask, eos = _case()
    path = _exported(str(tmp_path))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    model = onnx.load(str(path))
    assert [n.op_type for n in model.graph.node].count("Loop") == 1
    feeds = {"input_ids": ids, "attention_mask": mask, "max_new_tokens": np.asarray(12)}
    want = reference_greedy(_model(), ids, mask, 12, eos, pad=0)
    assert want.shape[1] < ids.shape[1] + 12  # every row ended before the budget
    ends = {int(np.argmax(r[ids.shape[1] :] == eos)) for r in want}
    assert len(ends) > 2  # rows end at different steps, then get the pad token
    for backend in ("onnxruntime", "interpreter"):
        got = Session(str(path), backend=backend).run(feeds)["sequences"]
        np.testing.assert_array_equal(got, want, err_msg=backend)


def test_other_batch_sizes_prompt_lengths_and_budgets(tmp_path: Path) -> None:
    _, _, eos = _case()
    session = Session(str(_exported(str(tmp_path))), backend="onnxruntime")
    rng = np.random.default_rng(1)
    for lengths, budget in [([4], 6), ([1, 8, 2], 9), ([6, 6], 0)]:
        ids, mask = _prompts(rng, lengths)
        feeds = {"input_ids": ids, "attention_mask": mask, "max_new_tokens": np.asarray(budget)}
        want = reference_greedy(_model(), ids, mask, budget, eos, pad=0) if budget else ids
        np.testing.assert_array_equal(session.run(feeds)["sequences"], want)


def test_an_encoder_decoder_loop_gives_eager_tokens(tmp_path: Path) -> None:
    tracer.manual_seed(1)
    model = TinySeq2Seq()
    model.eval()
    ids, mask = _prompts(np.random.default_rng(2), [4, 6, 2])
    ids, mask = ids[:, ::-1].copy(), mask[:, ::-1].copy()  # right-padded, as T5 takes them
    free = reference_greedy_seq2seq(model, ids, mask, 12, eos=-1, pad=0, start=1)[:, 1:]
    eos = _eos_for(free)
    want = reference_greedy_seq2seq(model, ids, mask, 12, eos, pad=0, start=1)
    assert want.shape[1] < 13
    path = tmp_path / "s2s.onnx"
    export_generate(model, path, eos_token_id=eos, pad_token_id=0, decoder_start_token_id=1)
    feeds = {"input_ids": ids, "attention_mask": mask, "max_new_tokens": np.asarray(12)}
    for backend in ("onnxruntime", "interpreter"):
        got = Session(str(path), backend=backend).run(feeds)["sequences"]
        np.testing.assert_array_equal(got, want, err_msg=backend)


def test_eager_decode_is_the_reference() -> None:
    ids, mask, eos = _case()
    with tracer.no_grad():
        got = decode(
            _model(), tracer.tensor(ids), tracer.tensor(mask), tracer.tensor(12), None,
            DecodeSettings(eos=(eos,), pad=0),
        )  # fmt: skip
    np.testing.assert_array_equal(got.numpy(), reference_greedy(_model(), ids, mask, 12, eos, 0))


def test_the_loop_carries_a_growing_cache_and_captures_the_weights() -> None:
    g = generation_graph(_model(), DecodeSettings(eos=(3,), pad=0))
    loop = next(n for n in g.nodes if n.op.op_type == "Loop")
    body = loop.attrs["body"]
    cache = [v for v in body.inputs if v.type.rank == 4]
    assert len(cache) == 2 * _model().config.n_layer
    assert all(isinstance(v.type.shape[2], str) for v in cache)  # the position axis grows
    weights = {name for name, _ in _model().named_parameters()}
    captured = {x.name for x in loop.inputs[len(loop.inputs) - loop.num_captured :]}
    assert weights <= captured | set(g.initializers)
    assert {"wte.weight", "head.weight"} <= captured  # shared with the prefill, not copied


def test_uniform_draws_agree_everywhere_and_look_uniform() -> None:
    def draws(seed: tracer.Tensor, step: tracer.Tensor, rows: tracer.Tensor) -> tracer.Tensor:
        return uniform_draws(seed, step, rows.shape[0])

    g = tracer.trace(
        draws,
        (tracer.tensor(7), tracer.tensor(3), tracer.zeros(5)),
        {"rows": {0: "n"}},
    )
    feeds = {"seed": np.asarray(123), "step": np.asarray(4), "rows": np.zeros(4000, np.float32)}
    eager = draws(tracer.tensor(123), tracer.tensor(4), tracer.zeros(4000)).numpy()
    for backend in ("onnxruntime", "interpreter"):
        got = Session(g, backend=backend).run(feeds)
        np.testing.assert_array_equal(next(iter(got.values())), eager)
    assert eager.dtype == np.float64 and eager.min() >= 0 and eager.max() < 1
    counts = np.histogram(eager, bins=10, range=(0, 1))[0]
    assert np.abs(counts - 400).max() < 5 * np.sqrt(400 * 0.9)  # 5 sigma
    other = draws(tracer.tensor(124), tracer.tensor(4), tracer.zeros(4000)).numpy()
    assert abs(np.corrcoef(eager, other)[0, 1]) < 0.1  # the seed matters
    nxt = draws(tracer.tensor(123), tracer.tensor(5), tracer.zeros(4000)).numpy()
    assert abs(np.corrcoef(eager, nxt)[0, 1]) < 0.1  # so does the step


def test_export_generate_refuses_bad_settings(tmp_path: Path) -> None:
    model = TinyLM(TinyConfig(eos_token_id=3, pad_token_id=0))
    with pytest.raises(ValueError, match="temperature"):
        export_generate(model, tmp_path / "x.onnx", do_sample=True, temperature=0)
    with pytest.raises(ValueError, match="top_p"):
        export_generate(model, tmp_path / "x.onnx", do_sample=True, top_p=1.5)
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.slow  # a subprocess that imports everything and traces: about 10 s
def test_graphcap_export_generate_verifies(tmp_path: Path) -> None:
    out = tmp_path / "gen.onnx"
    res = subprocess.run(
        [sys.executable, "-m", "export.cli", "export", "tests.cli_models:make_tiny_lm",
         "--generate", "-o", str(out), "--verify"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.count(": ok") == 4 and "MISMATCH" not in res.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "export.cli", "export", "tests.cli_models:make_mlp",
         "--generate", "-o", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 2 and "step()" in bad.stderr


def test_gpt2_from_tracer_models_exports_generates_tokens(tmp_path: Path) -> None:
    """A ``tracer.models`` GPT-2 through ``export_generate`` gives ``generate``'s tokens."""
    ort = pytest.importorskip("onnxruntime")
    from tracer.generation import generate
    from tracer.models.gpt2 import GPT2Config, GPT2LMHeadModel

    tracer.manual_seed(0)
    config = GPT2Config(vocab_size=97, n_positions=64, n_embd=32, n_layer=2, n_head=4)
    model = GPT2LMHeadModel(config)
    model.eval()
    ids, mask = _prompts(np.random.default_rng(3), [3, 5, 4])
    want = generate(
        model,
        tracer.tensor(ids),
        max_new_tokens=6,
        attention_mask=tracer.tensor(mask),
        eos_token_id=[],
        pad_token_id=0,
    ).numpy()
    export_generate(model, tmp_path / "gpt2.onnx", eos_token_id=[], pad_token_id=0)
    session = ort.InferenceSession(str(tmp_path / "gpt2.onnx"))
    feeds = {"input_ids": ids, "attention_mask": mask, "max_new_tokens": np.array(6, np.int64)}
    (got,) = session.run(None, feeds)
    assert want.shape == (3, 5 + 6)
    np.testing.assert_array_equal(got, want)
