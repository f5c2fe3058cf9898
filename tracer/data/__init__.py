"""Text data: tokenizers, vocabularies, datasets and loaders, readers for corpora and vectors.

TorchText's and PyTorch's names: ``get_tokenizer("basic_english")``, ``Vocab``,
``build_vocab_from_iterator``, ``Dataset``, ``TensorDataset``, ``DataLoader``,
``pad_sequence``; plus BERT's ``WordPieceTokenizer``, ``RegexTokenizer``, ``ngrams`` and
length-bucketed batching. The tokenizers and ``Vocab`` live in ``runtime.text`` (a pipeline
runs them without the training library) and are re-exported here.
"""

from tracer.data.loader import (
    BatchSampler,
    BucketBatchSampler,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    Subset,
    TensorDataset,
    default_collate,
    default_convert,
    pad_collate,
    pad_sequence,
    random_split,
)
from tracer.data.readers import (
    Vectors,
    build_embedding_matrix,
    load_npy_embeddings,
    open_text,
    read_conll,
    read_csv,
    read_word_vectors,
)
from tracer.data.tokenize import (
    Encoding,
    RegexTokenizer,
    WordPieceTokenizer,
    basic_english,
    get_tokenizer,
    load_vocab_file,
    ngrams,
)
from tracer.data.vocab import Vocab, build_vocab_from_iterator, vocab

__all__ = [
    "BatchSampler",
    "BucketBatchSampler",
    "DataLoader",
    "Dataset",
    "Encoding",
    "IterableDataset",
    "RandomSampler",
    "RegexTokenizer",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "TensorDataset",
    "Vectors",
    "Vocab",
    "WordPieceTokenizer",
    "basic_english",
    "build_embedding_matrix",
    "build_vocab_from_iterator",
    "default_collate",
    "default_convert",
    "get_tokenizer",
    "load_npy_embeddings",
    "load_vocab_file",
    "ngrams",
    "open_text",
    "pad_collate",
    "pad_sequence",
    "random_split",
    "read_conll",
    "read_csv",
    "read_word_vectors",
    "vocab",
]
