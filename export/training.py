"""The portable training bundle: a folder that lets plain onnxruntime train a graphcap model.

:func:`save_training_bundle` writes, atomically (built in a temporary folder beside the
target, then renamed into place)::

    bundle.json        the manifest: what to feed, what comes out, how to step (see below)
    train_step.onnx    forward + loss + backward + optimizer update, standard ONNX ops; the
                       parameters and optimizer state are graph inputs, not weights inside it
    state.safetensors  the initial parameters and optimizer state, keyed by those input names
    inference.onnx     the model's inference graph, holding the same weights as the state

One training step with onnxruntime, numpy, json and safetensors only: feed the batch, every
``lr`` input (a 0-d float64 array, value in ``manifest["lr"]``) and every array of
``state.safetensors`` under its own name; output ``manifest["loss"]`` is the loss, and each
``output -> input`` pair of ``manifest["updates"]`` gives that input's value for the next
step. Every other optimizer hyper-parameter is a constant in the graph (listed in
``manifest["optimizer"]``). safetensors stores 0-d arrays (the ``"<param>.step"`` counters,
int64) with shape ``[]``; :func:`load_training_bundle` checks every array's dtype and shape
against the manifest.

This module sits in the top layer with ``export.cli``: it takes a ``tracer`` train step (see
:func:`tracer.train_step.build_train_step`) and writes it with the codec, ``export.onnx``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from export.onnx import files, writer
from ir.errors import ExportError
from ir.graph import Graph, Value
from tracer.serialization import CheckpointError, read_tensors

if TYPE_CHECKING:
    from tracer.train_step import TrainStepGraph

FORMAT = "graphcap.training-bundle"
VERSION = 1
MANIFEST = "bundle.json"
TRAIN_STEP = "train_step.onnx"
INFERENCE = "inference.onnx"
STATE = "state.safetensors"

HOW_TO_STEP = (
    "Open train_step.onnx with onnxruntime. Feed each batch input, each lr input as a 0-d "
    "float64 array (values in 'lr'), and every array of state.safetensors under its own name "
    "(parameters and optimizer state). Output 'loss' is the batch's loss; for each "
    "output -> input pair in 'updates', feed that output under the input's name on the next "
    "step. Other hyper-parameters are constants in the graph. inference.onnx holds the "
    "initial weights as initializers named in inference.parameters: for trained weights, "
    "replace those initializers (onnx.numpy_helper.from_array), or pass each with "
    "SessionOptions.add_initializer(name, OrtValue.ortvalue_from_numpy(array)) and "
    "graph_optimization_level ORT_DISABLE_ALL (onnxruntime folds constants before it "
    "applies added initializers)."
)


@dataclass
class TrainingBundle:
    """A loaded training bundle.

    Attributes:
        path: the bundle's folder.
        manifest: ``bundle.json``'s content (see the module docstring).
        state: parameters and optimizer state by train-step input name, in manifest order.
    """

    path: Path
    manifest: dict[str, Any]
    state: dict[str, np.ndarray]

    @property
    def train_step_path(self) -> Path:
        """The train-step ONNX file."""
        return self.path / str(self.manifest["files"]["train_step"])

    @property
    def inference_path(self) -> Path:
        """The inference ONNX file."""
        return self.path / str(self.manifest["files"]["inference"])

    def feeds(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every input of one train step: ``batch``, the learning rates and the state."""
        lrs = {n: np.asarray(v, np.float64) for n, v in self.manifest["lr"].items()}
        return {**batch, **lrs, **self.state}

    def advance(self, outputs: Mapping[str, np.ndarray]) -> None:
        """Take a step's outputs (by name) as the state of the next step."""
        for out, target in self.manifest["updates"].items():
            self.state[target] = np.asarray(outputs[out])


def save_training_bundle(
    directory: str | os.PathLike[str],
    step: TrainStepGraph,
    inference: Graph,
    optimizer: Any,
    *,
    opset: int | None = None,
) -> Path:
    """Write a training bundle (see the module docstring) to ``directory``, atomically.

    Args:
        directory: the folder to create, or an existing bundle (or empty folder) to replace.
        step: a ``tracer.train_step.TrainStepGraph`` (from ``build_train_step``).
        inference: the model's inference graph (``tracer.trace``); its initializers named
            like the step's parameters are written with the parameters' current values.
        optimizer: the optimizer the step was built with; gives the state, learning rates
            and hyper-parameters.
        opset: default-domain opset for both ONNX files (None: ``export.DEFAULT_OPSET``, or
            the lowest newer one that has every op).

    Returns:
        The bundle's path.

    Raises:
        FileNotFoundError: the parent folder does not exist.
        FileExistsError: ``directory`` is a file, or a non-empty folder that is no bundle.
        ExportError: a graph cannot be written (see ``export.save``).
    """
    from safetensors.numpy import save_file

    target = Path(directory)
    _check_target(target)
    state = _initial_state(step, optimizer)
    mapping = _inference_parameters(inference, state, step)
    manifest = _manifest(step, inference, optimizer, state, mapping)
    with files.folder_lock(target.parent):
        files.sweep(target)  # folders a killed save left
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        tmp.mkdir()
        try:
            writer.save(_with_weights(inference, state, mapping), tmp / INFERENCE, opset=opset)
            writer.save(step.graph, tmp / TRAIN_STEP, opset=opset)
            save_file(state, str(tmp / STATE), metadata={"format": FORMAT})
            (tmp / MANIFEST).write_text(_dumps(manifest))
            for name in os.listdir(tmp):
                files.sync(tmp / name)
            files.commit_folder(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    return target


def load_training_bundle(directory: str | os.PathLike[str]) -> TrainingBundle:
    """Read a bundle's manifest and state, checking them against each other.

    Raises:
        FileNotFoundError: ``directory`` does not exist.
        ExportError: it is not a training bundle, or one that is incomplete or corrupt
            (the message names the file and what is wrong).
    """
    path = Path(directory)
    if not path.is_dir():
        raise FileNotFoundError(f"no training bundle at {str(path)!r}: no such folder")
    manifest = _read_manifest(path)
    for key in ("train_step", "inference"):
        _inside(path, manifest["files"][key])
    state = _inside(path, manifest["files"]["state"])
    try:
        _, raw = read_tensors(state)  # the resolved file, as checked
    except CheckpointError as err:
        raise ExportError(f"training bundle {path}: {STATE} is unreadable ({err})") from err
    return TrainingBundle(path, manifest, _checked_state(path, manifest, raw))


def _inside(bundle: Path, name: str) -> Path:
    """The bundle's file ``name``: a regular file that resolves inside the bundle's folder.

    A symlink out of the bundle (``state.safetensors -> /etc/...``) is refused, so a bundle
    from elsewhere reads nothing outside itself.
    """
    base = os.path.realpath(bundle)
    target = os.path.realpath(bundle / name)
    if os.path.commonpath([base, target]) != base:
        raise ExportError(
            f"training bundle {bundle}: {name} resolves outside the bundle ({target}); "
            "refusing to read it"
        )
    if not os.path.isfile(target):
        raise ExportError(f"training bundle {bundle}: {name} is missing (or not a file)")
    return Path(target)


# ---------------------------------------------------------------- writing


def _check_target(target: Path) -> None:
    if not target.parent.is_dir():
        raise FileNotFoundError(f"cannot write a training bundle in {str(target.parent)!r}")
    if target.exists() and not _replaceable(target):
        raise FileExistsError(
            f"refusing to replace {str(target)!r}: it is a file or a non-empty folder that "
            f"holds no training bundle (no {MANIFEST}); choose a new path or remove it"
        )


def _replaceable(target: Path) -> bool:
    """An empty folder, or a folder whose manifest names this format."""
    if not target.is_dir():
        return False
    if not any(target.iterdir()):
        return True
    try:
        return json.loads((target / MANIFEST).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _initial_state(step: TrainStepGraph, optimizer: Any) -> dict[str, np.ndarray]:
    """Parameters, then each one's optimizer state, as the step's input names order them."""
    state: dict[str, np.ndarray] = {}
    for name, p in step.params.items():
        state[name] = np.array(p._data)
    for name, (param, key) in step.states.items():
        state[name] = np.array(optimizer.functional_state(step.params[param])[key])
    inputs = {v.name: v for v in step.graph.inputs}
    for name, array in state.items():
        want = inputs[name].type
        if array.dtype != want.dtype or array.shape != want.shape:
            raise ExportError(
                f"state {name!r} is {array.dtype}{list(array.shape)} but the train step's input "
                f"is {want}; was the optimizer changed after build_train_step?"
            )
    return state


def _inference_parameters(
    inference: Graph, state: Mapping[str, np.ndarray], step: TrainStepGraph
) -> dict[str, str]:
    """Step parameter -> the inference initializer holding it (same name, dtype and shape)."""
    found = {}
    for name in step.params:
        const = getattr(inference.initializers.get(name), "const", None)
        if const is not None and (const.shape, const.dtype) == (
            state[name].shape,
            state[name].dtype,
        ):
            found[name] = name
    return found


def _with_weights(
    inference: Graph, state: Mapping[str, np.ndarray], mapping: Mapping[str, str]
) -> Graph:
    """``inference`` with the mapped initializers holding the state's (current) values."""
    current = {i: state[p] for p, i in mapping.items()}
    stale = [i for i, a in current.items() if not np.array_equal(_const(inference, i), a)]
    if not stale:
        return inference
    g = inference.copy()
    for name in stale:
        old = g.initializers[name]
        new = g.add_initializer(g.fresh_name(name + "_trained"), current[name])
        g.replace_all_uses_with(old, new)
        g.remove_initializer(name)
        g.rename(new, name)
    g.verify()
    return g


def _manifest(
    step: TrainStepGraph,
    inference: Graph,
    optimizer: Any,
    state: Mapping[str, np.ndarray],
    mapping: Mapping[str, str],
) -> dict[str, Any]:
    inputs = {v.name: v for v in step.graph.inputs}
    groups = optimizer.param_groups
    return {
        "format": FORMAT,
        "version": VERSION,
        "producer": f"graphcap {_version()}",
        "files": {"train_step": TRAIN_STEP, "inference": INFERENCE, "state": STATE},
        "batch": [_describe(inputs[n]) for n in step.batch],
        "lr": {n: float(g["lr"]) for n, g in zip(step.lrs, groups, strict=True)},
        "loss": step.loss,
        "updates": dict(step.updates),
        "parameters": list(step.params),
        "state": [
            {"name": n, "dtype": a.dtype.name, "shape": list(a.shape)} for n, a in state.items()
        ],
        "optimizer": {
            "name": type(optimizer).__name__,
            "param_groups": [
                {
                    **{k: _plain(v) for k, v in g.items() if k not in ("params", "param_names")},
                    "lr_input": step.lrs[i],
                    "parameters": [
                        n for n, gi in zip(step.params, step.groups, strict=True) if gi == i
                    ],
                }
                for i, g in enumerate(groups)
            ],
        },
        "inference": {
            "file": INFERENCE,
            "inputs": [_describe(v) for v in inference.inputs],
            "outputs": [_describe(v) for v in inference.outputs],
            "parameters": dict(mapping),
        },
        "how_to_step": HOW_TO_STEP,
    }


def _dumps(value: Any, indent: int = 0) -> str:
    """Indented JSON, where any list or object that fits in one short line is written so."""
    flat = json.dumps(value)
    if not isinstance(value, dict | list) or (indent and len(flat) + indent <= 96):
        return flat if indent else flat + "\n"
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}: {_dumps(v, indent + 2)}" for k, v in value.items()]
        text = "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    else:
        text = (
            "[\n"
            + ",\n".join(pad + _dumps(v, indent + 2) for v in value)
            + "\n"
            + " " * indent
            + "]"
        )
    return text if indent else text + "\n"


def _const(g: Graph, name: str) -> np.ndarray:
    const = g.initializers[name].const
    assert const is not None  # an initializer always holds its array
    return const


def _describe(v: Value) -> dict[str, Any]:
    """Name, dtype and shape of a graph input or output (symbols by name, unknown as null)."""
    shape = v.type.shape
    dims = (
        None if shape is None else [d if d is None or isinstance(d, int) else str(d) for d in shape]
    )
    return {"name": v.name, "dtype": np.dtype(v.dtype).name, "shape": dims}


def _plain(value: Any) -> Any:
    """A hyper-parameter as JSON: tuples become lists, 0-d arrays and tensors numbers."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    try:
        return float(np.asarray(getattr(value, "_data", value)))
    except (TypeError, ValueError):
        return repr(value)


def _version() -> str:
    from importlib import metadata

    with contextlib.suppress(metadata.PackageNotFoundError):
        return metadata.version("graphcap")
    return "unknown"


# ---------------------------------------------------------------- reading

_REQUIRED = ("files", "batch", "lr", "loss", "updates", "parameters", "state", "optimizer")


def _read_manifest(path: Path) -> dict[str, Any]:
    file = path / MANIFEST
    if not file.is_file():
        raise ExportError(
            f"{str(path)!r} is not a training bundle: it has no {MANIFEST} "
            "(save_training_bundle or `graphcap export --training` writes one)"
        )
    try:
        manifest = json.loads(file.read_text())
    except RecursionError:
        raise ExportError(f"{file}: its JSON nests deeper than Python can read") from None
    except (ValueError, OSError) as err:
        raise ExportError(f"training bundle {path}: {MANIFEST} is not valid JSON ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ExportError(f"{file}: format is {found!r}; expected {FORMAT!r}")
    version = manifest.get("version")
    if not isinstance(version, int) or not 1 <= version <= VERSION:
        raise ExportError(
            f"{file}: version {version!r}; this graphcap reads versions 1..{VERSION} "
            "(a newer graphcap wrote it?)"
        )
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing:
        raise ExportError(f"{file}: missing {', '.join(missing)}; the manifest is incomplete")
    files = manifest["files"]
    names = (
        [files.get(k) for k in ("train_step", "inference", "state")]
        if isinstance(files, dict)
        else []
    )
    plain = [isinstance(n, str) and n not in ("", ".", "..") and Path(n).name == n for n in names]
    if len(names) != 3 or not all(plain):
        raise ExportError(
            f"{file}: 'files' must name train_step, inference and state as plain file names "
            f"inside the bundle; got {files!r}"
        )
    _check_shapes(file, manifest)
    return manifest


def _check_shapes(file: Path, manifest: Mapping[str, Any]) -> None:
    """Refuse manifest entries of the wrong JSON type (they are read as these types later)."""
    entries = manifest["state"]
    good = isinstance(entries, list) and all(
        isinstance(e, dict)
        and isinstance(e.get("name"), str)
        and isinstance(e.get("dtype"), str)
        and isinstance(e.get("shape"), list)
        and all(isinstance(d, int) for d in e["shape"])
        for e in entries
    )
    if not good:
        raise ExportError(f"{file}: 'state' must list {{name, dtype, shape}} entries")
    lrs, updates = manifest["lr"], manifest["updates"]
    if not isinstance(lrs, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in lrs.values()
    ):
        raise ExportError(f"{file}: 'lr' must map input names to numbers")
    if not isinstance(updates, dict) or not all(isinstance(v, str) for v in updates.values()):
        raise ExportError(f"{file}: 'updates' must map output names to input names")


def _checked_state(
    path: Path, manifest: Mapping[str, Any], raw: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The state in manifest order, each array's dtype and shape as the manifest says."""
    entries = manifest["state"]
    names = [e["name"] for e in entries]
    extra = sorted(set(raw) - set(names))
    missing = [n for n in names if n not in raw]
    if missing or extra:
        raise ExportError(
            f"training bundle {path}: {STATE} does not match {MANIFEST} "
            f"(missing {missing or 'none'}, unexpected {extra or 'none'})"
        )
    for e in entries:
        array = raw[e["name"]]
        if array.dtype.name != e["dtype"] or list(array.shape) != list(e["shape"]):
            raise ExportError(
                f"training bundle {path}: {STATE}[{e['name']!r}] is {array.dtype.name}"
                f"{list(array.shape)}; {MANIFEST} says {e['dtype']}{list(e['shape'])}"
            )
    return {n: raw[n] for n in names}
