"""Load and fault tests of ``graphcap serve`` (marked slow; 127.0.0.1, bounded in time).

Many concurrent clients mixing valid and invalid requests and clients that disconnect
mid-request; a model folder replaced while it is being served. Every valid answer is
checked against the in-process ``runtime.Pipeline`` of the version that the server says
answered: zero dropped or wrong answers, never a half-loaded model.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from runtime import Pipeline
from tests import serve_models as sm
from tests.export.test_serve import _metrics, _predict, request

pytestmark = pytest.mark.slow
pytest.importorskip("starlette", reason="the serve extra: pip install 'graphcap[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra: pip install 'graphcap[serve]'")


def _answers_match(got: list[dict], want: list[dict]) -> bool:
    return len(got) == len(want) and all(
        g["label"] == w["label"]
        and [s["label"] for s in g["scores"]] == [s["label"] for s in w["scores"]]
        and all(
            abs(a["score"] - b["score"]) <= 1e-6
            for a, b in zip(g["scores"], w["scores"], strict=True)
        )
        for g, w in zip(got, want, strict=True)
    )


def _binary_infer(url: str, texts: list[str]) -> tuple[int, Any]:
    blob = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)
    head = json.dumps({"inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES",
                                   "parameters": {"binary_data_size": len(blob)}}],
                       "outputs": [{"name": "label"}]}).encode()  # fmt: skip
    headers = {"Inference-Header-Content-Length": str(len(head))}
    status, _, body = request(url, "POST", "/v2/models/clf/infer", head + blob, headers)
    return status, body


def _disconnect(url: str, kind: int) -> None:
    """A client that gives up: mid-body, right after sending, or before sending anything."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        body = json.dumps({"instances": ["a great film"] * 3}).encode()
        head = (
            f"POST /v1/models/clf:predict HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        if kind == 0:
            sock.sendall(head + body[: len(body) // 2])
        elif kind == 1:
            sock.sendall(head + body)
        time.sleep(0.01)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset


def test_many_clients_mixed_requests_and_disconnects(tmp_path) -> None:
    sm.save_classifier(tmp_path / "clf", ("neg", "pos"), max_length=8)
    pipe = Pipeline.load(tmp_path / "clf")
    want = {t: pipe(t) for t in sm.TEXTS}
    failures: list[str] = []
    counts = {"ok": 0, "bad": 0, "gone": 0, "sent": 0}
    lock = threading.Lock()
    args = ["--reload-interval", "0", "--max-batch-size", "16", "--max-queue-delay-ms", "2"]
    with sm.Server(tmp_path / "clf", *args) as s:
        before = _metrics(s.url)

        def client(seed: int) -> None:
            try:
                requests(random.Random(seed))
            except Exception as err:
                failures.append(f"client {seed}: {type(err).__name__}: {err}")

        def requests(rng: random.Random) -> None:
            for _ in range(25):
                texts = rng.choices(sm.TEXTS, k=rng.randint(1, 3))
                kind = rng.randrange(5)
                if kind == 0:
                    status, body = _predict(s.url, "clf", texts)
                    ok = status == 200 and _answers_match(
                        body["predictions"], [want[t] for t in texts]
                    )
                elif kind == 1:
                    status, body = _binary_infer(s.url, texts)
                    labels = [o for o in body["outputs"] if o["name"] == "label"]
                    ok = status == 200 and labels[0]["data"] == [want[t]["label"] for t in texts]
                elif kind == 2:
                    status, body = _predict(s.url, "clf", [*texts, {"no": "text"}])
                    ok = status == 400 and "must be a string" in body["error"]
                elif kind == 3:
                    status, _, body = request(s.url, "POST", "/v2/models/clf/infer", b"\xff{")
                    ok = status == 400 and "UTF-8" in body["error"]
                else:
                    gone = rng.randrange(3)
                    _disconnect(s.url, gone)
                    status, ok = 0, True
                    kind += gone == 1  # 5: the whole request was sent, its answer not read
                with lock:
                    counts[("ok", "ok", "bad", "bad", "gone", "sent")[kind]] += 1
                    if not ok:
                        failures.append(f"kind {kind}: {status} {body}")

        threads = [threading.Thread(target=client, args=(k,)) for k in range(32)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        seconds = time.monotonic() - start
        assert not failures, failures[:5]
        assert request(s.url, "GET", "/v2/health/ready")[0] == 200
        after = _metrics(s.url)
    served = sum(
        after[k] - before.get(k, 0)
        for k in after
        if k[0] == "graphcap_requests_total" and ("code", "200") in k[1]
    )
    # Every valid request answered once; those whose client left may or may not be.
    assert counts["ok"] <= served <= counts["ok"] + counts["sent"], (served, counts)
    assert counts["gone"] > 0 and counts["sent"] > 0 and seconds < 120


def _copy_slowly(source: Path, dest: Path, pause: float, names: list[str]) -> None:
    """Overwrite ``dest``'s files ``names`` one at a time, each half-written for a while."""
    for name in names:
        data = (source / name).read_bytes()
        with open(dest / name, "wb") as f:  # not atomic: a reader may see a part of it
            f.write(data[: len(data) // 2])
            f.flush()
            time.sleep(pause)
            f.write(data[len(data) // 2 :])
        time.sleep(pause)


def test_a_model_folder_replaced_while_serving(tmp_path) -> None:
    versions, expected = {}, {}
    for seed, labels in ((0, ("neg", "pos")), (1, ("bad", "good")), (2, ("no", "yes"))):
        folder = tmp_path / f"v{seed}"
        sm.save_classifier(folder, labels, seed=seed, max_length=8)
        pipe = Pipeline.load(folder)
        versions[seed] = pipe.fingerprint[:12]
        expected[versions[seed]] = {t: pipe(t) for t in sm.TEXTS}
    served = tmp_path / "models" / "clf"
    served.parent.mkdir()
    shutil.copytree(tmp_path / "v0", served)
    seen: dict[int, list[str]] = {k: [] for k in range(6)}
    failures: list[str] = []
    stop = threading.Event()
    with sm.Server(served.parent, "--reload-interval", "0.2") as s:

        def client(k: int) -> None:
            rng = random.Random(k)
            while not stop.is_set():
                texts = rng.choices(sm.TEXTS, k=2)
                status, body = _predict(s.url, "clf", texts)
                version = body.get("model_version") if status == 200 else None
                if version not in expected or not _answers_match(
                    body["predictions"], [expected[version][t] for t in texts]
                ):
                    failures.append(f"{status} {version} {body}")
                    return
                seen[k].append(version)

        def wait_for(version: str) -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if request(s.url, "GET", "/v1/models/clf")[2]["version"] == version:
                    return
                time.sleep(0.05)
            raise AssertionError(f"version {version} never got served: {s.stderr()}")

        threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        # 1. replaced the way save_pipeline does it: a new folder renamed into place
        staged = served.with_name(".clf.new")
        shutil.copytree(tmp_path / "v1", staged)
        os.rename(served, served.with_name(".clf.old"))
        os.rename(staged, served)
        wait_for(versions[1])
        time.sleep(0.3)
        # 2. overwritten in place, file by file, each file half-written for a while, and
        # pipeline.json first: until the others follow, its SHA-256s do not match them
        _copy_slowly(tmp_path / "v2", served, 0.3, ["pipeline.json"])
        refusal = ("graphcap_model_reloads_total", (("model", "clf"), ("result", "refused")))
        deadline = time.monotonic() + 20
        while _metrics(s.url).get(refusal, 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert request(s.url, "GET", "/v1/models/clf")[2]["version"] == versions[1]
        rest = sorted(p.name for p in served.iterdir() if p.name != "pipeline.json")
        _copy_slowly(tmp_path / "v2", served, 0.3, rest)
        wait_for(versions[2])
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(30)
        metrics = _metrics(s.url)
        log = s.stderr()
    assert not failures, failures[:3]
    rank = {versions[i]: i for i in range(3)}
    for k, got in seen.items():  # each client's requests, in order: never an older version
        assert all(rank[a] <= rank[b] for a, b in itertools.pairwise(got)), (k, got)
    assert {v for got in seen.values() for v in got} == set(rank)
    loaded = metrics[("graphcap_model_reloads_total", (("model", "clf"), ("result", "loaded")))]
    assert loaded == 2 and metrics[refusal] >= 1, (loaded, metrics[refusal], log)
    assert "a new version was refused, still serving" in log


def test_a_plain_onnx_file_half_written_is_refused_then_loaded(tmp_path) -> None:
    from export import save

    save(sm.trace_classifier(seed=0)[1], tmp_path / "old.onnx")
    save(sm.trace_classifier(seed=3)[1], tmp_path / "new.onnx")
    served = tmp_path / "models" / "raw.onnx"
    served.parent.mkdir()
    shutil.copyfile(tmp_path / "old.onnx", served)
    ids = {"inputs": [{"name": "ids", "shape": [1, 3], "datatype": "INT64", "data": [2, 10, 4]}]}

    def logits(url: str) -> tuple[str, np.ndarray]:
        status, _, body = request(url, "POST", "/v2/models/raw/infer", ids)
        assert status == 200, body
        return body["model_version"], np.array(body["outputs"][0]["data"])

    with sm.Server(served.parent, "--reload-interval", "0.2") as s:
        version, first = logits(s.url)
        data = (tmp_path / "new.onnx").read_bytes()
        served.write_bytes(data[: len(data) // 2])
        time.sleep(1.5)  # several polls: the half file is tried once and refused
        assert logits(s.url)[0] == version
        served.write_bytes(data)
        deadline = time.monotonic() + 20
        while logits(s.url)[0] == version and time.monotonic() < deadline:
            time.sleep(0.1)
        new_version, second = logits(s.url)
        assert new_version != version and not np.allclose(first, second)
        log = s.stderr()
    assert "refused" in log and "reloaded" in log
