"""Scoring a corpus with a pipeline folder or an exported model, in several processes.

:class:`BatchPredictor` loads a pipeline folder (``runtime.Pipeline``) or an ``.onnx`` file
(``runtime.Session``) once, then answers batches: a dict of columns (NumPy arrays) in, the
same dict with the answers' columns added out. That is the callable class Ray Data's
``map_batches`` wants, one instance per actor::

    import ray
    ds = ray.data.read_text("reviews.txt")           # a column "text"
    scored = ds.map_batches(BatchPredictor, fn_constructor_args=("pipeline_folder",),
                            concurrency=8, batch_size=256)
    scored.write_parquet("scored/")

:func:`predict_ray` is that recipe; :func:`predict_processes` does the same on one machine
without Ray: a pool of worker processes, each loading the model once, batches streamed
through it in order. Ray comes from the optional extra ``pip install 'graphcap[ray]'``.

Columns: with a pipeline, the texts are read from ``column`` (default ``"text"``) and each
answer's fields become columns (``label`` and ``score`` for text classification, the whole
answer as an object in ``answer`` for token classification). With a model, the model's
inputs are read from the columns of their names (one row per example, equal lengths within
a batch) and its outputs added under theirs.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

RAY_EXTRA = "pip install 'graphcap[ray]'"
"""The install command named when Ray is missing."""


class BatchPredictor:
    """A pipeline folder or an ``.onnx`` model, loaded once, answering batches of columns.

    Args:
        path: a pipeline folder (with ``pipeline.json``) or an ``.onnx`` file.
        column: the text column, for a pipeline.
        backend: the runtime backend (``"auto"``, ``"onnxruntime"``, ``"interpreter"``).
        intra_op_threads: onnxruntime's threads per process (1: the processes share the
            cores instead of fighting over them).
        batch_size: a pipeline's largest model batch.

    Raises:
        FileNotFoundError: ``path`` is neither a pipeline folder nor a file.
        runtime.PipelineError: the pipeline folder is malformed (see ``Pipeline.load``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        column: str = "text",
        backend: str = "auto",
        intra_op_threads: int | None = 1,
        batch_size: int = 64,
    ) -> None:
        path = Path(path)
        self.column, self.batch_size = column, batch_size
        self.pipeline: Any = None
        self.session: Any = None
        if path.is_dir() and (path / "pipeline.json").is_file():
            from runtime.pipeline import Pipeline

            self.pipeline = Pipeline.load(path, backend=backend, intra_op_threads=intra_op_threads)
        elif path.is_file():
            from runtime.session import Session

            self.session = Session(path, backend=backend, intra_op_threads=intra_op_threads)
        else:
            raise FileNotFoundError(
                f"{str(path)!r} is neither a pipeline folder (with pipeline.json) nor an .onnx file"
            )

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """The columns of ``batch`` plus the answers' (see the module docstring).

        Raises:
            KeyError: a column the pipeline or the model needs is missing (named).
        """
        out = dict(batch)
        if self.pipeline is not None:
            out.update(self._answer_texts(_column(batch, self.column)))
            return out
        feeds = {n: _stacked(_column(batch, n)) for n in self.session.input_names}
        out.update(self.session.run(feeds))
        return out

    def _answer_texts(self, texts: Any) -> dict[str, np.ndarray]:
        answers = self.pipeline([str(t) for t in texts], batch_size=self.batch_size)
        if self.pipeline.task == "text-classification":
            return {
                "label": np.array([a["label"] for a in answers]),
                "score": np.array([a["score"] for a in answers], dtype=np.float64),
            }
        column = np.empty(len(answers), dtype=object)
        column[:] = answers
        return {"answer": column}


def _column(batch: Mapping[str, Any], name: str) -> Any:
    if name not in batch:
        raise KeyError(f"the batch has no column {name!r} (it has {sorted(batch)})")
    return batch[name]


def _stacked(values: Any) -> np.ndarray:
    """A column as one array: rows that are arrays (Ray's object columns) stacked."""
    array = np.asarray(values)
    if array.dtype == object:
        array = np.stack([np.asarray(v) for v in values])
    return array


def predict_ray(dataset: Any, path: str | Path, *, concurrency: int = 2, **options: Any) -> Any:
    """``dataset.map_batches`` with a :class:`BatchPredictor` per actor (lazy, streaming).

    Args:
        dataset: a ``ray.data.Dataset``.
        path: the pipeline folder or ``.onnx`` file, readable by every Ray worker.
        concurrency: how many actors (each loads the model once).
        **options: ``batch_size`` (rows per batch, Ray's) and :class:`BatchPredictor`'s
            keyword arguments.

    Returns:
        The scored ``ray.data.Dataset``; nothing runs until it is consumed.
    """
    rows = options.pop("batch_size", 256)
    return dataset.map_batches(
        BatchPredictor,
        fn_constructor_args=(str(path),),
        fn_constructor_kwargs=options,
        concurrency=concurrency,
        batch_size=rows,
        batch_format="numpy",
    )


def ray_available() -> bool:
    """Whether Ray Data can be imported."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


_WORKER: BatchPredictor | BaseException | None = None  # this worker process' predictor


def _start_worker(path: str, options: dict[str, Any]) -> None:
    global _WORKER
    try:
        _WORKER = BatchPredictor(path, **options)
    except Exception as err:  # raised again with each batch: the caller sees the reason
        _WORKER = err


def _run_batch(batch: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(_WORKER, BaseException):
        raise _WORKER
    assert _WORKER is not None, "the pool's initializer loads the predictor"
    return _WORKER(batch)


def predict_processes(
    batches: Iterable[Mapping[str, Any]],
    path: str | Path,
    *,
    workers: int = 2,
    **options: Any,
) -> Iterator[dict[str, Any]]:
    """Answer ``batches`` in ``workers`` processes, each loading the model once; in order.

    Batches stream: at most two per worker are in flight, so a corpus larger than memory
    can be read lazily (a generator of batches) and its answers written as they come.

    Args:
        batches: dicts of columns, as :class:`BatchPredictor` takes them.
        path: the pipeline folder or ``.onnx`` file.
        workers: processes (started fresh, with ``spawn``).
        **options: :class:`BatchPredictor`'s keyword arguments.

    Yields:
        Each batch's columns plus the answers', in the order of ``batches``.

    Raises:
        ValueError: ``workers`` < 1.
        concurrent.futures.process.BrokenProcessPool: a worker died (killed, out of memory).
        Whatever loading the model raised in the workers (``FileNotFoundError``,
        ``runtime.PipelineError``), or answering a batch did (``KeyError``).
    """
    if workers < 1:
        raise ValueError(f"workers={workers}: expected at least 1")
    context = multiprocessing.get_context("spawn")  # no fork of a process holding sessions
    with ProcessPoolExecutor(workers, context, _start_worker, (str(path), options)) as pool:
        pending: deque[Future[dict[str, Any]]] = deque()
        for batch in batches:
            pending.append(pool.submit(_run_batch, batch))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
