"""A corpus of third-party ONNX files, and the scripts that make them, for ``test_third_party``.

Three kinds of entries:

- files shipped in PyPI packages (``rapidocr-onnxruntime``'s PaddleOCR models, exported by
  paddle2onnx; ``silero-vad``'s models), found in site-packages (``.ci/run`` installs the
  packages with ``pip install --no-deps``; a test skips when its package is absent);
- torch exports of ``transformers`` models built from small configs (TorchScript exporter,
  ``dynamo=False``; the dynamo exporter for some), written to a temporary folder;
- those exports after another tool: onnxsim, onnxslim, onnxruntime's transformer optimizer
  (``optimize_model``, which fuses ``com.microsoft`` ops) and its dynamic quantizer.

Each entry says how to make (or find) its file and which inputs to feed it. A tool that is
not installed makes its entries skip, naming the package.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

Feeds = dict[str, np.ndarray]
VOCAB, HIDDEN, HEADS = 100, 32, 4
# The name of each input's axis 1 in TorchScript exports: T5 and Whisper's decoders read
# sequences of other lengths than their encoders'.
_SEQ = {"decoder_input_ids": "decoder_seq", "encoder_hidden_states": "encoder_seq"}


@dataclass(frozen=True)
class Entry:
    """One corpus file.

    Attributes:
        name: the test id.
        make: ``make(folder) -> path`` writes the file into ``folder`` (or finds it).
        feeds: ``feeds(model) -> {input: array}``.
        atol: the largest difference from onnxruntime accepted (outputs are of order 1).
        slow: whether the test is marked slow (big model or slow tool).
        needs: op types the registry must have (else the test skips, naming them).
    """

    name: str
    make: Callable[[Path], Path]
    feeds: Callable[[onnx.ModelProto], Feeds]
    atol: float = 1e-4
    slow: bool = False
    needs: tuple[str, ...] = field(default=())


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ---------------------------------------------------------------- packaged files


def packaged(package: str, relative: str) -> Callable[[Path], Path]:
    """A file inside an installed package; skips when the package is not installed."""

    def make(folder: Path) -> Path:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            pytest.skip(f"{package} is not installed (.ci/run installs it with --no-deps)")
        path = Path(next(iter(spec.submodule_search_locations))) / relative
        if not path.is_file():
            pytest.skip(f"{package} has no {relative}")
        return path

    return make


def image_feeds(shape: tuple[int, ...]) -> Callable[[onnx.ModelProto], Feeds]:
    """One float image batch ``shape`` for the model's only input."""

    def feeds(model: onnx.ModelProto) -> Feeds:
        name = model.graph.input[0].name
        return {name: _rng().uniform(0, 1, shape).astype(np.float32)}

    return feeds


def vad_feeds(model: onnx.ModelProto) -> Feeds:
    """silero-vad's inputs: audio chunks, a zero state, the sample rate."""
    rng, feeds = _rng(), {}
    for vi in model.graph.input:
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        if vi.name == "input":
            size = dims[1] if len(dims) > 1 and dims[1] else 512
            batch = dims[0] or (3 if size == 576 else 2)
            feeds[vi.name] = rng.uniform(-0.5, 0.5, (batch, size)).astype(np.float32)
        elif vi.name == "sr":
            feeds[vi.name] = np.asarray(16000, np.int64)
        else:  # the recurrent state: [2, batch, 128], or h and c [1, 1, 128]
            shape = [d or 2 for d in dims]
            feeds[vi.name] = np.zeros(shape, np.float32)
    return feeds


# ---------------------------------------------------------------- transformers exports


def _models() -> dict[str, Callable[[], tuple[Any, tuple[Any, ...], list[str]]]]:
    """Name -> builder of (module, example inputs, input names), small configs, seeded."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    t = transformers
    ids = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 7, dtype=torch.int64)
    mask[1, 5:] = 0

    def wrap(model: Any, names: list[str], args: tuple[Any, ...]) -> tuple[Any, ...]:
        return _keywords_class()(model.eval(), names), args, names

    def bert() -> tuple[Any, ...]:
        config = t.BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2,
                              num_attention_heads=HEADS, intermediate_size=64,
                              max_position_embeddings=64, attn_implementation="eager")  # fmt: skip
        names = ["input_ids", "attention_mask", "token_type_ids"]
        return wrap(t.BertModel(config), names, (ids, mask, torch.zeros_like(ids)))

    def gpt2() -> tuple[Any, ...]:
        config = t.GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=2, n_head=HEADS,
                              n_positions=64)  # fmt: skip
        return wrap(t.GPT2Model(config), ["input_ids", "attention_mask"], (ids, mask))

    def distilbert() -> tuple[Any, ...]:
        config = t.DistilBertConfig(vocab_size=VOCAB, dim=HIDDEN, n_layers=2, n_heads=HEADS,
                                    hidden_dim=64, max_position_embeddings=64)  # fmt: skip
        return wrap(t.DistilBertModel(config), ["input_ids", "attention_mask"], (ids, mask))

    def t5() -> tuple[Any, ...]:
        config = t.T5Config(vocab_size=VOCAB, d_model=HIDDEN, d_kv=8, d_ff=64, num_layers=2,
                            num_heads=HEADS, decoder_start_token_id=0)  # fmt: skip
        names = ["input_ids", "decoder_input_ids"]
        return wrap(t.T5Model(config), names, (ids, ids[:, :3]))

    def whisper_decoder() -> tuple[Any, ...]:
        config = t.WhisperConfig(
            vocab_size=VOCAB, d_model=HIDDEN, encoder_layers=1, decoder_layers=2,
            encoder_attention_heads=HEADS, decoder_attention_heads=HEADS, encoder_ffn_dim=64,
            decoder_ffn_dim=64, max_source_positions=16, max_target_positions=32,
            num_mel_bins=8, pad_token_id=1, bos_token_id=2, eos_token_id=3,
            decoder_start_token_id=2,
        )  # fmt: skip
        whisper = t.WhisperForConditionalGeneration(config).eval()

        class Decoder(torch.nn.Module):
            """The decoder and its logits; the mask given, so no packed-sequence check runs."""

            def __init__(self) -> None:
                super().__init__()
                self.decoder, self.proj = whisper.model.decoder, whisper.proj_out

            def forward(self, input_ids: Any, encoder_hidden_states: Any) -> Any:
                mask = torch.ones_like(input_ids)
                out = self.decoder(
                    input_ids=input_ids, encoder_hidden_states=encoder_hidden_states,
                    attention_mask=mask, use_cache=False,
                )  # fmt: skip
                return self.proj(out.last_hidden_state)

        states = torch.randn(2, 16, HIDDEN, generator=torch.Generator().manual_seed(1))
        return Decoder(), (ids[:, :5], states), ["input_ids", "encoder_hidden_states"]

    def lstm() -> tuple[Any, ...]:
        class Tagger(torch.nn.Module):
            """A bidirectional LSTM and a linear head (what a tagger exports)."""

            def __init__(self) -> None:
                super().__init__()
                self.lstm = torch.nn.LSTM(8, 16, batch_first=True, bidirectional=True)
                self.head = torch.nn.Linear(32, 4)

            def forward(self, x: Any) -> Any:
                return self.head(self.lstm(x)[0])

        return Tagger().eval(), (torch.randn(2, 5, 8),), ["x"]

    return {
        "bert": bert,
        "gpt2": gpt2,
        "distilbert": distilbert,
        "t5": t5,
        "whisper_decoder": whisper_decoder,
        "lstm": lstm,
    }


@functools.cache
def _keywords_class() -> type:
    """A torch module that calls a model with keyword arguments and returns its last state."""
    import torch

    class Keywords(torch.nn.Module):
        def __init__(self, model: Any, names: list[str]) -> None:
            super().__init__()
            self.model, self.names = model, names

        def forward(self, *args: Any) -> Any:
            return self.model(**dict(zip(self.names, args, strict=True))).last_hidden_state

    return Keywords


def torch_export(model: str, dynamo: bool = False) -> Callable[[Path], Path]:
    """A transformers model (see :func:`_models`) exported by torch.onnx."""

    def make(folder: Path) -> Path:
        path = folder / f"{model}.{'dynamo' if dynamo else 'torchscript'}.onnx"
        if path.exists():
            return path
        torch = pytest.importorskip("torch")
        if dynamo:
            pytest.importorskip("onnxscript")
        builders = _models()
        torch.manual_seed(0)
        module, args, names = builders[model]()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if dynamo:
                dim = torch.export.Dim.DYNAMIC
                shapes: tuple[Any, ...] = tuple({0: dim, 1: dim} for _ in names)
                if isinstance(module, _keywords_class()):
                    shapes = (shapes,)  # its forward takes *args
                torch.onnx.export(module, args, str(path), input_names=names, opset_version=18,
                                  dynamo=True, dynamic_shapes=shapes)  # fmt: skip
            else:
                dynamic = {n: {0: "batch", 1: _SEQ.get(n, "seq")} for n in names}
                torch.onnx.export(module, args, str(path), input_names=names, opset_version=17,
                                  dynamo=False, dynamic_axes=dynamic)  # fmt: skip
        return path

    return make


def text_feeds(model: onnx.ModelProto) -> Feeds:
    """Token ids, a padding mask (row 1 ends with 2 pads), zero token types, hidden states."""
    rng, feeds = _rng(), {}
    for vi in model.graph.input:
        elem = vi.type.tensor_type.elem_type
        if vi.name == "encoder_hidden_states":
            feeds[vi.name] = rng.standard_normal((2, 16, HIDDEN)).astype(np.float32)
        elif vi.name == "x":
            feeds[vi.name] = rng.standard_normal((2, 5, 8)).astype(np.float32)
        elif vi.name == "attention_mask":
            mask = np.ones((2, 7), np.int64)
            mask[1, 5:] = 0
            feeds[vi.name] = mask
        elif vi.name == "token_type_ids":
            feeds[vi.name] = np.zeros((2, 7), np.int64)
        else:
            seq = {"decoder_input_ids": 3}.get(vi.name, 7)
            feeds[vi.name] = rng.integers(0, VOCAB, (2, seq))
        feeds[vi.name] = feeds[vi.name].astype(onnx.helper.tensor_dtype_to_np_dtype(elem))
    return feeds


# ---------------------------------------------------------------- tools applied to exports


def after(tool: str, base: Callable[[Path], Path], **options: Any) -> Callable[[Path], Path]:
    """``base``'s file after ``tool``: "onnxsim", "onnxslim", "ort_optimize", "ort_quantize"."""

    def make(folder: Path) -> Path:
        src = base(folder)
        path = src.with_name(f"{src.stem}.{tool}.onnx")
        if not path.exists():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _TOOLS[tool](src, path, **options)
        return path

    return make


def _onnxsim(src: Path, dst: Path) -> None:
    onnxsim = pytest.importorskip("onnxsim", reason="onnxsim is not installed")
    model, ok = onnxsim.simplify(onnx.load(src))
    assert ok, "onnxsim could not validate its own simplification"
    onnx.save(model, dst)


def _onnxslim(src: Path, dst: Path) -> None:
    onnxslim = pytest.importorskip("onnxslim", reason="onnxslim is not installed")
    onnx.save(onnxslim.slim(onnx.load(src)), dst)


def _ort_optimize(src: Path, dst: Path, model_type: str) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(src), model_type=model_type, num_heads=HEADS, hidden_size=HIDDEN)
    optimized.save_model_to_file(str(dst))


def _ort_quantize(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)


_TOOLS: dict[str, Callable[..., None]] = {
    "onnxsim": _onnxsim,
    "onnxslim": _onnxslim,
    "ort_optimize": _ort_optimize,
    "ort_quantize": _ort_quantize,
}


# ---------------------------------------------------------------- the corpus

_OCR = "rapidocr_onnxruntime"
_VAD = "silero_vad"
_BERT, _GPT2, _T5 = torch_export("bert"), torch_export("gpt2"), torch_export("t5")

_DET, _CLS = "models/ch_PP-OCRv4_det_infer.onnx", "models/ch_ppocr_mobile_v2.0_cls_infer.onnx"
_REC = "models/ch_PP-OCRv4_rec_infer.onnx"


def _vad(name: str, **kw: Any) -> Entry:
    return Entry(f"vad{name}", packaged(_VAD, f"data/silero_vad{name}.onnx"), vad_feeds, **kw)


def _text(name: str, make: Callable[[Path], Path], **kw: Any) -> Entry:
    return Entry(name, make, text_feeds, **kw)


ENTRIES = [
    Entry("ocr_det", packaged(_OCR, _DET), image_feeds((1, 3, 64, 96))),
    Entry("ocr_cls", packaged(_OCR, _CLS), image_feeds((2, 3, 48, 192))),
    Entry("ocr_rec", packaged(_OCR, _REC), image_feeds((2, 3, 48, 160)), slow=True),
    _vad("_16k_sequence"),
    _vad("_openvino_16k"),
    _vad("", needs=("If",)),
    _vad("_16k_op15", needs=("If",)),
    _vad("_half", atol=2e-3, needs=("If",)),
    _vad("_op18_ifless", needs=("If",)),
    _text("bert", _BERT),
    _text("gpt2", _GPT2),  # CSE merged into a removed node here (issue 10, item 1)
    _text("t5", _T5),
    _text("distilbert", torch_export("distilbert"), slow=True),
    _text("whisper_decoder", torch_export("whisper_decoder"), slow=True),
    _text("bert.onnxsim", after("onnxsim", _BERT)),  # item 1 too
    _text("gpt2.onnxslim", after("onnxslim", _GPT2)),
    _text("gpt2.onnxsim", after("onnxsim", _GPT2), slow=True),
    _text("bert.onnxslim", after("onnxslim", _BERT), slow=True),
    _text("t5.onnxsim", after("onnxsim", _T5), slow=True),
    _text("t5.onnxslim", after("onnxslim", _T5), slow=True),
    _text("bert.ort_optimize", after("ort_optimize", _BERT, model_type="bert")),
    _text("gpt2.ort_optimize", after("ort_optimize", _GPT2, model_type="gpt2"), slow=True),
    _text("t5.ort_optimize", after("ort_optimize", _T5, model_type="t5"), slow=True),
    _text("bert.ort_quantize", after("ort_quantize", _BERT), slow=True),
    # onnxruntime quantizes the LSTM's activations too (see ir/ops/microsoft/quant.py).
    _text("lstm.ort_quantize", after("ort_quantize", torch_export("lstm")), atol=1e-2),
    _text("bert.dynamo", torch_export("bert", dynamo=True), slow=True),
    _text("gpt2.dynamo", torch_export("gpt2", dynamo=True), slow=True),
    _text("distilbert.dynamo", torch_export("distilbert", dynamo=True), slow=True),
    _text("whisper_decoder.dynamo", torch_export("whisper_decoder", dynamo=True), slow=True),
]
