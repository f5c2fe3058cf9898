"""``graphcap export --training``: build the train step of the model and write a training bundle.

The bundle's format is :mod:`export.training`'s; this module turns the command's options
(``--target``, ``--loss``, ``--optimizer`` and its hyper-parameters) into a loss, an optimizer
and a :func:`tracer.train_step.build_train_step` call.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

import ir
import tracer
from export.cli.common import CommandError, UsageError, human_bytes
from export.cli.prepare import InputSpec, Prepared, symbol_sizes
from export.training import INFERENCE, save_training_bundle
from tracer import optim
from tracer.nn import functional as F  # noqa: N812 (PyTorch's spelling)
from tracer.train_step import build_train_step

LOSSES = ("cross_entropy", "mse", "bce_with_logits")
OPTIMIZERS = ("sgd", "adam", "adamw")
_TRAINING_ONLY = ("target", "loss", "optimizer", "lr", "momentum", "weight_decay", "ignore_index")


def check_training_options(args: argparse.Namespace) -> None:
    """Refuse training options without ``--training``, and ``--training`` without a target.

    Raises:
        UsageError: an option that does not apply to the command as given.
    """
    if not getattr(args, "training", False):
        given = [o for o in _TRAINING_ONLY if getattr(args, o, None) is not None]
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} applies only with --training")
        return
    if args.target is None:
        raise UsageError(
            "--training needs --target NAME:DTYPE[dims], the loss's target, "
            "e.g. --target y:int64[batch=4]"
        )
    if args.ignore_index is not None and (args.loss or "cross_entropy") != "cross_entropy":
        raise UsageError(f"--ignore-index applies to --loss cross_entropy, not {args.loss}")
    if args.momentum is not None and (args.optimizer or "adamw") != "sgd":
        raise UsageError(f"--momentum applies to --optimizer sgd, not {args.optimizer or 'adamw'}")


def export_training(args: argparse.Namespace, prepared: Prepared, out: Path) -> Path:
    """``--training``: trace for inference, build the train step, write the bundle, summarise.

    Returns:
        The bundle's ``inference.onnx`` (what ``--verify`` checks).

    Raises:
        UsageError: a model without parameters, a target that does not fit the loss, an
            invalid hyper-parameter, or an ``-o`` that is no bundle.
        CommandError: tracing, building or writing failed.
    """
    named = getattr(prepared.model, "named_parameters", None)
    if not callable(named):
        raise UsageError(
            f"--training: {prepared.target}() returned a {type(prepared.model).__name__}, which "
            "has no named_parameters(); return a tracer.nn.Module"
        )
    params = {n: p for n, p in named() if p.requires_grad}
    if not params:
        raise UsageError(f"--training: {prepared.target}() has no trainable parameters")
    inference = prepared.trace()
    if args.optimize:
        inference = ir.optimize(inference, args.optimize)
    loss = args.loss or "cross_entropy"
    target = _target_example(args.target, loss, prepared, args.seed)
    optimizer = _make_optimizer(args, list(params.values()))
    step = _build_step(args, prepared, target, optimizer, {id(p): n for n, p in params.items()})
    try:
        path = save_training_bundle(out, step, inference, optimizer, opset=args.opset)
    except (FileExistsError, FileNotFoundError) as err:
        raise UsageError(f"-o {args.output}: {err}") from err
    except Exception as err:
        raise CommandError(f"writing the training bundle {out} failed: {err}") from err
    ignore = "" if args.ignore_index is None else f", ignore_index={args.ignore_index}"
    print(training_summary(path, step, optimizer, f"{loss}(output, {args.target.name}{ignore})"))
    return path / INFERENCE


def _target_example(spec: InputSpec, loss: str, prepared: Prepared, seed: int) -> np.ndarray:
    """Random target values the loss accepts, after checking the spec against the output."""
    output = prepared.call(prepared.examples)[0]
    if output.dtype.kind != "f":
        raise UsageError(f"--training: the model's first output is {output.dtype}, not float")
    classes = bool(loss == "cross_entropy" and spec.dtype.kind in "iu")
    if spec.dtype.kind not in ("iuf" if loss == "cross_entropy" else "f"):
        raise UsageError(f"--target {spec}: --loss {loss} needs a float target")
    want = output.shape[:-1] if classes else output.shape
    if spec.shape != want:
        what = "class ids" if classes else "targets"
        raise UsageError(
            f"--target {spec}: the model's output is {list(output.shape)}, so {loss} needs "
            f"{what} of shape {list(want)}"
        )
    rng = np.random.default_rng(seed + 1)
    if classes:
        return rng.integers(0, output.shape[-1], size=spec.shape).astype(spec.dtype)
    if loss == "cross_entropy":  # probabilities over the last axis
        p = rng.random(spec.shape) + 0.1
        return (p / p.sum(-1, keepdims=True)).astype(spec.dtype)
    if loss == "bce_with_logits":
        return (rng.random(spec.shape) < 0.5).astype(spec.dtype)
    return rng.standard_normal(spec.shape).astype(spec.dtype)


def _make_optimizer(args: argparse.Namespace, params: list[Any]) -> Any:
    name = args.optimizer or "adamw"
    kwargs: dict[str, Any] = {"lr": 1e-3 if args.lr is None else args.lr}
    if args.weight_decay is not None:
        kwargs["weight_decay"] = args.weight_decay
    if name == "sgd" and args.momentum is not None:
        kwargs["momentum"] = args.momentum
    kind = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}[name]
    try:
        return kind(params, **kwargs)
    except ValueError as err:
        raise UsageError(f"--optimizer {name}: {err}") from err


def _loss_of(args: argparse.Namespace) -> Callable[[Any, Any], Any]:
    """``loss(output, target)`` with ``tracer.nn.functional``; cross-entropy's classes last."""
    name = args.loss or "cross_entropy"
    ignore = -100 if args.ignore_index is None else args.ignore_index

    def loss(output: Any, target: Any) -> Any:
        if name == "mse":
            return F.mse_loss(output, target)
        if name == "bce_with_logits":
            return F.binary_cross_entropy_with_logits(output, target)
        if output.ndim > 2:  # [batch, seq, C] logits: one row per token
            classes = output.shape[-1]
            output = output.reshape(-1, classes)
            target = (
                target.reshape(-1, classes) if target.is_floating_point() else target.reshape(-1)
            )
        return F.cross_entropy(output, target, ignore_index=ignore)

    return loss


def _build_step(
    args: argparse.Namespace,
    prepared: Prepared,
    target: np.ndarray,
    optimizer: Any,
    names: Mapping[int, str],
) -> Any:
    """The train step of ``loss(model(inputs)[0], target)``, the batch axes dynamic as given."""
    spec, loss = args.target, _loss_of(args)
    if spec.name in prepared.examples:
        raise UsageError(f"--target {spec}: the model already has an input named {spec.name!r}")
    axes = {**prepared.dynamic_axes, **({spec.name: dict(spec.dynamic)} if spec.dynamic else {})}
    symbol_sizes(axes, {**prepared.examples, spec.name: target})

    def loss_fn(**batch: Any) -> Any:
        model_args, model_kwargs = prepared.arguments(batch)
        output = prepared.model(*model_args, **model_kwargs)
        if isinstance(output, Mapping):
            output = next(iter(output.values()))
        elif isinstance(output, tuple | list):
            output = output[0]
        return loss(output, batch[spec.name])

    batch = {n: tracer.tensor(a) for n, a in {**prepared.examples, spec.name: target}.items()}
    level = args.optimize
    train = getattr(prepared.model, "train", None)
    if callable(train):
        train()  # the train step keeps dropout on; inference was traced in eval mode
    try:
        return build_train_step(
            loss_fn, batch, optimizer, names=names, dynamic_axes=axes, optimize=level
        )
    except tracer.TraceError as err:
        raise CommandError(f"tracing the training step of {prepared.target} failed: {err}") from err
    except Exception as err:
        raise CommandError(
            f"building the training step of {prepared.target} failed: {type(err).__name__}: {err}"
        ) from err
    finally:
        evaluate = getattr(prepared.model, "eval", None)
        if callable(evaluate):
            evaluate()


def training_summary(path: Path, step: Any, optimizer: Any, loss: str) -> str:
    """A few lines on a written training bundle: files, batch, loss, optimizer, parameters."""
    files = sorted(f for f in path.iterdir() if f.is_file())
    inputs = {v.name: v for v in step.graph.inputs}
    size = sum(p._data.size for p in step.params.values())
    lrs = ", ".join(
        f"{n}={g['lr']:g}" for n, g in zip(step.lrs, optimizer.param_groups, strict=True)
    )
    lines = [f"wrote training bundle {path} ({human_bytes(sum(f.stat().st_size for f in files))})"]
    lines += [f"  file    {f.name} ({human_bytes(f.stat().st_size)})" for f in files]
    lines += [f"  batch   {n}: {inputs[n].type}" for n in step.batch]
    lines.append(f"  loss    {loss} -> {step.loss}")
    lines.append(f"  optim   {type(optimizer).__name__} ({lrs})")
    lines.append(
        f"  params  {size:,} in {len(step.params)} tensors; {len(step.states)} state arrays"
    )
    lines.append(f"  nodes   {len(step.graph.nodes)} in the train step")
    lines.append(f"  how to  step with onnxruntime alone: {path / 'bundle.json'}, how_to_step")
    return "\n".join(lines)
