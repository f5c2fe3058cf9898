"""onnxruntime backend: runs an ONNX model on CPU, or on CUDA through IOBinding.

``OrtBackend(model, device)`` opens one ``InferenceSession``. With ``device="cuda"`` it asks
for ``["CUDAExecutionProvider", "CPUExecutionProvider"]`` and then reads which providers the
session really got: ``onnxruntime-gpu`` quietly runs on CPU when no GPU or CUDA library is
usable, so the backend warns (:class:`~runtime.errors.DeviceFallbackWarning`) and reports the
truth in ``providers`` and ``device``. On CUDA, inputs are bound from NumPy or from
``OrtValue``s already on the device, outputs stay on the device, and they are copied back
only when the caller asks for NumPy.

``InferenceSession.run`` is thread-safe and each call makes its own IOBinding, so one backend
can serve many threads.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from runtime import threads
from runtime.errors import BackendUnavailableError, DeviceFallbackWarning, NodeExecutionError

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

# onnxruntime graph rewrites that make CPU sessions slower: onnxruntime 1.31 fuses a residual
# Add into LayerNormalization as com.microsoft SkipLayerNormalization, whose CPU kernel
# takes 1.15 ms where Add + LayerNormalization take 0.23 ms ([32, 128, 128] float32, 2
# threads; ``python bench/ort_rewrites.py``). Sessions on CUDA keep every rewrite.
CPU_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)
_LEVELS = ("disable", "basic", "extended", "all")


def parse_device(device: str) -> tuple[str, int]:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as ``(kind, device_id)``.

    Raises:
        ValueError: any other string.
    """
    match = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", device.strip().lower())
    if match is None or (match.group(1) == "cpu" and match.group(2)):
        raise ValueError(f"device={device!r}: expected 'cpu', 'cuda' or 'cuda:N'")
    return match.group(1), int(match.group(2) or 0)


class OrtBackend:
    """One onnxruntime session for a model.

    Args:
        model: a ``ModelProto``, or the path of a ``.onnx`` file (external data next to it
            is found by onnxruntime).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        intra_op_threads: threads inside one op; None: ``runtime.threads.get_num_threads()``,
            0: onnxruntime's own default (one per physical core).
        spinning: whether onnxruntime's idle intra-op threads spin waiting for work (its
            default); False leaves the cores to other threads, as a server's request
            handling needs.
        optimization: graph optimisation level: "disable", "basic", "extended" or "all".
        io_binding: use IOBinding even on CPU (default: only on CUDA). Mostly for tests.
        stacklevel: where the CPU-fallback warning points (for wrappers such as Session).

    Attributes:
        providers: the providers the session actually uses, in priority order.
        device: where the model runs: ``"cuda"`` only when the CUDA provider was granted.
        requested_device: the device that was asked for.
        input_names, output_names: the model's signature names.

    Raises:
        BackendUnavailableError: onnxruntime is missing or cannot load the model (an op it
            lacks, an invalid graph); the message carries onnxruntime's reason.
    """

    def __init__(
        self,
        model: onnx.ModelProto | str | Path,
        device: str = "cpu",
        *,
        intra_op_threads: int | None = None,
        optimization: str = "all",
        spinning: bool = True,
        io_binding: bool | None = None,
        stacklevel: int = 2,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise BackendUnavailableError(f"onnxruntime is not installed: {err}") from err
        self._ort = ort
        kind, self.device_id = parse_device(device)
        self.requested_device = device
        options = _session_options(ort, intra_op_threads, optimization)
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers: list[Any] = [CPU]
        if kind == "cuda":
            providers = [(CUDA, {"device_id": self.device_id}), CPU]
        source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
        # A CUDA provider that cannot start makes onnxruntime's process-wide logger print
        # coloured lines on stderr; they are captured and summed up in graphcap's warning.
        capture: contextlib.AbstractContextManager[list[str]] = (
            _stderr_lines() if kind == "cuda" else contextlib.nullcontext([])
        )
        with capture as logged:
            try:
                disabled = list(CPU_DISABLED_OPTIMIZERS) if kind == "cpu" else []
                self.session = ort.InferenceSession(
                    source, options, providers=providers, disabled_optimizers=disabled
                )
            except Exception as err:
                raise BackendUnavailableError(f"onnxruntime cannot load the model: {err}") from err
        self.providers: list[str] = list(self.session.get_providers())
        self.device = "cuda" if CUDA in self.providers else "cpu"
        if kind == "cuda" and self.device != "cuda":
            warnings.warn(
                _fallback_message(ort, device, self.providers, logged),
                DeviceFallbackWarning,
                stacklevel=stacklevel,
            )
        self.use_binding = self.device == "cuda" if io_binding is None else io_binding
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        self._sources = _node_sources(model)

    def run(
        self,
        feeds: Mapping[str, Any],
        outputs: Sequence[str] | None = None,
        *,
        as_numpy: bool = True,
    ) -> dict[str, Any]:
        """Run the model.

        Args:
            feeds: NumPy arrays, or ``onnxruntime.OrtValue``s (on any device), by input name.
            outputs: output names to compute; default all of the model's outputs.
            as_numpy: return NumPy arrays (copied to the host); False returns ``OrtValue``s
                left where the session produced them (on the GPU for CUDA).

        Returns:
            The outputs by name.

        Raises:
            NodeExecutionError: onnxruntime failed while running; the message carries its
                reason and, when it names a node, that node's source line.
        """
        names = list(self.output_names if outputs is None else outputs)
        ort_value = self._ort.OrtValue
        binding = (
            self.use_binding
            or not as_numpy
            or any(isinstance(v, ort_value) for v in feeds.values())
        )
        try:
            if not binding:
                arrays = {k: _contiguous(v) for k, v in feeds.items()}
                return dict(zip(names, self.session.run(names, arrays), strict=True))
            return self._run_bound(feeds, names, as_numpy)
        except Exception as err:
            raise self._run_error(err) from err

    def _run_bound(
        self, feeds: Mapping[str, Any], names: list[str], as_numpy: bool
    ) -> dict[str, Any]:
        binding = self.session.io_binding()
        for name, value in feeds.items():
            if isinstance(value, self._ort.OrtValue):
                binding.bind_ortvalue_input(name, value)
            else:
                binding.bind_cpu_input(name, _contiguous(value))
        for name in names:
            binding.bind_output(name, self.device, self.device_id)
        self.session.run_with_iobinding(binding)
        values = binding.copy_outputs_to_cpu() if as_numpy else binding.get_outputs()
        return dict(zip(names, values, strict=True))

    def _run_error(self, err: Exception) -> NodeExecutionError:
        text = str(err)
        match = re.search(r"Name:'([^']*)'", text)
        source = self._sources.get(match.group(1)) if match else None
        where = f" (node traced at {source})" if source else ""
        new = NodeExecutionError(f"onnxruntime failed while running the model{where}: {text}")
        new.source = source
        return new

    def __repr__(self) -> str:
        return f"OrtBackend(device={self.device!r}, providers={self.providers})"


def _contiguous(value: Any) -> np.ndarray:
    """``value`` as a C-contiguous array, keeping 0-d arrays 0-d (unlike ``ascontiguousarray``)."""
    return np.require(np.asarray(value), requirements="C")


def _session_options(ort: Any, intra_op_threads: int | None, optimization: str) -> Any:
    if optimization not in _LEVELS:
        raise ValueError(f"optimization={optimization!r}: expected one of {list(_LEVELS)}")
    level = ort.GraphOptimizationLevel
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "disable": level.ORT_DISABLE_ALL,
        "basic": level.ORT_ENABLE_BASIC,
        "extended": level.ORT_ENABLE_EXTENDED,
        "all": level.ORT_ENABLE_ALL,
    }[optimization]
    if intra_op_threads is None:
        intra_op_threads = threads.get_num_threads()
    if intra_op_threads < 0:
        raise ValueError(f"intra_op_threads={intra_op_threads}: expected >= 0 (0: default)")
    options.intra_op_num_threads = intra_op_threads
    options.log_severity_level = 3  # errors only; the fallback is reported by our warning
    return options


def _fallback_message(ort: Any, device: str, providers: list[str], logged: list[str]) -> str:
    available = ort.get_available_providers()
    if CUDA not in available:
        why = f"this onnxruntime build has no CUDA provider (available: {available})"
    else:
        why = (
            "the CUDA provider is installed but could not start: no usable NVIDIA GPU, or "
            "CUDA/cuDNN libraries that do not match onnxruntime-gpu"
        )
        said = _log_errors(logged)
        if said:
            why += f"; onnxruntime said: {said}"
    return f"device={device!r} was requested but the model runs on CPU, with {providers}: {why}"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOG = re.compile(r"\[([EWIV]):onnxruntime:[^\]]*\]\s*(.*)")


def _log_errors(lines: list[str]) -> str:
    """Onnxruntime's error lines (``[E:onnxruntime:...] message``), shortened, in one line."""
    said = []
    for line in lines:
        match = _LOG.search(_ANSI.sub("", line))
        if match and match.group(1) == "E":
            text = match.group(2)
            said.append(text.split("] : ")[-1] if "] : " in text else text)
    return " | ".join(said)[:400]


@contextlib.contextmanager
def _stderr_lines() -> Iterator[list[str]]:
    """Capture what is written to file descriptor 2 meanwhile (C++ loggers write there).

    Yields the list that receives the captured lines when the block ends; lines that are
    not onnxruntime's log are written back to stderr, so nothing else is lost.
    """
    lines: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to capture
        yield lines
        return
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode(errors="replace")
            lines.extend(text.splitlines())
            plain = [_ANSI.sub("", line) for line in lines]
            rest = [line for line in plain if line.strip() and not _LOG.search(line)]
            if rest:
                print("\n".join(rest), file=sys.stderr)


def _node_sources(model: onnx.ModelProto | str | Path) -> dict[str, str]:
    """Node name -> ``"source"`` metadata, for error messages."""
    try:
        proto = (
            model
            if isinstance(model, onnx.ModelProto)
            else onnx.load(str(model), load_external_data=False)
        )
    except Exception:  # a file onnxruntime reads but onnx does not: errors lose the source
        return {}
    return {
        n.name: p.value for n in proto.graph.node for p in n.metadata_props if p.key == "source"
    }
