"""Pipelines: a tokenizer, a model and post-processing in one folder, run in process.

``save_pipeline(folder, model, tokenizer=..., labels=...)`` writes the folder;
``Pipeline.load(folder)`` runs it: ``pipe(["great film", "dull"])`` gives labels and scores.
``runtime.pipeline.spec`` documents ``pipeline.json``.
"""

from runtime.pipeline.core import Pipeline
from runtime.pipeline.save import save_pipeline
from runtime.pipeline.spec import PipelineError, PipelineInputError, PipelineSpec

__all__ = ["Pipeline", "PipelineError", "PipelineInputError", "PipelineSpec", "save_pipeline"]
