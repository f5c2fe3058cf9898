"""Dimension expressions: integer polynomials over symbols, with one canonical text form.

A symbolic dimension is a string such as ``"batch"``, ``"seq*4"`` or ``"past+seq"``. Shape
rules and the tracer combine them with ``+ - *`` (and ``//``, ``%``, kept as opaque
atoms); :class:`Expr` does that arithmetic on a normal form (a sum of monomials with int
coefficients), so ``seq - seq`` is ``0`` and ``(past+seq) - seq`` is ``past``, and equal
expressions print equally wherever they were built. The text form is valid Python, so an
expression evaluates with the symbols' sizes bound (:func:`evaluate`).

Text form: monomials sorted by their symbols (the constant last), each written as its
symbols joined by ``*`` and then its coefficient (``seq*4``, ``batch*seq``); an atom that
is not a plain name (``seq//2``) is parenthesised inside a product.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Union

Dim = Union[int, str, None]  # noqa: UP007 - ir.types.Dim, without importing it (no cycle)

# Monomial: its atoms, sorted, with repetition (seq*seq is ("seq", "seq")).
Monomial = tuple[str, ...]
_PLAIN = re.compile(r"^[A-Za-z_][\w.\[\]]*$")
_TOKEN = re.compile(r"\s*(//|[-+*%()]|[^-+*/%()\s][^-+*/%()]*)")


class Expr:
    """An integer polynomial over symbol names, in normal form.

    Attributes:
        terms: ``{monomial: coefficient}`` with no zero coefficients; the constant term's
            monomial is ``()``.
    """

    __slots__ = ("terms",)

    def __init__(self, terms: Mapping[Monomial, int]) -> None:
        self.terms = {m: c for m, c in terms.items() if c}

    @staticmethod
    def of(dim: int | str | Expr) -> Expr:
        """``dim`` (an int, a symbol or expression text, or an Expr) as an Expr."""
        if isinstance(dim, Expr):
            return dim
        if isinstance(dim, int):
            return Expr({(): dim})
        return parse(dim)

    @staticmethod
    def atom(name: str) -> Expr:
        """The symbol ``name`` itself, whatever characters it holds (never parsed)."""
        return Expr({(name,): 1})

    # ------------------------------------------------------------ arithmetic

    def __add__(self, other: int | Expr) -> Expr:
        terms = dict(self.terms)
        for m, c in Expr.of(other).terms.items():
            terms[m] = terms.get(m, 0) + c
        return Expr(terms)

    def __neg__(self) -> Expr:
        return Expr({m: -c for m, c in self.terms.items()})

    def __sub__(self, other: int | Expr) -> Expr:
        return self + -Expr.of(other)

    def __mul__(self, other: int | Expr) -> Expr:
        terms: dict[Monomial, int] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in Expr.of(other).terms.items():
                m = tuple(sorted(m1 + m2))
                terms[m] = terms.get(m, 0) + c1 * c2
        return Expr(terms)

    def floordiv(self, other: int | Expr) -> Expr:
        """``self // other``: computed when both are constants, else an opaque atom."""
        return self._opaque(Expr.of(other), "//", lambda a, b: a // b)

    def mod(self, other: int | Expr) -> Expr:
        """``self % other``: computed when both are constants, else an opaque atom."""
        return self._opaque(Expr.of(other), "%", lambda a, b: a % b)

    def _opaque(self, other: Expr, symbol: str, fn: object) -> Expr:
        a, b = self.constant, other.constant
        if a is not None and b is not None and b != 0:
            return Expr({(): fn(a, b)})  # type: ignore[operator]
        if symbol == "//" and other.constant == 1:
            return self
        return Expr.atom(f"{self._operand()}{symbol}{other._operand()}")

    def _operand(self) -> str:
        """The text, parenthesised unless it is one plain name or a non-negative int."""
        text = self.text
        if _PLAIN.match(text) or text.isdigit():
            return text
        return f"({text})"

    # ------------------------------------------------------------ reading it

    @property
    def constant(self) -> int | None:
        """The value when the expression has no symbols, else None."""
        if not self.terms:
            return 0
        if set(self.terms) == {()}:
            return self.terms[()]
        return None

    @property
    def text(self) -> str:
        """The canonical text (see the module docstring); ``"0"`` for zero."""
        if not self.terms:
            return "0"
        order = sorted(self.terms, key=lambda m: (m == (), m))
        parts: list[str] = []
        for m in order:
            c = self.terms[m]
            body = _monomial(m, abs(c), leading_minus=not parts and c < 0)
            sign = "-" if c < 0 else "+"
            parts.append(body if not parts and sign == "+" else f"{sign}{body}")
        return "".join(parts)

    def to_dim(self) -> int | str:
        """The int when constant, else the canonical text."""
        value = self.constant
        return self.text if value is None else value

    def is_negative(self) -> bool:
        """Whether every coefficient is <= 0 and one is < 0 (``-n``, ``-n-1``)."""
        return bool(self.terms) and all(c <= 0 for c in self.terms.values())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expr) and other.terms == self.terms

    def __hash__(self) -> int:
        return hash(frozenset(self.terms.items()))

    def __repr__(self) -> str:
        return f"Expr({self.text})"


def _monomial(m: Monomial, coefficient: int, leading_minus: bool) -> str:
    if not m:
        return str(coefficient)
    # A lone ``a//b`` binds tighter than + and -, but not after a leading minus.
    alone = len(m) == 1 and coefficient == 1 and not leading_minus
    atoms = [a if _PLAIN.match(a) or (alone and _is_quotient(a)) else f"({a})" for a in m]
    return "*".join(atoms + ([str(coefficient)] if coefficient != 1 else []))


def _is_quotient(atom: str) -> bool:
    """Whether ``atom`` is a ``//`` or ``%`` that :meth:`Expr._opaque` wrote."""
    return ("//" in atom or "%" in atom) and not any(c.isspace() for c in atom)


# ---------------------------------------------------------------- parsing


def parse(text: str, sizes: Mapping[str, int] | None = None) -> Expr:
    """An expression's text (as :attr:`Expr.text` writes it, or a bare symbol) as an Expr.

    Anything that is not an int, an operator or a parenthesis is a symbol, so names such as
    ``x.shape[0]`` or ``hidden.0_1`` are symbols. Symbols in ``sizes`` take those values.
    """
    tokens = [t.strip() for t in _TOKEN.findall(text) if t.strip()]
    if not tokens or "".join(tokens) != re.sub(r"\s+", "", text):
        return Expr.atom(text)  # not an expression: a symbol with spaces or odd characters
    parser = _Parser(tokens, sizes or {})
    try:
        expr = parser.sum()
    except (IndexError, ValueError):
        return Expr.atom(text)
    return expr if parser.at == len(parser.tokens) else Expr.atom(text)


class _Parser:
    """Recursive descent over tokens: sum := product (('+'|'-') product)*."""

    def __init__(self, tokens: list[str], sizes: Mapping[str, int]) -> None:
        self.tokens = tokens
        self.sizes = sizes
        self.at = 0

    def _peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self) -> str:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def sum(self) -> Expr:
        expr = self.product()
        while self._peek() in ("+", "-"):
            op = self._take()
            rhs = self.product()
            expr = expr + rhs if op == "+" else expr - rhs
        return expr

    def product(self) -> Expr:
        expr = self.unary()
        while self._peek() in ("*", "//", "%"):
            op = self._take()
            rhs = self.unary()
            expr = expr * rhs if op == "*" else expr.floordiv(rhs) if op == "//" else expr.mod(rhs)
        return expr

    def unary(self) -> Expr:
        token = self._take()
        if token == "-":
            return -self.unary()
        if token == "(":
            expr = self.sum()
            if self._take() != ")":
                raise ValueError("unbalanced parentheses")
            return expr
        if token in ("+", "*", "//", "%", ")"):
            raise ValueError(f"unexpected {token!r}")
        if token.isdigit():
            return Expr({(): int(token)})
        return Expr({(): self.sizes[token]}) if token in self.sizes else Expr.atom(token)


# ---------------------------------------------------------------- on dims


def add(a: Dim, b: Dim) -> Dim:
    """``a + b`` for dims (None when either is unknown)."""
    if a is None or b is None:
        return None
    return (Expr.of(a) + Expr.of(b)).to_dim()


def sub(a: Dim, b: Dim) -> Dim:
    """``a - b`` for dims (None when either is unknown)."""
    if a is None or b is None:
        return None
    return (Expr.of(a) - Expr.of(b)).to_dim()


def mul(a: Dim, b: Dim) -> Dim:
    """``a * b`` for dims (None when either is unknown)."""
    if a is None or b is None:
        return None
    return (Expr.of(a) * Expr.of(b)).to_dim()


def evaluate(dim: int | str, sizes: Mapping[str, int]) -> int | None:
    """``dim``'s value with each symbol's size from ``sizes``; None if one is missing."""
    if isinstance(dim, int):
        return dim
    return parse(dim, sizes).constant
