"""The FastAPI app a user writes by hand around ``runtime.Session`` (the serving baseline).

What ``bench/serve.py`` compares ``graphcap serve`` with: one synchronous endpoint (FastAPI
runs it on its thread pool), the pipeline folder's tokenizer, the model on a shared
``Session``, padding and softmax written out. Run it with
``BENCH_PIPELINE=runs/demo uvicorn bench.handwritten_app:app --port 8000``.
"""

import json
import os
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

from runtime import Pipeline, Session

FOLDER = Path(os.environ.get("BENCH_PIPELINE", "runs/demo"))
SPEC = json.loads((FOLDER / "pipeline.json").read_text())
TOKENIZER = Pipeline.load(FOLDER).encoder  # the tokenizer the model was trained with
SESSION = Session(FOLDER / SPEC["model"])  # Sessions are thread-safe: one for all requests
app = FastAPI()


class Texts(BaseModel):
    instances: list[str]


@app.post("/predict")
def predict(request: Texts) -> dict:
    encoded = [TOKENIZER.encode(t, SPEC["max_length"], True) for t in request.instances]
    width = max(len(e.ids) for e in encoded)
    ids = np.full((len(encoded), width), TOKENIZER.pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, e in enumerate(encoded):
        ids[row, : len(e.ids)] = e.ids
        mask[row, : len(e.ids)] = 1
    fields = {"input_ids": ids, "attention_mask": mask}
    feeds = {name: fields[field] for name, field in SPEC["inputs"].items()}
    logits = SESSION.run(feeds)[SESSION.output_names[0]]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = SPEC["labels"]
    return {
        "predictions": [{"label": labels[int(p.argmax())], "score": float(p.max())} for p in probs]
    }
