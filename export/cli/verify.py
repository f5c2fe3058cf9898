"""``graphcap export --verify``: the exported file against the eager model, at several sizes.

:func:`verify` runs the model eagerly, the file on graphcap's interpreter and the file on
onnxruntime, on the example inputs and on fresh random inputs at other sizes of every dynamic
dim, and compares each output with the eager one. On a mismatch,
:func:`export.cli.localise.localise` names the first node where the results part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export.cli.common import Diff, compare, one_line, text_table
from export.cli.localise import localise
from export.cli.prepare import Prepared, random_array
from runtime import Session


@dataclass
class Row:
    """One output at one size: interpreter and onnxruntime against eager."""

    sizes: str
    output: str
    interpreter: Diff
    onnxruntime: Diff

    @property
    def ok(self) -> bool:
        """Both backends match eager."""
        return self.interpreter.ok and self.onnxruntime.ok


@dataclass
class Report:
    """What :func:`verify` found; ``text()`` is what the command prints."""

    atol: float
    rtol: float
    providers: list[str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    localisation: list[str] = field(default_factory=list)
    sizes_checked: int = 0

    @property
    def ok(self) -> bool:
        """Every row matched and at least one size ran."""
        return self.sizes_checked > 0 and all(r.ok for r in self.rows)

    def text(self) -> str:
        """The table, the notes and, on a mismatch, where it starts."""
        head = (
            "verify: eager vs the exported file on the interpreter and on onnxruntime "
            f"({', '.join(self.providers) or 'not loaded'}); atol {self.atol:g}, rtol {self.rtol:g}"
        )
        header = ("sizes", "output", "interp abs", "interp rel", "ort abs", "ort rel", "")
        rows = [
            (
                r.sizes,
                r.output,
                *_cells(r.interpreter),
                *_cells(r.onnxruntime),
                "ok" if r.ok else "MISMATCH",
            )
            for r in self.rows
        ]
        lines = [head, text_table(header, rows)] if rows else [head]
        lines += [f"note: {n}" for n in self.notes]
        bad = [r for r in self.rows if not r.ok]
        if self.ok:
            lines.append(f"verified at {self.sizes_checked} size(s): every output within tolerance")
        else:
            lines.append(
                f"MISMATCH: {len(bad)} of {len(self.rows)} output(s) beyond tolerance"
                if self.rows
                else "MISMATCH: no size could be checked"
            )
        lines += self.localisation
        return "\n".join(lines)


def _cells(d: Diff) -> tuple[str, str]:
    if d.note:
        return "-", d.note if len(d.note) < 40 else d.note[:37] + "..."
    return _num(d.max_abs), _num(d.max_rel)


def _num(x: float) -> str:
    return "0" if x == 0 else f"{x:.1e}"


# ---------------------------------------------------------------- sizes and inputs


def size_configs(symbols: Mapping[str, int]) -> list[dict[str, int]]:
    """The example sizes, then every symbol doubled, then 1 (or +3 where that repeats)."""
    configs = [dict(symbols)]
    for change in (lambda n: 2 * n, lambda n: 1, lambda n: n + 3):
        config = {s: change(n) for s, n in symbols.items()}
        if config not in configs and len(configs) < 3:
            configs.append(config)
    return configs


def feeds_at(
    prepared: Prepared, config: Mapping[str, int], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Fresh random inputs with each dynamic dim at ``config``'s size."""
    feeds = {}
    for name, example in prepared.examples.items():
        shape = list(example.shape)
        for axis, symbol in prepared.dynamic_axes.get(name, {}).items():
            shape[axis] = config[symbol]
        feeds[name] = random_array(rng, example.dtype, shape, like=example)
    return feeds


def _label(config: Mapping[str, int], example: bool) -> str:
    text = " ".join(f"{s}={n}" for s, n in config.items()) or "static"
    return f"{text} (example)" if example else text


# ---------------------------------------------------------------- verify


def verify(
    path: str | Path,
    prepared: Prepared,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    seed: int = 0,
) -> Report:
    """Compare the ONNX file at ``path`` with the eager model at several sizes.

    Args:
        path: the exported model.
        prepared: the model and its example inputs (:func:`export.cli.prepare.prepare`).
        atol: absolute tolerance, as in ``numpy.allclose``.
        rtol: relative tolerance, as in ``numpy.allclose``.
        seed: seeds the random inputs at the other sizes.

    Returns:
        A report; ``report.ok`` is False on any mismatch or backend failure, and then
        ``report.localisation`` says where the first difference starts.
    """
    path = Path(path)
    interp = Session(path, backend="interpreter")
    try:
        ort: Any = Session(path, backend="onnxruntime")
        ort_error = ""
    except Exception as err:
        ort, ort_error = None, f"cannot load: {err}"
    report = Report(atol, rtol, ort.providers if ort is not None else [])
    if ort_error:
        report.notes.append(f"onnxruntime {ort_error}")
    rng = np.random.default_rng(seed + 1)
    first_bad: tuple[str, dict[str, np.ndarray], list[np.ndarray]] | None = None
    for i, config in enumerate(size_configs(prepared.symbols)):
        label = _label(config, i == 0)
        feeds = dict(prepared.examples) if i == 0 else feeds_at(prepared, config, rng)
        try:
            eager = prepared.call(feeds)
        except Exception as err:
            report.notes.append(
                f"{label}: the eager model raised {type(err).__name__}: {err}; size skipped"
            )
            continue
        report.sizes_checked += 1
        got_i = _run(interp, feeds, report, f"{label}: interpreter")
        got_o = _run(ort, feeds, report, f"{label}: onnxruntime") if ort else ort_error
        for k, name in enumerate(interp.output_names):
            want = eager[k] if k < len(eager) else None
            row = Row(
                label,
                name,
                _diff(got_i, name, want, atol, rtol),
                _diff(got_o, name, want, atol, rtol),
            )
            report.rows.append(row)
            if not row.ok and first_bad is None:
                first_bad = (label, feeds, eager)
        if len(eager) != len(interp.output_names):
            report.notes.append(
                f"{label}: eager gives {len(eager)} output(s), the file {len(interp.output_names)}"
            )
    if not prepared.symbols:
        report.notes.append("no dynamic dims: checked at the example sizes only")
    elif report.sizes_checked < 3:
        report.notes.append(f"only {report.sizes_checked} size(s) could be checked")
    if first_bad is not None:
        try:
            report.localisation = localise(path, prepared, *first_bad, atol=atol, rtol=rtol)
        except Exception as err:  # the table stands; say why the bisection did not
            report.localisation = [f"\ncould not localise the mismatch: {one_line(err)}"]
    return report


def _run(session: Any, feeds: Mapping[str, np.ndarray], report: Report, what: str) -> Any:
    try:
        return session.run(feeds)
    except Exception as err:
        report.notes.append(f"{what} failed: {one_line(err)}")
        return f"error: {type(err).__name__}"


def _diff(got: Any, name: str, want: np.ndarray | None, atol: float, rtol: float) -> Diff:
    inf = float("inf")
    if isinstance(got, str):
        return Diff(inf, inf, False, got)
    if want is None:
        return Diff(inf, inf, False, "no eager output")
    return compare(got[name], want, atol, rtol)
