"""Serving throughput and latency: ``graphcap serve`` against a hand-written FastAPI app.

Servers, each a subprocess on 127.0.0.1 serving one pipeline folder:

- ``handwritten``: ``bench/handwritten_app.py``, the ~40-line FastAPI app a user writes
  around ``runtime.Session`` (a synchronous endpoint on FastAPI's thread pool), on uvicorn;
- ``serve``: ``graphcap serve FOLDER --max-batch-size 1`` (no batching);
- ``batched``: ``graphcap serve FOLDER`` (dynamic batching, its defaults).

Models: the demo's polarity classifier (``runs/demo``, written by ``examples/demo.py``; a
2-epoch version is trained here when it is missing) and all-MiniLM-L6-v2 with a linear head
(``examples/minilm.py``'s ``save_classifier``; the head is untrained: serving cost does not
depend on its weights). Requests: one text each (``{"instances": [text]}``), drawn from the
demo's held-out Rotten Tomatoes snippets. Clients: 1, 16 and 64 closed-loop clients (each
sends its next request when the previous answer arrives), on keep-alive connections, from an
asyncio load generator in this process (``server_cpu_ms_per_request``: the server process's
CPU time per answered request, a measure a busy machine's load does not skew as it skews
times); each level runs ``--duration`` seconds after a
warm-up, ``--rounds`` times per server, the servers taking turns (all are up at once, so a
shared machine's changing load hits them alike). The in-process ``Pipeline`` (batches of
32, and one text at a time) is the limit.

One JSON line per measurement on stdout (progress on stderr), then one per server and level
with the medians of the rounds (``median_of_rounds``), then a summary line with the issue's
targets, computed from the medians. Usage: ``python bench/serve.py [--duration S]
[--rounds N] [--models demo,minilm] [--servers handwritten,serve,batched] [--clients
1,16,64]``. Reports numbers; gates nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "bench"))

from machine import environment  # noqa: E402

SERVERS = ("handwritten", "serve", "batched")


def log(message: str) -> None:
    print(f"[bench/serve] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------- models and texts


def texts_and_demo(folder: Path | None, work: Path) -> tuple[list[str], Path]:
    """The held-out snippets, and the demo pipeline (trained here if ``folder`` lacks one)."""
    import polarity

    snippets = polarity.load_snippets(polarity.find_corpus())
    data = polarity.prepare(snippets, 0.1, seed=0)
    if folder is not None and (folder / "pipeline.json").is_file():
        return data.test_texts, folder
    log("no demo pipeline given: training the demo classifier for 2 epochs")
    import tracer
    from runtime import save_pipeline

    model = polarity.build_model(data, 64, 0.5, False, seed=0)
    polarity.fit(model, data, 2, 64, 3e-3, 0.0, seed=0, quiet=True)
    model.eval()
    example = tracer.tensor(np.array([[2, 3, 4]], dtype=np.int64))
    with tracer.no_grad():
        graph = tracer.trace(model, (example,), {"ids": {0: "batch", 1: "seq"}})
    out = work / "demo"
    save_pipeline(
        out, graph, tokenizer=data.vocab, split=polarity.tokenize, ngrams=2,
        pad_index=polarity.PAD, labels=["rotten", "fresh"], max_length=128,
    )  # fmt: skip
    return data.test_texts, out


def minilm_pipeline(folder: Path | None, work: Path) -> Path:
    """The MiniLM classifier pipeline (written here when ``folder`` lacks one)."""
    if folder is not None and (folder / "pipeline.json").is_file():
        return folder
    import minilm

    log("writing the MiniLM classifier pipeline")
    out = work / "minilm"
    minilm.save_classifier(out, ["negative", "positive"])
    return out


def in_process(folder: Path, texts: list[str], seconds: float) -> dict[str, Any]:
    """``Pipeline`` throughput in this process: batches of 32, and one text at a time."""
    from runtime import Pipeline

    pipe = Pipeline.load(folder)
    pipe(texts[:64])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = [texts[(done + i) % len(texts)] for i in range(32)]
        pipe(batch, batch_size=32)
        done += 32
    batched = done / (time.perf_counter() - start)
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds / 2:
        t0 = time.perf_counter()
        pipe(texts[len(times) % len(texts)])
        times.append(time.perf_counter() - t0)
    return {
        "texts_per_s_batch32": round(batched, 1),
        "texts_per_s_one_by_one": round(len(times) / sum(times), 1),
        "p50_ms_one_text": round(1000 * float(np.percentile(times, 50)), 3),
        "pad_invariant": pipe.pad_invariant,
        "backend": pipe.session.backend,
    }


# ----------------------------------------------------------------------------- servers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(
    kind: str, folder: Path, name: str, threads: int | None
) -> Iterator[tuple[str, str, int]]:
    """Start one server; yields its base URL, the path texts are posted to, its pid."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    log_file = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in the finally below
    if kind == "handwritten":
        port = _free_port()
        env["BENCH_PIPELINE"] = str(folder)
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.handwritten_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        path = "/predict"
    else:
        cmd = [
            sys.executable,
            "-m",
            "export.cli",
            "serve",
            str(folder),
            "--port",
            "0",
            "--reload-interval",
            "0",
        ]
        if kind == "serve":
            cmd += ["--max-batch-size", "1"]
        if threads:
            cmd += ["--threads", str(threads)]
        path = f"/v1/models/{name}:predict"
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log_file,
                            text=True)  # fmt: skip
    try:
        if kind == "handwritten":
            url = f"http://127.0.0.1:{port}"
        else:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            found = re.search(r"(http://127\.0\.0\.1:\d+)", line)
            if not found:
                log_file.seek(0)
                raise RuntimeError(f"graphcap serve did not start: {log_file.read()}")
            url = found.group(1)
        _wait(url, path)
        yield url, path, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log_file.close()


def _wait(url: str, path: str) -> None:
    body = json.dumps({"instances": ["warm up"]}).encode()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url + path, body, {"content-type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no answer from {url}{path}")


def batch_stats(url: str) -> tuple[float, float]:
    """``graphcap_batch_size`` sum and count from ``/metrics`` (zeros for other servers)."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as reply:
            text = reply.read().decode()
    except OSError:
        return 0.0, 0.0
    total = sum(float(v) for v in re.findall(r"^graphcap_batch_size_sum\{.*\} (\S+)$", text, re.M))
    count = sum(
        float(v) for v in re.findall(r"^graphcap_batch_size_count\{.*\} (\S+)$", text, re.M)
    )
    return total, count


# ------------------------------------------------------------------------ load generator


async def _read_reply(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    match = re.search(rb"(?i)content-length: *(\d+)", head)
    await reader.readexactly(int(match.group(1)) if match else 0)
    return status


async def _client(
    url: str, path: str, bodies: list[bytes], stop_at: float, seed: int, out: dict[str, list]
) -> None:
    host, port = url.removeprefix("http://").split(":")
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    while time.perf_counter() < stop_at:
        body = bodies[rng.randrange(len(bodies))]
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        start = time.perf_counter()
        try:
            writer.write(request)
            status = await _read_reply(reader)
        except (OSError, asyncio.IncompleteReadError) as err:
            out["errors"].append(f"{type(err).__name__}: {err}")
            writer.close()
            reader, writer = await asyncio.open_connection(host, int(port))
            continue
        out["latency"].append(time.perf_counter() - start)
        if status != 200:
            out["errors"].append(f"HTTP {status}")
    writer.close()


async def _load(url: str, path: str, bodies: list[bytes], clients: int, seconds: float) -> dict:
    out: dict[str, list] = {"latency": [], "errors": []}
    stop_at = time.perf_counter() + seconds
    start = time.perf_counter()
    await asyncio.gather(*(_client(url, path, bodies, stop_at, k, out) for k in range(clients)))
    out["seconds"] = [time.perf_counter() - start]
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process ``pid`` has used (Linux ``/proc``), or NaN."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, path: str, texts: list[str], clients: int, seconds: float, pid: int) -> dict:
    """Closed-loop load: throughput, p50 and p99 latency, errors, server CPU per request."""
    bodies = [json.dumps({"instances": [t]}).encode() for t in texts]
    asyncio.run(_load(url, path, bodies, clients, min(2.0, seconds / 3)))  # warm-up
    before, cpu = batch_stats(url), cpu_seconds(pid)
    out = asyncio.run(_load(url, path, bodies, clients, seconds))
    cpu = cpu_seconds(pid) - cpu
    after = batch_stats(url)
    lat = np.array(out["latency"]) * 1000
    rows, batches = after[0] - before[0], after[1] - before[1]
    return {
        "clients": clients,
        "requests": len(lat),
        "errors": len(out["errors"]),
        "error_kinds": sorted(set(out["errors"]))[:3],
        "throughput_rps": round(len(lat) / out["seconds"][0], 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 3) if len(lat) else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 3) if len(lat) else None,
        "mean_batch": round(rows / batches, 2) if batches else None,
        "server_cpu_ms_per_request": round(1000 * cpu / len(lat), 3) if len(lat) else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


# --------------------------------------------------------------------------------- main


def targets(rows: list[dict]) -> dict[str, Any]:
    """The issue's targets, per model, from the measurements."""
    out: dict[str, Any] = {}
    for model in sorted({r["model"] for r in rows if "server" in r}):
        mine = {
            (r["server"], r["clients"]): r
            for r in rows
            if r.get("model") == model and "server" in r
        }

        def get(srv: str, clients: int, mine: dict = mine) -> dict | None:
            return mine.get((srv, clients))

        hand16, batch16 = get("handwritten", 16), get("batched", 16)
        one, nobatch_one = get("batched", 1), get("serve", 1)
        res: dict[str, Any] = {}
        if hand16 and batch16:
            res["throughput_ratio_16"] = round(
                batch16["throughput_rps"] / hand16["throughput_rps"], 2
            )
            res["p99_ratio_16"] = round(batch16["p99_ms"] / hand16["p99_ms"], 3)
            res["held_16"] = res["throughput_ratio_16"] >= 3 and res["p99_ratio_16"] <= 1 / 3
        errors64 = [r["errors"] for r in rows if r.get("model") == model and r.get("clients") == 64
                    and r.get("server") != "handwritten"]  # fmt: skip
        if errors64:
            res["graphcap_errors_64"] = sum(errors64)
        if one and nobatch_one:
            res["batching_overhead_ms_1"] = round(one["p50_ms"] - nobatch_one["p50_ms"], 3)
            res["held_overhead"] = res["batching_overhead_ms_1"] <= 1.0
        out[model] = res
    return out


def median_rows(rows: list[dict]) -> list[dict]:
    """Per (model, server, clients): the median over rounds of each number; errors summed."""
    keyed: dict[tuple, list[dict]] = {}
    for r in rows:
        if "server" in r:
            keyed.setdefault((r["model"], r["server"], r["clients"]), []).append(r)
    out = []
    for (model, srv, clients), group in keyed.items():
        row: dict[str, Any] = {"model": model, "server": srv, "clients": clients,
                               "rounds": len(group)}  # fmt: skip
        numbers = ("throughput_rps", "p50_ms", "p99_ms", "mean_batch", "load_average_1m")
        for key in (*numbers, "server_cpu_ms_per_request"):
            values = [g[key] for g in group if g[key] is not None]
            row[key] = round(float(np.median(values)), 3) if values else None
        row["requests"] = sum(g["requests"] for g in group)
        row["errors"] = sum(g["errors"] for g in group)
        out.append(row)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--demo", type=Path, default=ROOT / "runs" / "demo")
    p.add_argument("--minilm", type=Path, default=None, help="a MiniLM pipeline folder")
    p.add_argument("--models", default="demo,minilm")
    p.add_argument("--servers", default=",".join(SERVERS))
    p.add_argument("--clients", default="1,16,64")
    p.add_argument("--duration", type=float, default=6.0, help="seconds per measurement")
    p.add_argument("--rounds", type=int, default=3, help="measurements per server and level")
    p.add_argument("--threads", type=int, default=None, help="graphcap serve --threads")
    args = p.parse_args()
    import onnxruntime  # noqa: F401 - imported before environment() reads its version

    env = environment()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="graphcap-bench-serve-") as tmp:
        texts, demo = texts_and_demo(args.demo, Path(tmp))
        folders = {"demo": demo}
        if "minilm" in args.models:
            folders["minilm"] = minilm_pipeline(args.minilm, Path(tmp))
        for model in args.models.split(","):
            folder = folders[model]
            log(f"{model}: in-process Pipeline")
            row = {"model": model, "in_process": in_process(folder, texts, args.duration)}
            rows.append(row)
            print(json.dumps({**row, **env}), flush=True)
            with ExitStack() as stack:  # every server up at once; rounds interleave them
                kinds = args.servers.split(",")
                urls = {k: stack.enter_context(server(k, folder, folder.name, args.threads))
                        for k in kinds}  # fmt: skip
                for clients in (int(c) for c in args.clients.split(",")):
                    for rnd in range(args.rounds):
                        for kind in kinds:
                            log(f"{model}: {kind}, {clients} clients, round {rnd + 1}")
                            url, path, pid = urls[kind]
                            numbers = measure(url, path, texts, clients, args.duration, pid)
                            row = {"model": model, "server": kind, "round": rnd + 1, **numbers}
                            rows.append(row)
                            print(json.dumps({**row, **env}), flush=True)
    medians = median_rows(rows)
    for row in medians:
        print(json.dumps({"median_of_rounds": True, **row, **env}), flush=True)
    print(json.dumps({"summary": targets(medians), **env}), flush=True)


if __name__ == "__main__":
    main()
