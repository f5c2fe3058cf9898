"""A bounded fuzzing campaign over ``export.load``, ``ir.verify`` and the interpreter.

Each case ``i`` of a campaign with seed ``s`` is a mutated model fully determined by
``(s, i)`` (``tests.fuzz_mutations.mutate``: a small valid model broken in one to three
ways). The case writes it to a folder, reads it with ``export.load``, verifies the graph and
runs it on the NumPy interpreter with small random feeds.

Every case runs in a worker process under a memory limit (``RLIMIT_AS``) and a time limit
(an interval timer inside the worker, and a kill from the parent past that), so a hang, a
blow-up or a crash is counted rather than taking the test run down. The outcome of a case:

- ``success``: the model loaded (and verified, and ran where its inputs are small);
- ``clean``: a graphcap error (``ir.errors.GraphcapError``) was raised;
- ``raw``: any other exception (the defect this campaign looks for);
- ``memory``: a ``MemoryError`` (an allocation past the limit), raw or wrapped;
- ``hang``: the case ran past its time limit;
- ``crash``: the worker process died.

Run a campaign by hand: ``python -m tests.fuzz --cases 20000 --workers 2``.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import shutil
import signal
import tempfile
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from tests.fuzz_mutations import Mutant, mutate, seeds

OUTCOMES = ("success", "clean", "raw", "memory", "hang", "crash")
TIME_LIMIT = 3.0  # seconds per case, inside the worker
MEMORY_LIMIT = 1 << 30  # bytes of address space a case may add to the worker's
_FEED_ELEMENTS = 1 << 16  # inputs larger than this are not run (the feeds are ours, not the file's)


# ---------------------------------------------------------------- one case


class _Timeout(BaseException):
    """The case ran past its time limit (a BaseException: no ``except Exception`` eats it)."""


def _feeds(graph: Any, rng: np.random.Generator) -> dict[str, np.ndarray] | None:
    """Small random feeds for the graph's inputs; None when an input is too big to run."""
    feeds = {}
    for v in graph.inputs:
        shape = v.type.shape
        if shape is None:
            return None
        dims = [d if isinstance(d, int) else 3 for d in shape]
        if any(d < 0 or d > 64 for d in dims) or int(np.prod(dims)) > _FEED_ELEMENTS:
            return None
        dtype = np.dtype(v.dtype)
        if dtype.kind == "f":
            feeds[v.name] = rng.standard_normal(dims).astype(dtype)
        elif dtype.kind in "iu":
            feeds[v.name] = rng.integers(0, 3, size=dims).astype(dtype)
        elif dtype.kind == "b":
            feeds[v.name] = rng.random(dims) < 0.5
        else:
            return None
    return feeds


def _memory(err: BaseException | None) -> bool:
    while err is not None:
        if isinstance(err, MemoryError):
            return True
        err = err.__cause__ or err.__context__
    return False


def _where(err: BaseException) -> str:
    """``file:line`` of the innermost frame in graphcap's own code, else the innermost."""
    frames = traceback.extract_tb(err.__traceback__)
    root = str(Path(__file__).resolve().parents[1])
    ours = [f for f in frames if f.filename.startswith(root) and "/tests/" not in f.filename]
    f = (ours or frames or [None])[-1]
    return "?" if f is None else f"{os.path.relpath(f.filename, root)}:{f.lineno}"


def run_case(m: Mutant, folder: Path) -> tuple[str, str, str]:
    """Load, verify and run one mutated model: ``(outcome, stage, what was raised)``."""
    import export
    from ir.errors import GraphcapError
    from runtime.numpy_interpreter import Interpreter

    for name, data in m.files.items():
        (folder / name).write_bytes(data)
    path = folder / "model.onnx"
    path.write_bytes(m.raw if m.raw is not None else m.proto.SerializeToString())
    stage = "load"
    try:
        graph = export.load(path)
        stage = "verify"
        graph.verify()
        feeds = _feeds(graph, np.random.default_rng(0))
        if feeds is not None:
            stage = "run"
            Interpreter(graph).run(feeds)
    except _Timeout:
        return "hang", stage, f"over {TIME_LIMIT} s"
    except RecursionError as err:
        return "raw", stage, f"RecursionError at {_where(err)}"
    except Exception as err:
        text = f"{type(err).__name__} at {_where(err)}: {str(err)[:160]}"
        if _memory(err) and not _asked_for(err):
            return "memory", stage, text
        return ("clean" if isinstance(err, GraphcapError) else "raw"), stage, text
    return "success", stage, ""


def _asked_for(err: BaseException) -> bool:
    """Whether the allocation that failed is the failing node's own output.

    Such a model asks for that memory (``ConstantOfShape`` of a huge shape): the allocation
    is its meaning, not a kernel's blow-up, and it fails cleanly. A kernel that allocates a
    temporary larger than its output (padding for a huge pool window) is a blow-up.
    """
    node = getattr(err, "node", None)
    shape = getattr(err.__cause__, "shape", None)  # NumPy's _ArrayMemoryError says
    if node is None or shape is None:
        return False
    for v in node.outputs:
        dims = v.type.shape
        if (
            dims is not None
            and len(dims) == len(shape)
            and all(not isinstance(d, int) or d == n for d, n in zip(dims, shape, strict=True))
        ):
            return True
    return False


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def _worker(conn: Connection, corpus: list[tuple[str, bytes]], seed: int) -> None:
    """Serve cases by index until the parent sends None."""
    folder = Path(tempfile.mkdtemp(prefix="graphcap-fuzz-"))
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    import export  # noqa: F401  (imported before the memory limit is set)
    import runtime.numpy_interpreter  # noqa: F401

    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + MEMORY_LIMIT, resource.RLIM_INFINITY))
    signal.signal(signal.SIGALRM, _on_alarm)
    try:
        while (index := conn.recv()) is not None:
            name, m, done = mutate(corpus, seed, index)
            for p in folder.iterdir():
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
            try:
                outcome = run_case(m, folder)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            conn.send((index, *outcome, name, done))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- a campaign


@dataclass
class Report:
    """What a campaign found.

    Attributes:
        counts: cases per outcome (see ``OUTCOMES``).
        examples: per outcome but success and clean, up to a few ``(index, seed model,
            mutations, stage, what was raised)``.
        signatures: per outcome, how often each ``(stage, exception type and place)`` came.
        ran: cases that reached the interpreter (loaded, verified, small enough to run).
        seconds: wall time.
    """

    counts: Counter[str] = field(default_factory=Counter)
    ran: int = 0
    examples: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    signatures: dict[str, Counter[str]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def bad(self) -> int:
        """Cases that ended in anything but success or a clean graphcap error."""
        return sum(self.counts[k] for k in OUTCOMES[2:])

    def add(self, index: int, outcome: str, stage: str, text: str, name: str, done: Any) -> None:
        """Record one case."""
        self.counts[outcome] += 1
        if stage == "run":
            self.ran += 1
        if outcome in ("success", "clean"):
            return
        sig = f"{stage}: {text.split(':')[0]}" if outcome == "raw" else f"{stage}: {text[:80]}"
        self.signatures.setdefault(outcome, Counter())[sig] += 1
        examples = self.examples.setdefault(outcome, [])
        if len(examples) < 5:
            examples.append((index, name, done, stage, text))

    def summary(self) -> str:
        """Counts, then the most frequent signatures of each bad outcome, then examples."""
        total = sum(self.counts.values())
        lines = [f"{total} cases in {self.seconds:.1f} s: "
                 + ", ".join(f"{k} {self.counts[k]}" for k in OUTCOMES)
                 + f" ({self.ran} reached the interpreter)"]  # fmt: skip
        for outcome, sigs in self.signatures.items():
            lines.append(f"{outcome}:")
            lines += [f"  {c:>5}  {s}" for s, c in sigs.most_common(25)]
        for outcome, examples in self.examples.items():
            lines += [f"example {outcome}: {e}" for e in examples[:3]]
        return "\n".join(lines)


def campaign(cases: int, workers: int = 2, seed: int = 0) -> Report:
    """Run cases ``0 .. cases-1`` of campaign ``seed`` on ``workers`` processes."""
    corpus = seeds()
    ctx = multiprocessing.get_context("fork")
    report = Report()
    start = time.monotonic()
    pending = iter(range(cases))
    pool: dict[Connection, tuple[Any, int | None, float]] = {}

    def spawn() -> None:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, corpus, seed), daemon=True)
        proc.start()
        child.close()
        pool[parent] = (proc, None, 0.0)
        feed(parent)

    def feed(conn: Connection) -> None:
        proc, _, _ = pool[conn]
        index = next(pending, None)
        if index is None:
            with contextlib.suppress(OSError):
                conn.send(None)
            proc.join(5)
            del pool[conn]
            return
        conn.send(index)
        pool[conn] = (proc, index, time.monotonic())

    def lost(conn: Connection, outcome: str) -> None:
        proc, index, _ = pool.pop(conn)
        proc.kill()
        proc.join()
        name, _, done = mutate(corpus, seed, index)
        report.add(index, outcome, "?", f"exit code {proc.exitcode}", name, done)
        spawn()

    for _ in range(min(workers, cases)):
        spawn()
    while pool:
        ready = wait(list(pool), timeout=1.0)
        for conn in ready:
            try:
                result = conn.recv()  # type: ignore[union-attr]
            except (EOFError, OSError):
                lost(conn, "crash")  # type: ignore[arg-type]
                continue
            report.add(*result)
            feed(conn)  # type: ignore[arg-type]
        now = time.monotonic()
        for conn, (_, index, began) in list(pool.items()):
            if index is not None and now - began > TIME_LIMIT + 10:
                lost(conn, "hang")  # the interval timer could not interrupt it
    report.seconds = time.monotonic() - start
    return report


def main() -> None:
    """``python -m tests.fuzz``: run a campaign and print its summary."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--case", type=int, help="run one case here, with its traceback")
    args = p.parse_args()
    if args.case is not None:
        name, m, done = mutate(seeds(), args.seed, args.case)
        print(name, done)
        with tempfile.TemporaryDirectory() as d:
            for fname, data in m.files.items():
                (Path(d) / fname).write_bytes(data)
            path = Path(d) / "model.onnx"
            path.write_bytes(m.raw if m.raw is not None else m.proto.SerializeToString())
            import export
            from runtime.numpy_interpreter import Interpreter

            graph = export.load(path)
            graph.verify()
            feeds = _feeds(graph, np.random.default_rng(0))
            if feeds is not None:
                Interpreter(graph).run(feeds)
        return
    print(campaign(args.cases, args.workers, args.seed).summary())


if __name__ == "__main__":
    main()
