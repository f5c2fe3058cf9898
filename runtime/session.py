"""``Session``: one entry point that runs a graph, an ``.onnx`` file or a ``ModelProto``.

Backends: ``"interpreter"`` (graphcap's NumPy interpreter, the reference semantics),
``"onnxruntime"`` (CPU, or CUDA with ``device="cuda"``) and ``"auto"``, which picks
onnxruntime when it can load the model and the interpreter otherwise (e.g. for an op
onnxruntime lacks); ``backend`` and ``repr`` say which one runs and why. Every ``run``
validates its feeds against ``input_signature`` first, so a wrong feed gets one readable
error instead of a backend's; on onnxruntime, feeds of a shape signature not seen before
also go through the registry's shape rules (``runtime.guard``), because onnxruntime trusts
some preconditions it does not check and a bad request could kill the process. A session
keeps no per-call state: threads may share one.
"""

from __future__ import annotations

import tempfile
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from export.onnx import reader, writer
from export.onnx.tensors import read_model
from ir.errors import GraphcapError
from ir.graph import Graph
from runtime.errors import (
    BackendUnavailableError,
    DeviceFallbackWarning,
    FeedError,
    NodeExecutionError,
)
from runtime.guard import ShapeGuard
from runtime.numpy_interpreter import Interpreter
from runtime.ort_backend import OrtBackend, parse_device
from runtime.signature import Signature

if TYPE_CHECKING:
    from os import PathLike

Model = Graph | str | Path | onnx.ModelProto
_BACKENDS = ("auto", "interpreter", "onnxruntime")
# Weights from this size on go to onnxruntime as a file with external data: one protobuf
# holds at most 2 GiB, and the graph itself needs some room too.
_INLINE_LIMIT = 2**31 - 2**26


class Session:
    """Runs a model on the chosen backend and device.

    Args:
        model: an ``ir.graph.Graph``, the path of an ``.onnx`` file, or an ``onnx.ModelProto``.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; CUDA needs the onnxruntime backend.
        backend: ``"auto"``, ``"interpreter"`` or ``"onnxruntime"``.
        intra_op_threads: onnxruntime's threads inside one op (None: graphcap's setting,
            ``runtime.threads.get_num_threads()``; 0: onnxruntime's default).
        spinning: whether onnxruntime's idle threads spin-wait for work (its default); a
            server turns it off to leave the cores to request handling.
        optimization: onnxruntime's graph optimisation level ("disable", "basic",
            "extended", "all").
        check_feeds: on onnxruntime, run the registry's shape rules on each new signature of
            feed shapes before onnxruntime does (see ``runtime.guard``); False trusts the
            feeds. Models graphcap cannot read run unchecked.

    Attributes:
        backend: the backend that runs: ``"interpreter"`` or ``"onnxruntime"``.
        reason: why ``"auto"`` chose it (empty when the backend was named).
        device: where the model runs (``"cpu"`` when CUDA was asked for but is not usable).
        providers: onnxruntime's providers in use, or ``["numpy"]`` for the interpreter.
        input_signature: the inputs, with dtypes and (symbolic) shapes.
        output_signature: the outputs, likewise.

    Raises:
        ValueError: an unknown backend or device, or CUDA asked of the interpreter.
        BackendUnavailableError: the named backend cannot load the model.
    """

    def __init__(
        self,
        model: Model,
        device: str = "cpu",
        backend: str = "auto",
        *,
        intra_op_threads: int | None = None,
        optimization: str = "all",
        spinning: bool = True,
        check_feeds: bool = True,
    ) -> None:
        if backend not in _BACKENDS:
            raise ValueError(f"backend={backend!r}: expected one of {list(_BACKENDS)}")
        kind, _ = parse_device(device)
        if kind == "cuda" and backend == "interpreter":
            raise ValueError(
                "the interpreter runs on the CPU with NumPy; use device='cpu', or "
                "backend='onnxruntime' (or 'auto') to run on CUDA"
            )
        self._source = _Source(model)
        self._auto = backend == "auto"
        self._switch = threading.Lock()
        self.reason = ""
        self._ort: OrtBackend | None = None
        self._interp: Interpreter | None = None
        self._guard: ShapeGuard | None = None
        if backend in ("auto", "onnxruntime"):
            self._open_ort(device, backend, intra_op_threads, optimization, spinning)
        if check_feeds:
            self._guard = self._make_guard()
        if self._ort is None:
            self._interp = Interpreter(self._graph_for_interpreter())
            if kind == "cuda":
                warnings.warn(
                    f"device={device!r} was requested but onnxruntime cannot run this model "
                    f"({self.reason}); running on the CPU with the NumPy interpreter",
                    DeviceFallbackWarning,
                    stacklevel=2,
                )
        self.backend = "onnxruntime" if self._ort is not None else "interpreter"
        self.device = self._ort.device if self._ort is not None else "cpu"
        self.providers: list[str] = self._ort.providers if self._ort is not None else ["numpy"]
        self.input_signature, self.output_signature = self._source.signatures()
        self._source.release()

    def _open_ort(
        self,
        device: str,
        backend: str,
        intra_op_threads: int | None,
        optimization: str,
        spinning: bool,
    ) -> None:
        try:
            self._ort = OrtBackend(
                self._source.for_onnxruntime(),
                device,
                intra_op_threads=intra_op_threads,
                optimization=optimization,
                spinning=spinning,
                stacklevel=4,  # OrtBackend, _open_ort, Session, the caller
            )
        except Exception as err:
            # "auto" falls back on any failure (an op the writer or onnxruntime lacks); the
            # reason stays visible in ``reason`` and ``repr``.
            if backend == "onnxruntime":
                raise
            self.reason = f"onnxruntime cannot run it: {err}"
            return
        if backend == "auto":
            self.reason = "onnxruntime loaded the model"

    def _make_guard(self) -> ShapeGuard | None:
        """The feed guard for onnxruntime (None on the interpreter, which checks as it runs)."""
        return self._source.guard() if self._ort is not None else None

    def _graph_for_interpreter(self) -> Graph:
        try:
            return self._source.graph()
        except Exception as err:
            if not self.reason:
                raise
            raise BackendUnavailableError(
                f"neither backend can run the model: {self.reason}; and the interpreter "
                f"cannot read it: {err}"
            ) from err

    @property
    def input_names(self) -> tuple[str, ...]:
        """The input names, in signature order."""
        return self.input_signature.names

    @property
    def output_names(self) -> tuple[str, ...]:
        """The output names, in order."""
        return self.output_signature.names

    def run(
        self, feeds: Mapping[str, Any], outputs: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run the model on ``feeds`` and return its outputs by name.

        Args:
            feeds: one array per input; lists and scalars are converted with ``np.asarray``.
            outputs: names to return (default: every output). The interpreter accepts any
                value of the graph, intermediates included; onnxruntime only model outputs.

        Returns:
            ``{name: array}`` in output order.

        Raises:
            FeedError: missing or unexpected names, wrong dtypes, ranks or static dims, or a
                symbolic dim given two sizes (one error lists them all with the signature);
                shapes or scalar values an op's shape rule rejects (onnxruntime only: the
                interpreter reports those from the failing node); or an output name the
                backend cannot return.
            NodeExecutionError: a node failed while running (the message names it).
        """
        arrays = self.input_signature.validate(feeds)
        if self._ort is not None:
            unknown = [n for n in outputs or () if n not in self.output_names]
            if unknown:
                raise FeedError(
                    f"outputs {unknown} are not outputs of the model; onnxruntime returns only "
                    f"{list(self.output_names)} (backend='interpreter' returns any value)"
                )
            if self._guard is not None:
                self._guard.check(arrays)
            ort = self._ort
            try:
                return ort.run(arrays, outputs)
            except NodeExecutionError as err:
                if not (self._auto and _lacks_kernel(err)):
                    raise
                self._fall_back(ort, err)
        assert self._interp is not None
        return self._interp.run(arrays, outputs)

    def _fall_back(self, ort: OrtBackend, err: NodeExecutionError) -> None:
        """Switch an ``auto`` session to the interpreter, once, and say so.

        onnxruntime loaded the model but lacks a kernel it needs at run time (RNN in float64).
        """
        with self._switch:
            if self._ort is not ort:
                return  # another thread switched already
            self._interp = Interpreter(self._graph_for_interpreter())
            self.reason = f"onnxruntime failed at run time: {err}"
            warnings.warn(
                f"{self.reason}; this session now runs on the NumPy interpreter",
                RuntimeWarning,
                stacklevel=3,
            )
            self.backend, self.device, self.providers = "interpreter", "cpu", ["numpy"]
            self._ort = None

    def __repr__(self) -> str:
        why = f", reason={self.reason!r}" if self.reason else ""
        return (
            f"Session(backend={self.backend!r}, device={self.device!r}, "
            f"providers={self.providers}, inputs='{self.input_signature}', "
            f"outputs={list(self.output_names)}{why})"
        )


def _lacks_kernel(err: Exception) -> bool:
    """Whether onnxruntime failed for want of a kernel (an op or dtype it does not implement)."""
    text = str(err)
    return "NOT_IMPLEMENTED" in text or "not support" in text or "not implemented" in text


def load(path: str | PathLike[str], **kwargs: Any) -> Session:
    """Open an ``.onnx`` file as a :class:`Session`; ``kwargs`` go to ``Session``."""
    return Session(Path(path), **kwargs)


class _Source:
    """The model as given, converted on demand to what each backend reads."""

    def __init__(self, model: Model) -> None:
        self.spill: tempfile.TemporaryDirectory[str] | None = None
        self._proto_read: onnx.ModelProto | None = None  # the file, parsed once
        if isinstance(model, str | Path):
            path = Path(model)
            if not path.is_file():
                raise FileNotFoundError(f"no ONNX model at {str(path)!r}")
            self.path: Path | None = path
            self.proto: onnx.ModelProto | None = None
            self._graph: Graph | None = None
        elif isinstance(model, onnx.ModelProto):
            self.path, self.proto, self._graph = None, model, None
        elif isinstance(model, Graph):
            self.path, self.proto, self._graph = None, None, model
        else:
            raise TypeError(
                f"Session(model=...) takes an ir.graph.Graph, a path to an .onnx file or an "
                f"onnx.ModelProto, not {type(model).__name__}"
            )

    def graph(self) -> Graph:
        """The model as an ``ir.graph.Graph`` (read through ``export.onnx.reader`` if needed)."""
        if self._graph is None:
            if self.path is not None:
                self._graph = reader.load(self.path)
            else:
                assert self.proto is not None
                self._graph = reader.from_model(self.proto)
        return self._graph

    def guard(self) -> ShapeGuard | None:
        """A shape guard over the model, or None when graphcap cannot read the model.

        A model given as a file or ``ModelProto`` is read without its large weights
        (``weights=False``): the guard needs types, not values.
        """
        if self._graph is not None:
            return ShapeGuard(self._graph)
        try:
            proto = self.proto if self.proto is not None else self._read()
            base = self.path.parent if self.path is not None else None
            return ShapeGuard(reader.from_model(proto, base, weights=False))
        except GraphcapError:
            return None

    def _read(self) -> onnx.ModelProto:
        assert self.path is not None
        if self._proto_read is None:
            self._proto_read = read_model(self.path)
        return self._proto_read

    def for_onnxruntime(self) -> onnx.ModelProto | Path:
        """What onnxruntime reads: the file itself, or a ``ModelProto``.

        A graph whose weights would not fit in one protobuf (2 GiB) is written with external
        data to a temporary folder, removed by :meth:`release` once onnxruntime has read it.
        """
        if self.path is not None:
            return self.path
        if self.proto is None:
            graph = self._graph
            assert graph is not None
            weights = sum(
                v.const.nbytes for v in graph.initializers.values() if v.const is not None
            )
            if weights < _INLINE_LIMIT:
                self.proto = writer.to_model(graph)
            else:
                self.spill = tempfile.TemporaryDirectory(
                    prefix="graphcap-", ignore_cleanup_errors=True
                )
                # A fixed name: the graph's name comes from a file and must not pick a path.
                path = Path(self.spill.name) / "model.onnx"
                writer.save(graph, path, external_data=True)
                return path
        return self.proto

    def release(self) -> None:
        """Drop what was written here from the graph: onnxruntime holds its own copy."""
        if self._graph is not None:
            self.proto = None
        self._proto_read = None
        if self.spill is not None:
            self.spill.cleanup()

    def signatures(self) -> tuple[Signature, Signature]:
        """Input and output signatures, from the graph when there is one."""
        if self._graph is not None:
            g = self._graph
            return Signature.from_values(g.inputs), Signature.from_values(g.outputs)
        proto = self.proto if self.proto is not None else self._read()
        inits = frozenset(t.name for t in proto.graph.initializer)
        return (
            Signature.from_onnx(proto.graph.input, skip=inits),
            Signature.from_onnx(proto.graph.output),
        )
