"""PyTorch's deprecated "scalar first" overloads, which torch 2.x still accepts with a warning.

``x.add_(-lr, grad)`` means ``x.add_(grad, alpha=-lr)``, and ``x.addcmul_(v, a, b)`` means
``x.addcmul_(a, b, value=v)``: old tutorials are full of them. :func:`scalar_first` turns
such positional arguments into the current form, warning as PyTorch does.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any


def scalar_first(
    name: str, args: tuple[Any, ...], keyword: str, value: Any, n_operands: int
) -> tuple[tuple[Any, ...], Any]:
    """Split ``args`` into the operands and the scalar ``keyword`` (``alpha``, ``value``).

    ``args`` is either the ``n_operands`` operands, or a number followed by them (the
    deprecated overload, which warns).

    Raises:
        TypeError: any other number of positional arguments, or the scalar given twice.
    """
    if len(args) == n_operands:
        return args, value
    if len(args) == n_operands + 1 and isinstance(args[0], numbers.Number):
        if value != 1:
            raise TypeError(f"{name}() got {keyword} both positionally and as a keyword")
        operands = ", ".join(["Tensor"] * n_operands)
        warnings.warn(
            f"This overload of {name} is deprecated: {name}(Number {keyword}, {operands}); "
            f"use {name}({operands}, *, Number {keyword}=...) instead",
            UserWarning,
            stacklevel=3,
        )
        return args[1:], args[0]
    raise TypeError(
        f"{name}() takes {n_operands} operand(s) and the keyword {keyword}=, "
        f"got {len(args)} positional argument(s)"
    )
