"""``graphcap serve``: started on a free port of 127.0.0.1 in a subprocess, queried, stopped.

Oracles: ``runtime.Pipeline`` in process (the same folder), onnxruntime's own
``InferenceSession`` for the plain ONNX model, ``tritonclient.http`` as an independent client
of the v2 protocol, ``prometheus_client``'s parser for ``/metrics``. Tests skip without the
serve extra (Starlette, uvicorn); the tritonclient and Prometheus checks skip without those.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from runtime import Pipeline
from tests import serve_models as sm

pytest.importorskip("starlette", reason="the serve extra: pip install 'graphcap[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra: pip install 'graphcap[serve]'")


def request(
    url: str, method: str, path: str, body: bytes | dict | None = None, headers: dict | None = None
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request; the body comes back parsed when it is JSON."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    conn.request(method, path, body=data, headers=headers or {})
    reply = conn.getresponse()
    raw = reply.read()
    conn.close()
    head = {k.lower(): v for k, v in reply.getheaders()}
    parsed = json.loads(raw) if head.get("content-type", "").startswith("application/json") else raw
    return reply.status, head, parsed


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("served")
    sm.save_classifier(root / "clf", ("neg", "pos"), max_length=8)
    sm.save_classifier(root / "strict", ("neg", "pos"), max_length=5, truncation=False)
    sm.save_tagger(root / "tagger")
    from export import save

    save(sm.trace_classifier()[1], root / "raw.onnx")
    return root


@pytest.fixture(scope="module")
def server(models):
    args = [models, "--reload-interval", "0", "--max-request-bytes", "20000"]
    args += ["--max-instances", "16", "--max-text-chars", "600", "--threads", "1"]
    with sm.Server(*args) as s:
        yield s


def _predict(url: str, name: str, texts: list[Any]) -> tuple[int, Any]:
    status, _, body = request(url, "POST", f"/v1/models/{name}:predict", {"instances": texts})
    return status, body


def test_health_metadata_and_the_model_list(server, models) -> None:
    assert request(server.url, "GET", "/v2/health/live")[2] == {"live": True}
    assert request(server.url, "GET", "/v2/health/ready")[:1] == (200,)
    assert request(server.url, "GET", "/v2")[2]["name"] == "graphcap"
    status, _, meta = request(server.url, "GET", "/v2/models/raw")
    assert status == 200 and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "ids", "datatype": "INT64", "shape": [-1, -1]}]
    assert meta["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 2]}]
    status, _, ready = request(server.url, "GET", "/v2/models/clf/ready")
    assert (status, ready["ready"]) == (200, True)
    version = Pipeline.load(models / "clf").fingerprint[:12]
    status, _, meta = request(server.url, "GET", f"/v2/models/clf/versions/{version}")
    assert status == 200 and meta["versions"] == [version]
    assert [t["name"] for t in meta["outputs"]] == ["label", "score", "scores"]
    listed = request(server.url, "GET", "/v1/models")[2]["models"]
    assert {m["name"]: m["kind"] for m in listed} == {
        "clf": "pipeline", "raw": "onnx", "strict": "pipeline", "tagger": "pipeline"
    }  # fmt: skip
    assert b"<title>graphcap serve</title>" in request(server.url, "GET", "/")[2]


def test_predict_gives_the_in_process_pipelines_answers(server, models) -> None:
    texts = sm.TEXTS[:6]
    status, body = _predict(server.url, "clf", texts)
    pipe = Pipeline.load(models / "clf")
    assert status == 200 and body["model_version"] == pipe.fingerprint[:12]
    assert body["predictions"] == pipe.run([pipe.encode(t) for t in texts])  # exactly
    status, body = _predict(server.url, "tagger", [{"text": "Alice met Bob in Paris"}])
    assert body["predictions"] == [Pipeline.load(models / "tagger")("Alice met Bob in Paris")]


def test_a_large_request_is_tokenized_off_the_event_loop(server, models) -> None:
    texts = [" ".join(["the film was great", "dull plot"][i % 2] for _ in range(60))[:590]
             for i in range(16)]  # fmt: skip
    assert sum(map(len, texts)) > 8192  # app._INLINE_CHARS: tokenized on a thread
    status, body = _predict(server.url, "clf", texts)
    pipe = Pipeline.load(models / "clf")
    assert status == 200 and body["predictions"] == pipe.run([pipe.encode(t) for t in texts])


def test_v2_infer_json_texts_and_tensors(server, models) -> None:
    texts = ["a great film", "dull", "héllo wörld"]
    req = {"id": "r1", "inputs": [{"name": "text", "shape": [3, 1], "datatype": "BYTES",
                                    "data": texts}]}  # fmt: skip
    status, _, body = request(server.url, "POST", "/v2/models/clf/infer", req)
    assert status == 200 and body["id"] == "r1"
    out = {o["name"]: o for o in body["outputs"]}
    pipe = Pipeline.load(models / "clf")
    answers = pipe.run([pipe.encode(t) for t in texts])
    assert out["label"]["data"] == [a["label"] for a in answers]
    scores = np.array(out["scores"]["data"], np.float32).reshape(out["scores"]["shape"])
    want = np.stack(pipe.scores([pipe.encode(t) for t in texts]))
    np.testing.assert_array_equal(scores, want)
    import onnxruntime as ort

    ids = np.array([[2, 10, 4, 0], [12, 0, 0, 0]], dtype=np.int64)
    raw = ort.InferenceSession(str(models / "raw.onnx"), providers=["CPUExecutionProvider"])
    req = {"inputs": [{"name": "ids", "shape": [2, 4], "datatype": "INT64",
                       "data": ids.tolist()}]}  # fmt: skip
    status, _, body = request(server.url, "POST", "/v2/models/raw/infer", req)
    got = np.array(body["outputs"][0]["data"], np.float32).reshape(2, 2)
    np.testing.assert_allclose(got, raw.run(None, {"ids": ids})[0], rtol=1e-6, atol=1e-7)


def test_tritonclient_talks_to_it(server, models) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    client = httpclient.InferenceServerClient(urlsplit(server.url).netloc)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("clf")
    assert client.get_model_metadata("raw")["inputs"][0]["name"] == "ids"
    assert client.get_model_config("clf")["input"][0]["data_type"] == "TYPE_STRING"
    texts = np.array([b"a great film", b"dull"], dtype=object)
    text = httpclient.InferInput("text", [2], "BYTES")
    text.set_data_from_numpy(texts)  # binary, tritonclient's default
    result = client.infer("clf", [text])
    pipe = Pipeline.load(models / "clf")
    answers = pipe.run([pipe.encode(t.decode()) for t in texts])
    assert [x.decode() for x in result.as_numpy("label")] == [a["label"] for a in answers]
    np.testing.assert_array_equal(result.as_numpy("score"), [a["score"] for a in answers])
    ids = np.array([[2, 10, 4], [12, 15, 0]], dtype=np.int64)
    feed = httpclient.InferInput("ids", list(ids.shape), "INT64")
    feed.set_data_from_numpy(ids, binary_data=False)
    for binary in (True, False):
        out = httpclient.InferRequestedOutput("logits", binary_data=binary)
        logits = client.infer("raw", [feed], outputs=[out]).as_numpy("logits")
        np.testing.assert_allclose(logits, pipe.session.run({"ids": ids})["logits"], rtol=1e-6)
    client.close()


def _binary_texts(items: list[bytes]) -> tuple[bytes, dict[str, str]]:
    blob = b"".join(struct.pack("<I", len(x)) + x for x in items)
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "text",
                    "shape": [len(items)],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(blob)},
                }
            ]
        }
    ).encode()
    return head + blob, {"Inference-Header-Content-Length": str(len(head))}


def _ids(datatype: str = "INT64", shape: Any = (1, 3), data: Any = (2, 3, 4)) -> dict:
    return {"inputs": [{"name": "ids", "shape": list(shape), "datatype": datatype,
                        "data": list(data)}]}  # fmt: skip


BAD = [
    ("POST", "/v2/models/nope/infer", _ids(), None, 404, r"no model named 'nope'; models: \["),
    ("GET", "/v2/models/clf/versions/7", None, None, 404, "has no version '7'"),
    ("POST", "/v2/models/raw/infer", {"inputs": [{**_ids()["inputs"][0], "name": "idz"}]}, None,
     400, "did you mean 'ids'"),
    ("POST", "/v2/models/raw/infer", _ids("FP32", data=(2.0, 3.0, 4.0)), None, 400,
     "dtype float32, expected int64"),
    ("POST", "/v2/models/raw/infer", _ids(shape=[3]), None, 400, "has rank 1"),
    ("POST", "/v2/models/raw/infer", _ids(shape=[1, 4]), None, 400, "3 values for shape"),
    ("POST", "/v2/models/raw/infer", _ids("FLOAT"), None, 400, "datatype 'FLOAT' is not one of"),
    ("POST", "/v2/models/raw/infer", _ids(data=(2, 3.5, 4)), None, 400, "must be integers"),
    ("POST", "/v2/models/raw/infer", {**_ids(), "outputs": [{"name": "probs"}]}, None, 400,
     "has no output 'probs'"),
    ("POST", "/v2/models/raw/infer", b'{"inputs": [\xff]}', None, 400, "not valid UTF-8"),
    ("POST", "/v2/models/raw/infer", b'{"inputs": [', None, 400, "not valid JSON"),
    ("POST", "/v2/models/clf/infer", *_binary_texts([b"ok", b"caf\xe9"]), 400,
     "element 1 is not valid UTF-8"),
    ("POST", "/v2/models/clf/infer", _binary_texts([b"ok"])[0][:-1],
     _binary_texts([b"ok"])[1], 400, "does not fit the"),
    ("POST", "/v1/models/raw:predict", {"instances": ["a"]}, None, 400, "plain ONNX model"),
    ("POST", "/v1/models/clf:predict", {"texts": ["a"]}, None, 400, '"instances"'),
    ("POST", "/v1/models/clf:predict", {"instances": ["a", 3]}, None, 400,
     "instance 1 must be a string"),
    ("POST", "/v1/models/clf:predict", {"instances": ["a"] * 17}, None, 413, "--max-instances"),
    ("POST", "/v1/models/clf:predict", {"instances": ["a" * 601]}, None, 413, "--max-text-chars"),
    ("POST", "/v1/models/strict:predict", {"instances": ["a a a a a a"]}, None, 400,
     "6 tokens, more than max_length=5"),
    ("POST", "/v1/models/clf:predict", b"x" * 20001, None, 413, "--max-request-bytes"),
    ("POST", "/v1/models/clf:predict", b"{}", {"Content-Encoding": "br"}, 415, "gzip or deflate"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "message"), BAD)
def test_bad_requests_get_a_clear_4xx(server, method, path, body, headers, status, message):
    got, head, reply = request(server.url, method, path, body, headers)
    assert got == status, reply
    assert head["content-type"] == "application/json"
    assert re.search(message, reply["error"]), reply["error"]


def test_a_gzip_body_is_accepted(server) -> None:
    body = gzip.compress(json.dumps({"instances": ["a great film"]}).encode())
    status, _, reply = request(server.url, "POST", "/v1/models/clf:predict", body,
                               {"Content-Encoding": "gzip"})  # fmt: skip
    assert status == 200 and reply["predictions"][0]["label"] in ("neg", "pos")


def _metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = request(url, "GET", "/metrics")[2].decode()
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:  # a plain reading of the same format
        rows = re.findall(r"^(\w+)\{?([^}\s]*)\}? (\S+)$", text, re.M)
        return {(n, tuple(re.findall(r'(\w+)="([^"]*)"', lab))): float(v) for n, lab, v in rows}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_metrics_count_requests_errors_and_batched_rows(server) -> None:
    before = _metrics(server.url)
    for _ in range(3):
        assert _predict(server.url, "clf", ["a", "b c"])[0] == 200
    assert _predict(server.url, "clf", [7])[0] == 400
    after = _metrics(server.url)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    ok = {"model": "clf", "endpoint": "predict"}
    assert delta("graphcap_requests_total", code="200", **ok) == 3
    assert delta("graphcap_request_errors_total", code="400", **ok) == 1
    assert delta("graphcap_request_duration_seconds_count", **ok) == 4
    assert delta("graphcap_batch_size_sum", model="clf") == 6  # every text ran exactly once
    assert delta("graphcap_queue_duration_seconds_count", model="clf") == 3


def test_openapi_describes_every_route(server) -> None:
    doc = request(server.url, "GET", "/openapi.json")[2]
    assert doc["openapi"].startswith("3.")
    from export.serve.app import ServeOptions, create_app
    from export.serve.metrics import Metrics
    from export.serve.repository import LoadOptions, Repository

    app = create_app(Repository([], LoadOptions(), Metrics()), ServeOptions())
    routes = {(r.path, m.lower()) for r in app.routes for m in r.methods if m != "HEAD"}
    described = {(p, m) for p, item in doc["paths"].items() for m in item}
    assert described == routes


def test_concurrent_clients_each_get_their_own_answers(server, models) -> None:
    pipe = Pipeline.load(models / "clf")
    want = {t: pipe(t) for t in sm.TEXTS}
    failures: list[str] = []

    def client(k: int) -> None:
        for j in range(6):
            text = sm.TEXTS[(k + j) % len(sm.TEXTS)]
            bad = (k + j) % 5 == 0
            status, body = _predict(server.url, "clf", [5] if bad else [text, text])
            if bad:
                ok = status == 400 and "must be a string" in body["error"]
            else:
                got = body["predictions"]
                ok = status == 200 and all(
                    g["label"] == want[text]["label"]
                    and abs(g["score"] - want[text]["score"]) <= 1e-6
                    for g in got
                )
            if not ok:
                failures.append(f"{text!r}: {status} {body}")

    before = _metrics(server.url)
    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures[:3]
    after = _metrics(server.url)
    key = ("graphcap_batch_size_sum", (("model", "clf"),))
    good = sum(1 for k in range(8) for j in range(6) if (k + j) % 5)
    assert after[key] - before.get(key, 0) == 2 * good  # no text lost or run twice


def test_cuda_falls_back_to_the_cpu_and_says_so(models) -> None:
    with sm.Server(models / "raw.onnx", "--device", "cuda") as s:
        status, _, body = request(s.url, "GET", "/v1/models/raw")
        assert status == 200 and body["device"] == "cpu"
        err = s.stderr()
    assert "warning: raw: device='cuda' was requested but the model runs on CPU" in err
    assert "CPUExecutionProvider" in err


def test_shutdown_finishes_requests_in_flight_and_timeouts_answer_504(models) -> None:
    args = ["--max-queue-delay-ms", "800", "--max-batch-size", "64", "--reload-interval", "0"]
    with sm.Server(models / "clf", *args) as s:
        req = {
            "parameters": {"timeout": 100_000},  # microseconds, as Triton's
            "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]}],
        }
        status, _, body = request(s.url, "POST", "/v2/models/clf/infer", req)
        assert status == 504 and "no answer within 0.1 s" in body["error"]
        answers: list[Any] = []
        worker = threading.Thread(target=lambda: answers.append(_predict(s.url, "clf", ["dull"])))
        worker.start()
        time.sleep(0.3)  # the request waits in the queue (800 ms) when the server is told to stop
        assert s.stop() == 0
        worker.join(10)
        assert answers and answers[0][0] == 200
        assert answers[0][1]["predictions"] == [Pipeline.load(models / "clf")("dull")]
        with pytest.raises(OSError):
            request(s.url, "GET", "/v2/health/live")


def test_usage_errors_and_the_missing_extra(tmp_path, models, capsys, monkeypatch) -> None:
    from export.cli import main

    assert main(["serve", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["serve", str(tmp_path)]) == 1
    assert "holds no model" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "starlette", None)  # as if the extra were missing
    assert main(["serve", str(models / "clf")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'graphcap[serve]'" in err and "starlette" in err
