"""Port of pytorch/examples ``word_language_model/data.py``: the corpus reader.

Source: pytorch/examples, word_language_model/data.py,
commit 77f55b912142e11fcfdf5b530231fb9c52f181e8.

A rewrite in our own words that keeps the file's PyTorch API usage: each line's ids become
``torch.tensor(ids).type(torch.int64)`` and a split is their ``torch.cat``.
"""

import os
from io import open

from tests.ports._switch import backend

if backend() == "torch":
    import torch
else:
    import tracer as torch


class Dictionary:
    """Word <-> id, in order of first appearance."""

    def __init__(self):
        self.word2idx = {}
        self.idx2word = []

    def add_word(self, word):
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


class Corpus:
    """The train, valid and test splits of a folder, as flat tensors of word ids."""

    def __init__(self, path):
        self.dictionary = Dictionary()
        self.train = self.tokenize(os.path.join(path, "train.txt"))
        self.valid = self.tokenize(os.path.join(path, "valid.txt"))
        self.test = self.tokenize(os.path.join(path, "test.txt"))

    def tokenize(self, path):
        """One tensor of the ids of the file's words, ``<eos>`` after each line."""
        assert os.path.exists(path)
        with open(path, "r", encoding="utf8") as f:
            for line in f:
                for word in line.split() + ["<eos>"]:
                    self.dictionary.add_word(word)
        with open(path, "r", encoding="utf8") as f:
            idss = []
            for line in f:
                ids = [self.dictionary.word2idx[word] for word in line.split() + ["<eos>"]]
                idss.append(torch.tensor(ids).type(torch.int64))
            return torch.cat(idss)
