"""Stand-ins for the torchtext pieces the tutorials download or import (data, not torch API).

``news_items`` replaces the AG_NEWS download with generated headlines, ``wiki_lines`` the
WikiText-2 download with a few generated paragraphs, and ``tokenizer`` /
``build_vocab_from_iterator`` replace torchtext's ``basic_english`` tokenizer and vocabulary
builder, which exist for neither library here. All of it is plain Python, so the torch run
and the graphcap run see the same data.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator

_TOPICS = {
    1: "government minister election talks border treaty president vote".split(),
    2: "match team season coach goal striker league cup".split(),
    3: "shares market profit bank quarter investors prices deal".split(),
    4: "software chip internet space researchers phone launch network".split(),
}
_FILLER = "the a of in on after with says new first".split()


def news_items(n: int, seed: int) -> list[tuple[int, str]]:
    """``n`` (label, headline) pairs, labels 1..4, drawn from a generator seeded by ``seed``."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        label = rng.randint(1, 4)
        words = rng.choices(_TOPICS[label], k=5) + rng.choices(_FILLER, k=3)
        rng.shuffle(words)
        items.append((label, " ".join(words).capitalize() + "."))
    return items


def wiki_lines(n: int, seed: int) -> list[str]:
    """``n`` lines of generated text, some of them empty, as WikiText has."""
    rng = random.Random(seed)
    words = [w for topic in _TOPICS.values() for w in topic] + _FILLER
    return ["" if i % 5 == 0 else " ".join(rng.choices(words, k=12)) + " ." for i in range(n)]


def tokenizer(line: str) -> list[str]:
    """Lower case, punctuation split off, split on whitespace (``basic_english``'s rules)."""
    return re.sub(r"([.,!?'\"()])", r" \1 ", line.lower()).split()


class Vocab:
    """Token -> index, most frequent first, with a default index for unknown tokens."""

    def __init__(self, tokens: list[str]) -> None:
        self.itos = tokens
        self.stoi = {t: i for i, t in enumerate(tokens)}
        self.default: int | None = None

    def set_default_index(self, index: int) -> None:
        self.default = index

    def __getitem__(self, token: str) -> int:
        got = self.stoi.get(token, self.default)
        if got is None:
            raise KeyError(token)
        return got

    def __call__(self, tokens: Iterable[str]) -> list[int]:
        return [self[t] for t in tokens]

    def __len__(self) -> int:
        return len(self.itos)


def build_vocab_from_iterator(iterator: Iterator[list[str]], specials: list[str]) -> Vocab:
    counts = Counter(t for tokens in iterator for t in tokens)
    ordered = sorted(counts, key=lambda t: (-counts[t], t))
    return Vocab(specials + [t for t in ordered if t not in specials])
