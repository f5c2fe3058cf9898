"""Run a port on graphcap or on torch, and compare the two runs.

A comparison runs the port on torch first and then on graphcap, from the same file. Both
runs start from the same Python and NumPy seeds, so data drawn with ``random`` agree. The
graphcap run loads the torch run's weights (``_same.weights``) and replays its random
draws: every call of ``rand``, ``randn``, ``randint``, ``randperm``, ``multinomial`` and
``bernoulli`` on the graphcap side runs graphcap's own function (so it is exercised and its
shape and dtype are checked) and then returns the values torch drew at the same call, until
the two runs' calls first differ (after the compared step, a script may branch on values).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tests.ports import _same, _switch

PORTS_DIR = Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class Port:
    """One run of the corpus: a port module, its command-line arguments and its source."""

    module: str
    repo: str
    path: str
    commit: str
    argv: tuple[str, ...] = ()
    trains: bool = True  # has a training step to compare (the first loss and one step)

    @property
    def name(self) -> str:
        """The module, with its arguments when it has some."""
        return self.module + (f"[{' '.join(self.argv)}]" if self.argv else "")


_TUTORIALS = "pytorch/tutorials"
_EXAMPLES = "pytorch/examples"
_WLM = "77f55b912142e11fcfdf5b530231fb9c52f181e8"
CORPUS: tuple[Port, ...] = (
    Port(
        "nlp_pytorch_tutorial",
        _TUTORIALS,
        "beginner_source/nlp/pytorch_tutorial.py",
        "00e0058584f8faf2e058902c245d88f672736cd7",
        trains=False,
    ),
    Port(
        "nlp_deep_learning_tutorial",
        _TUTORIALS,
        "beginner_source/nlp/deep_learning_tutorial.py",
        "016d0cc077f60c82b8497d4c7f92051ce40cafee",
    ),
    Port(
        "nlp_word_embeddings_tutorial",
        _TUTORIALS,
        "beginner_source/nlp/word_embeddings_tutorial.py",
        "016d0cc077f60c82b8497d4c7f92051ce40cafee",
    ),
    Port(
        "nlp_sequence_models_tutorial",
        _TUTORIALS,
        "beginner_source/nlp/sequence_models_tutorial.py",
        "0d1e0f7576479586ee777d5387153830750025eb",
    ),
    Port(
        "nlp_advanced_tutorial",
        _TUTORIALS,
        "beginner_source/nlp/advanced_tutorial.py",
        "546ebc600c1972a19cc2aa858b081b85ac7bbf12",
    ),
    Port(
        "char_rnn_classification",
        _TUTORIALS,
        "intermediate_source/char_rnn_classification_tutorial.py",
        "10098032865151e891c6074522207880f0e68fd3",
    ),
    Port(
        "char_rnn_generation",
        _TUTORIALS,
        "intermediate_source/char_rnn_generation_tutorial.py",
        "4ce8b871ef249dfacc1b389108842a0c2c0805b7",
    ),
    Port(
        "seq2seq_translation",
        _TUTORIALS,
        "intermediate_source/seq2seq_translation_tutorial.py",
        "803c1b1273a47bc53bb6cd5f63eecfb897bbc856",
    ),
    Port(
        "text_sentiment_ngrams",
        _TUTORIALS,
        "beginner_source/text_sentiment_ngrams_tutorial.py",
        "5130967035247c8343376ee69f49d6e10d61eaca",
    ),
    Port(
        "transformer_tutorial",
        _TUTORIALS,
        "beginner_source/transformer_tutorial.py",
        "00109f5abe4d664833ae7cde8b694b41356adb2b",
    ),
    Port("word_language_model.main", _EXAMPLES, "word_language_model/main.py", _WLM),
    Port(
        "word_language_model.main",
        _EXAMPLES,
        "word_language_model/main.py",
        _WLM,
        ("--model", "Transformer"),
    ),
    Port(
        "word_language_model.generate",
        _EXAMPLES,
        "word_language_model/generate.py",
        _WLM,
        trains=False,
    ),
)
PORTS = {p.name: p for p in CORPUS}
_RANDOM = ("rand", "randn", "randint", "randperm", "multinomial", "bernoulli")
_HARNESS = {"tests.ports", "tests.ports._switch", "tests.ports._same", "tests.ports.harness"}


class Tape:
    """The random draws of the torch run, replayed in order by the graphcap run."""

    def __init__(self) -> None:
        self.draws: list[tuple[str, np.ndarray]] = []
        self.replayed = 0
        self.diverged: str | None = None

    def record(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def recording(*args: Any, **kwargs: Any) -> Any:
            out = fn(*args, **kwargs)
            self.draws.append((name, _same.as_numpy(out)))
            return out

        return recording

    def replay(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def replaying(*args: Any, **kwargs: Any) -> Any:
            out = fn(*args, **kwargs)
            if self.diverged is not None:
                return out
            if self.replayed >= len(self.draws):
                self.diverged = f"call {self.replayed} ({name}) made no draw on torch"
                return out
            want_name, values = self.draws[self.replayed]
            got = _same.as_numpy(out)
            if want_name != name or values.shape != got.shape or values.dtype != got.dtype:
                self.diverged = (
                    f"call {self.replayed}: torch drew {want_name} {values.dtype}"
                    f"{list(values.shape)}, graphcap {name} {got.dtype}{list(got.shape)}"
                )
                return out
            self.replayed += 1
            import tracer

            return tracer.tensor(values, requires_grad=bool(out.requires_grad))

        return replaying


@contextlib.contextmanager
def _patched(backend: str, tape: Tape | None) -> Iterator[None]:
    if tape is None:
        yield
        return
    library = "torch" if backend == "torch" else "tracer"
    owners = [(importlib.import_module(library), _RANDOM)]
    with contextlib.suppress(ImportError):  # random_split's own reference to randperm
        owners.append((importlib.import_module(f"{library}.utils.data.dataset"), ("randperm",)))
    wrap = tape.record if backend == "torch" else tape.replay
    saved: list[tuple[Any, str, Any]] = []
    for owner, names in owners:
        for name in names:
            if hasattr(owner, name):
                saved.append((owner, name, getattr(owner, name)))
                setattr(owner, name, wrap(name, getattr(owner, name)))
    try:
        yield
    finally:
        for owner, name, fn in reversed(saved):
            setattr(owner, name, fn)


@contextlib.contextmanager
def _one_thread(backend: str) -> Iterator[None]:
    """Torch on one thread: its pool only slows tiny models down on a shared machine."""
    if backend != "torch":
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def _script_state(port: Port) -> Iterator[None]:
    """Fresh seeds, the port's ``sys.argv`` and the script's own modules reimported."""
    for mod in [m for m in sys.modules if m.startswith("tests.ports.") and m not in _HARNESS]:
        del sys.modules[mod]
    argv, py_state, np_state = sys.argv, random.getstate(), np.random.get_state()
    sys.argv = [str(PORTS_DIR / (port.module.replace(".", "/") + ".py")), *port.argv]
    random.seed(0)
    np.random.seed(0)
    try:
        yield
    finally:
        sys.argv = argv
        random.setstate(py_state)
        np.random.set_state(np_state)


def run(
    name: str, backend: str, session: _same.Session | None = None, tape: Tape | None = None
) -> Any:
    """Run the port ``name`` as a script on ``backend``; returns its module namespace."""
    if name not in PORTS:
        raise ValueError(f"no port named {name!r}; the corpus has {sorted(PORTS)}")
    port = PORTS[name]
    with _script_state(port), _switch.selected(backend), _same.session(session):
        with _patched(backend, tape), _one_thread(backend):
            return importlib.import_module(f"tests.ports.{port.module}")


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """``max|got - want| / max|want|`` (exact match required for integer and bool values)."""
    if got.shape != want.shape:
        return float("inf")
    if want.size == 0:
        return 0.0
    if want.dtype.kind in "biu" or got.dtype.kind in "biu":
        return 0.0 if np.array_equal(got, want) else float("inf")
    scale = max(float(np.max(np.abs(want))), 1e-12)
    return float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) / scale


def compare(name: str) -> tuple[dict[str, float], Tape]:
    """Run ``name`` on torch, then on graphcap with torch's weights and random draws.

    Returns:
        The relative error of every value the torch run recorded (inf when graphcap
        recorded none or a different shape), and the random tape.
    """
    tape = Tape()
    reference = _same.Session("record")
    run(name, "torch", reference, tape)
    checked = _same.Session("check", reference)
    run(name, "graphcap", checked, tape)
    errors = {}
    for key, want in reference.values.items():
        got = checked.values.get(key)
        errors[key] = float("inf") if got is None else relative_error(got, want)
    return errors, tape
