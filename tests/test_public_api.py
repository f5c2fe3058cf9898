"""Snapshot of the public API: adding or removing a public name must be deliberate.

A module's public names are its ``__all__``; for a module without one, the names it
defines itself (functions and classes whose ``__module__`` is the module). When this
test fails on purpose (a new function, a removed one), regenerate the snapshot, which
rewrites ``SNAPSHOT`` below, and review the diff:

    python tests/test_public_api.py --update
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

MODULES = (
    "tracer",
    "tracer.autograd",
    "tracer.nn",
    "tracer.nn.functional",
    "tracer.optim",
    "tracer.data",
    "tracer.metrics",
    "ir",
    "ir.ops",
    "runtime",
    "runtime.text",
    "export",
)

SNAPSHOT: dict[str, list[str]] = {
    "export": [
        "DEFAULT_OPSET",
        "from_model",
        "load",
        "save",
        "to_model",
    ],
    "ir": [
        "DTypeError",
        "ExportError",
        "Graph",
        "GraphInvariantError",
        "GraphcapError",
        "Node",
        "ShapeError",
        "TensorType",
        "UnsupportedOpError",
        "Value",
        "grad",
        "ops",
        "optimize",
        "verify",
    ],
    "ir.ops": [
        "InferContext",
        "OpDef",
        "VjpContext",
        "all_ops",
        "bind",
        "get",
        "ints",
        "op",
        "register",
        "scalar",
    ],
    "runtime": [
        "BackendUnavailableError",
        "DeviceFallbackWarning",
        "FeedError",
        "Interpreter",
        "NodeExecutionError",
        "Pipeline",
        "PipelineError",
        "PipelineInputError",
        "Session",
        "Signature",
        "load",
        "save_pipeline",
    ],
    "runtime.text": [
        "Encoding",
        "RegexTokenizer",
        "Vocab",
        "WordPieceTokenizer",
        "basic_english",
        "build_vocab_from_iterator",
        "get_tokenizer",
        "load_vocab_file",
        "ngrams",
        "vocab",
    ],
    "tracer": [
        "Compiled",
        "Tensor",
        "TraceError",
        "TrainStep",
        "ValuesIndices",
        "add",
        "amax",
        "amin",
        "arange",
        "argmax",
        "argmin",
        "argsort",
        "as_tensor",
        "autograd",
        "bool",
        "broadcast_to",
        "cat",
        "ceil",
        "chunk",
        "clamp",
        "clip",
        "clone",
        "compile",
        "compile_step",
        "concat",
        "concatenate",
        "cos",
        "cumsum",
        "data",
        "div",
        "dot",
        "double",
        "einsum",
        "empty",
        "empty_like",
        "enable_grad",
        "eq",
        "erf",
        "exp",
        "eye",
        "flatten",
        "flip",
        "float16",
        "float32",
        "float64",
        "floor",
        "floor_divide",
        "fmod",
        "from_numpy",
        "full",
        "full_like",
        "gather",
        "ge",
        "gt",
        "half",
        "index_select",
        "int16",
        "int32",
        "int64",
        "int8",
        "is_grad_enabled",
        "is_tensor",
        "isfinite",
        "isinf",
        "isnan",
        "le",
        "linspace",
        "load",
        "log",
        "log_softmax",
        "logical_and",
        "logical_not",
        "logical_or",
        "logical_xor",
        "logsumexp",
        "long",
        "lt",
        "manual_seed",
        "masked_fill",
        "matmul",
        "maximum",
        "mean",
        "metrics",
        "minimum",
        "mul",
        "narrow",
        "ne",
        "neg",
        "nn",
        "no_grad",
        "norm",
        "numel",
        "ones",
        "ones_like",
        "optim",
        "permute",
        "prod",
        "rand",
        "rand_like",
        "randint",
        "randn",
        "randn_like",
        "randperm",
        "reciprocal",
        "relu",
        "remainder",
        "reshape",
        "rsqrt",
        "save",
        "set_grad_enabled",
        "short",
        "sigmoid",
        "sign",
        "sin",
        "softmax",
        "sort",
        "split",
        "sqrt",
        "squeeze",
        "stack",
        "std",
        "sub",
        "swapaxes",
        "t",
        "tanh",
        "tensor",
        "topk",
        "trace",
        "transpose",
        "tril",
        "triu",
        "true_divide",
        "trunc",
        "uint8",
        "unbind",
        "unflatten",
        "unsqueeze",
        "var",
        "where",
        "zeros",
        "zeros_like",
    ],
    "tracer.autograd": [
        "backward",
        "enable_grad",
        "grad",
        "is_grad_enabled",
        "no_grad",
        "set_grad_enabled",
    ],
    "tracer.data": [
        "BatchSampler",
        "BucketBatchSampler",
        "DataLoader",
        "Dataset",
        "Encoding",
        "IterableDataset",
        "RandomSampler",
        "RegexTokenizer",
        "Sampler",
        "SequentialSampler",
        "Subset",
        "TensorDataset",
        "Vectors",
        "Vocab",
        "WordPieceTokenizer",
        "basic_english",
        "build_embedding_matrix",
        "build_vocab_from_iterator",
        "default_collate",
        "default_convert",
        "get_tokenizer",
        "load_npy_embeddings",
        "load_vocab_file",
        "ngrams",
        "open_text",
        "pad_collate",
        "pad_sequence",
        "random_split",
        "read_conll",
        "read_csv",
        "read_word_vectors",
        "vocab",
    ],
    "tracer.metrics": [
        "UndefinedMetricWarning",
        "accuracy",
        "accuracy_score",
        "confusion_matrix",
        "entity_f1_score",
        "entity_precision_recall_fscore_support",
        "entity_precision_score",
        "entity_recall_score",
        "entity_report",
        "entity_types",
        "f1_score",
        "get_entities",
        "plot_confusion_matrix",
        "precision_recall_fscore_support",
        "precision_score",
        "recall_score",
        "token_accuracy",
    ],
    "tracer.nn": [
        "Dropout",
        "Embedding",
        "GELU",
        "GRU",
        "Identity",
        "LSTM",
        "LayerNorm",
        "LeakyReLU",
        "Linear",
        "LogSoftmax",
        "Module",
        "ModuleDict",
        "ModuleList",
        "MultiheadAttention",
        "Parameter",
        "PositionalEmbedding",
        "RNN",
        "ReLU",
        "Sequential",
        "Sigmoid",
        "SinusoidalPositionalEmbedding",
        "Softmax",
        "Softplus",
        "Tanh",
        "TransformerDecoderLayer",
        "TransformerEncoder",
        "TransformerEncoderLayer",
        "functional",
        "init",
        "utils",
    ],
    "tracer.nn.functional": [
        "binary_cross_entropy_with_logits",
        "cross_entropy",
        "dropout",
        "elu",
        "embedding",
        "gelu",
        "layer_norm",
        "leaky_relu",
        "linear",
        "log_softmax",
        "mse_loss",
        "nll_loss",
        "pad",
        "relu",
        "scaled_dot_product_attention",
        "sigmoid",
        "silu",
        "softmax",
        "softplus",
        "tanh",
    ],
    "tracer.optim": [
        "Adam",
        "AdamW",
        "Optimizer",
        "SGD",
        "get_cosine_schedule_with_warmup",
        "get_linear_schedule_with_warmup",
        "lr_scheduler",
    ],
}


def public_names(module_name: str) -> list[str]:
    """The sorted public names of ``module_name`` (see the module docstring)."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_") and getattr(v, "__module__", None) == module_name
        ]
    return sorted(names)


@pytest.mark.parametrize("module_name", MODULES)
def test_public_names_match_the_snapshot(module_name: str) -> None:
    now = set(public_names(module_name))
    then = set(SNAPSHOT[module_name])
    added, removed = sorted(now - then), sorted(then - now)
    assert not added and not removed, (
        f"the public API of {module_name} changed:\n"
        f"  added:   {added}\n  removed: {removed}\n"
        "if that is intended, regenerate it: python tests/test_public_api.py --update"
    )


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_name_exists(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [n for n in public_names(module_name) if not hasattr(module, n)]
    assert not missing, f"{module_name}.__all__ names what it does not define: {missing}"


def _snapshot_source() -> str:
    lines = ["SNAPSHOT: dict[str, list[str]] = {"]
    for m in sorted(MODULES):
        names = public_names(m)
        lines.append(f'    "{m}": [' + ("" if names else "],"))
        lines += [f'        "{n}",' for n in names]
        lines += ["    ],"] if names else []
    return "\n".join([*lines, "}"]) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    source = _snapshot_source()
    if "--update" in sys.argv:
        path = Path(__file__)
        pattern = re.compile(r"^SNAPSHOT: dict\[str, list\[str\]\] = \{\n.*?^\}\n", re.M | re.S)
        path.write_text(pattern.sub(lambda _: source, path.read_text(), count=1))
        print(f"rewrote SNAPSHOT in {path}")
    else:
        print(source, end="")
