"""``PreTrainedModel``: ``from_pretrained`` / ``save_pretrained`` for Hugging Face folders.

The module trees mirror ``transformers``' so that parameter names are the checkpoint's
names. Loading follows ``transformers``' rules where checkpoints differ from the class:

- a head model loads a base checkpoint (``bert.`` / ``transformer.`` prefix added) and a
  base model loads a head checkpoint (prefix stripped, head weights unused);
- legacy buffers (BERT's ``position_ids``, GPT-2's ``attn.bias``) and tied copies of the
  input embeddings (``lm_head.weight``, T5's ``embed_tokens``) are not loaded;
- a head that the checkpoint lacks (a new classifier) keeps its fresh initialisation, with
  a warning; any other missing weight, or a shape that differs, is an error.

``save_pretrained`` writes ``config.json`` and ``model.safetensors`` (each atomically) with
exactly the keys ``transformers`` writes, so its ``from_pretrained`` loads the folder.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from tracer.models._config import PretrainedConfig
from tracer.models._files import CheckpointFormatError, read_weights, write_weights
from tracer.nn.module import Module


class PreTrainedModel(Module):
    """A module built from a config, with Hugging Face folder loading and saving.

    Subclasses set ``config_class``, ``base_model_prefix`` (the attribute holding the base
    model in head classes), ``prefixed`` (whether this class's keys carry that prefix),
    ``ignored_keys`` (regular expressions of checkpoint keys never loaded), ``tied_keys``
    (checkpoint alias -> the key it duplicates) and ``optional_keys`` (key prefixes that
    may be absent: freshly initialised heads). They build their modules, then call
    :meth:`post_init`.
    """

    config_class: ClassVar[type[PretrainedConfig]] = PretrainedConfig
    base_model_prefix: ClassVar[str] = ""
    prefixed: ClassVar[bool] = False
    ignored_keys: ClassVar[tuple[str, ...]] = ()
    tied_keys: ClassVar[dict[str, str]] = {}
    optional_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got "
                f"{type(config).__name__}"
            )
        self.config = config

    def post_init(self) -> None:
        """Initialise every weight as ``transformers`` does (``_init_weights`` per module)."""
        for module in self.modules():
            # A head's post_init comes after its base model's: initialise each module once.
            if not getattr(module, "_initialized", False):
                self._init_weights(module)
                module._initialized = True

    def _init_weights(self, module: Module) -> None:
        """Initialise one module's own parameters; the families override it."""

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str], **config_overrides: Any) -> Self:
        """The model stored in a Hugging Face folder, in eval mode (as ``transformers``).

        Args:
            folder: a folder with ``config.json`` and ``model.safetensors`` (or its shards).
            **config_overrides: config values that replace the file's (``num_labels=2``,
                ``hidden_dropout_prob=0.0``, ...).

        Raises:
            FileNotFoundError: no ``config.json`` or no weights.
            ConfigError: a config value of the wrong type or not supported.
            CheckpointFormatError: pickled weights only, weights the model does not have
                and cannot initialise, or shapes that differ from the config's.
        """
        config = cls.config_class.from_pretrained(folder, **config_overrides)
        arrays = cls._rename(read_weights(folder))
        config = cls._adapt_config(config, arrays)
        model = cls(config)
        model._load_arrays(arrays, os.fspath(folder))
        model.eval()
        return model

    @classmethod
    def _adapt_config(cls, config: PretrainedConfig, arrays: dict[str, np.ndarray]) -> Any:
        """A hook to settle config choices the checkpoint decides (an untied output head)."""
        return config

    @classmethod
    def _rename(cls, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Checkpoint keys with the base-model prefix added or stripped to fit this class."""
        prefix = cls.base_model_prefix + "."
        if not cls.base_model_prefix:
            return arrays
        has_prefix = any(k.startswith(prefix) for k in arrays)
        if cls.prefixed and not has_prefix:
            return {prefix + k: v for k, v in arrays.items()}
        if not cls.prefixed and has_prefix:
            return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        return arrays

    def _load_arrays(self, arrays: dict[str, np.ndarray], source: str) -> None:
        own = self.state_dict()
        arrays = {k: v for k, v in arrays.items() if not self._ignored(k)}
        for alias in self.tied_keys:
            if alias in arrays and alias not in own:
                del arrays[alias]
        missing = [k for k in own if k not in arrays]
        required = [k for k in missing if not k.startswith(self.optional_keys)]
        if required:
            raise CheckpointFormatError(
                f"{source!r} lacks weights that {type(self).__name__} needs: "
                f"{_listing(required)}; is it a checkpoint of this model type?"
            )
        wrong = [
            f"{k}: checkpoint {list(arrays[k].shape)}, model {list(own[k].shape)}"
            for k in own
            if k in arrays and tuple(arrays[k].shape) != tuple(own[k].shape)
        ]
        if wrong:
            raise CheckpointFormatError(
                f"{source!r} has weights whose shapes differ from the config's: {'; '.join(wrong)}"
            )
        unused = [k for k in arrays if k not in own]
        if unused:
            warnings.warn(
                f"{type(self).__name__}: weights in {source!r} that the model does not use: "
                f"{_listing(unused)}",
                stacklevel=3,
            )
        if missing:
            warnings.warn(
                f"{type(self).__name__}: {_listing(missing)} not in {source!r} and newly "
                "initialised; train the model before using its predictions",
                stacklevel=3,
            )
        self.load_state_dict({k: arrays[k] for k in own if k in arrays}, strict=False)

    def _ignored(self, key: str) -> bool:
        return any(re.search(pattern, key) for pattern in self.ignored_keys)

    # ------------------------------------------------------------------ saving

    def save_pretrained(self, folder: str | os.PathLike[str]) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created if needed).

        The weights' keys are ``transformers``' (tied copies left out, as it writes them);
        both files are written atomically.
        """
        Path(folder).mkdir(parents=True, exist_ok=True)
        tensors = {k: v.numpy() for k, v in self.state_dict().items()}
        write_weights(folder, tensors)
        self.config.extra["architectures"] = [type(self).__name__]
        self.config.save_pretrained(folder)


def _listing(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
