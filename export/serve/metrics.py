"""Prometheus metrics in the text exposition format (version 0.0.4), without a dependency.

Counters, gauges and histograms keyed by label values; ``Metrics.render()`` is what
``GET /metrics`` returns. Updates take one lock, so the batch worker threads and the event
loop may both record.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class _Family:
    def __init__(self, name: str, kind: str, help_text: str, labels: Sequence[str]) -> None:
        self.name, self.kind, self.help, self.labels = name, kind, help_text, tuple(labels)

    def _key(self, values: Sequence[str]) -> tuple[str, ...]:
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {tuple(values)}")
        return tuple(str(v) for v in values)

    def _labels(self, key: Sequence[str], extra: str = "") -> str:
        pairs = [f'{k}="{_escape(v)}"' for k, v in zip(self.labels, key, strict=True)]
        if extra:
            pairs.append(extra)
        return "{" + ",".join(pairs) + "}" if pairs else ""

    def render(self) -> list[str]:
        """The sample lines of this family."""
        raise NotImplementedError


class Counter(_Family):
    """A monotonically increasing count per label values (also used for gauges)."""

    def __init__(self, name: str, kind: str, help_text: str, labels: Sequence[str]) -> None:
        super().__init__(name, kind, help_text, labels)
        self.values: dict[tuple[str, ...], float] = {}

    def add(self, lock: threading.Lock, values: Sequence[str], amount: float = 1.0) -> None:
        """Add ``amount`` (negative for a gauge going down) to the series of ``values``."""
        key = self._key(values)
        with lock:
            self.values[key] = self.values.get(key, 0.0) + amount

    def render(self) -> list[str]:
        """The sample lines."""
        return [f"{self.name}{self._labels(k)} {_num(v)}" for k, v in sorted(self.values.items())]


class Histogram(_Family):
    """Observations counted into cumulative buckets, with their sum and count."""

    def __init__(
        self, name: str, help_text: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        super().__init__(name, "histogram", help_text, labels)
        self.buckets = tuple(buckets)
        self.series: dict[tuple[str, ...], list[float]] = {}  # bucket counts, then sum, count

    def observe(self, lock: threading.Lock, values: Sequence[str], x: float) -> None:
        """Count ``x`` in the series of ``values``."""
        key = self._key(values)
        with lock:
            s = self.series.setdefault(key, [0.0] * (len(self.buckets) + 3))
            s[bisect.bisect_left(self.buckets, x)] += 1
            s[-2] += x
            s[-1] += 1

    def render(self) -> list[str]:
        """The sample lines: buckets, sum, count."""
        lines = []
        for key, s in sorted(self.series.items()):
            total = 0.0
            for bound, count in zip([*self.buckets, float("inf")], s, strict=False):
                total += count
                le = 'le="+Inf"' if bound == float("inf") else f'le="{_num(bound)}"'
                lines.append(f"{self.name}_bucket{self._labels(key, le)} {_num(total)}")
            lines.append(f"{self.name}_sum{self._labels(key)} {_num(s[-2])}")
            lines.append(f"{self.name}_count{self._labels(key)} {_num(s[-1])}")
        return lines


class Metrics:
    """The server's metrics (names start with ``graphcap_``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = Counter(
            "graphcap_requests_total",
            "counter",
            "HTTP requests answered, by model, endpoint and status code.",
            ("model", "endpoint", "code"),
        )
        self.errors = Counter(
            "graphcap_request_errors_total",
            "counter",
            "Requests answered with a 4xx or 5xx status, by model, endpoint and code.",
            ("model", "endpoint", "code"),
        )
        self.latency = Histogram(
            "graphcap_request_duration_seconds",
            "Time from a request's arrival to its answer.",
            ("model", "endpoint"),
            LATENCY_BUCKETS,
        )
        self.queue = Histogram(
            "graphcap_queue_duration_seconds",
            "Time a request waited for its batch to start.",
            ("model",),
            LATENCY_BUCKETS,
        )
        self.compute = Histogram(
            "graphcap_batch_duration_seconds",
            "Time one batch took to run (model and post-processing).",
            ("model",),
            LATENCY_BUCKETS,
        )
        self.batch = Histogram(
            "graphcap_batch_size",
            "Rows (texts or tensor rows) per batch run.",
            ("model",),
            BATCH_BUCKETS,
        )
        self.inflight = Counter(
            "graphcap_inflight_requests", "gauge", "Inference requests being answered.", ()
        )
        self.reloads = Counter(
            "graphcap_model_reloads_total",
            "counter",
            "Model versions loaded while serving, or refused (kept the previous one).",
            ("model", "result"),
        )

    def families(self) -> list[_Family]:
        """Every metric family, in the order rendered."""
        return [
            self.requests,
            self.errors,
            self.latency,
            self.queue,
            self.compute,
            self.batch,
            self.inflight,
            self.reloads,
        ]

    def render(self) -> str:
        """The exposition text of every family."""
        lines: list[str] = []
        with self.lock:
            for fam in self.families():
                lines.append(f"# HELP {fam.name} {fam.help}")
                lines.append(f"# TYPE {fam.name} {fam.kind}")
                lines.extend(fam.render())
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))
