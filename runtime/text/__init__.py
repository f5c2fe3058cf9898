"""Text to token ids, with NumPy and the standard library only: what a pipeline needs at run time.

- ``basic_english``, ``get_tokenizer`` (TorchText's), :class:`RegexTokenizer` (tokens are a
  pattern's matches, with character offsets) and ``ngrams``;
- :class:`Vocab` (TorchText's vocabulary) with ``build_vocab_from_iterator`` and ``vocab``;
- :class:`WordPieceTokenizer` (BERT's, pure Python, or the ``tokenizers`` package when
  installed), ``Encoding`` and ``load_vocab_file``.

``tracer.data`` re-exports all of these; they live here so that ``runtime.Pipeline`` runs
without the training library.
"""

from runtime.text.basic import RegexTokenizer, basic_english, get_tokenizer, ngrams
from runtime.text.vocab import Vocab, build_vocab_from_iterator, vocab
from runtime.text.wordpiece import Encoding, WordPieceTokenizer, load_vocab_file

__all__ = [
    "Encoding",
    "RegexTokenizer",
    "Vocab",
    "WordPieceTokenizer",
    "basic_english",
    "build_vocab_from_iterator",
    "get_tokenizer",
    "load_vocab_file",
    "ngrams",
    "vocab",
]
