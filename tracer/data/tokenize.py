"""Tokenizers, re-exported from ``runtime.text`` (where a pipeline finds them at run time).

TorchText's ``basic_english`` and ``get_tokenizer``, :class:`RegexTokenizer` and ``ngrams``,
and BERT's :class:`WordPieceTokenizer` with ``Encoding`` and ``load_vocab_file``.
"""

from runtime.text.basic import RegexTokenizer, basic_english, get_tokenizer, ngrams
from runtime.text.wordpiece import Encoding, WordPieceTokenizer, load_vocab_file

__all__ = [
    "Encoding",
    "RegexTokenizer",
    "WordPieceTokenizer",
    "basic_english",
    "get_tokenizer",
    "load_vocab_file",
    "ngrams",
]
