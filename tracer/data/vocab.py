"""A TorchText-style vocabulary, re-exported from ``runtime.text`` (where pipelines load it)."""

from runtime.text.vocab import Vocab, build_vocab_from_iterator, vocab

__all__ = ["Vocab", "build_vocab_from_iterator", "vocab"]
