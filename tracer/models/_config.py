"""Model configurations read from, and written to, a Hugging Face ``config.json``.

A config is a dataclass whose fields and defaults are ``transformers``' for that model type.
``from_dict`` keeps the keys it does not know in ``extra`` (they are written back by
``save_pretrained``, so ``transformers`` reads the same config) and checks each known value's
type and each value this library cannot honour (another activation function, another
attention variant), raising :class:`ConfigError` with the key, the value and what is
supported.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

from ir.errors import GraphcapError
from tracer.models._files import atomic_write_text

CONFIG_NAME = "config.json"


class ConfigError(GraphcapError, ValueError):
    """A ``config.json`` value that is malformed or that this library does not support."""


def _check_type(cls_name: str, key: str, value: Any, default: Any) -> Any:
    """``value`` checked against the type of the field's default (ints widen to float)."""
    if default is None or value is None:
        return value
    ok: bool
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(
            f"{cls_name}: {key}={value!r} is of type {type(value).__name__}; expected "
            f"{type(default).__name__} (like the default {default!r})"
        )
    return value


@dataclasses.dataclass
class PretrainedConfig:
    """Fields every model type shares: special token ids, labels and weight tying.

    Attributes:
        pad_token_id: the padding token (also what finished rows get in generation).
        bos_token_id: the beginning-of-sequence token.
        eos_token_id: the end-of-sequence token, or a list of them.
        decoder_start_token_id: the first decoder token of an encoder-decoder model.
        tie_word_embeddings: whether the output projection shares the input embeddings.
        id2label: class index -> name; its length is ``num_labels``.
        problem_type: "single_label_classification", "multi_label_classification" or
            "regression"; ``None`` picks from the labels, as ``transformers`` does.
        extra: the keys of the file this class does not know, kept for writing back.
    """

    model_type: ClassVar[str] = ""
    is_encoder_decoder: ClassVar[bool] = False
    attribute_map: ClassVar[dict[str, str]] = {}

    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    decoder_start_token_id: int | None = None
    tie_word_embeddings: bool = True
    id2label: dict[int, str] = dataclasses.field(
        default_factory=lambda: {0: "LABEL_0", 1: "LABEL_1"}
    )
    problem_type: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check values that cannot be honoured; subclasses extend it.

        Raises:
            ConfigError: a value outside what the model supports.
        """
        problems = (None, "single_label_classification", "multi_label_classification")
        if self.problem_type not in (*problems, "regression"):
            raise ConfigError(
                f"{type(self).__name__}: problem_type={self.problem_type!r} is not one of "
                f"{[*problems, 'regression']}"
            )

    @property
    def num_labels(self) -> int:
        """How many classes a classification head predicts (``len(id2label)``)."""
        return len(self.id2label)

    def __getattr__(self, name: str) -> Any:
        # transformers' aliases (hidden_size -> n_embd for GPT-2), read-only.
        target = type(self).attribute_map.get(name)
        if target is None:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        return getattr(self, target)

    # ------------------------------------------------------------------ reading

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **overrides: Any) -> Self:
        """A config from a ``config.json`` mapping; ``overrides`` win over the file's values.

        ``num_labels=n`` (as ``transformers`` accepts) makes ``id2label`` ``LABEL_0..n-1``
        unless the labels already number ``n``.

        Raises:
            ConfigError: another ``model_type``, a value of the wrong type, or one the model
                does not support.
        """
        merged = {**data, **overrides}
        given_type = merged.get("model_type")
        if given_type is not None and cls.model_type and given_type != cls.model_type:
            raise ConfigError(
                f"config.json describes a {given_type!r} model, not {cls.model_type!r}; "
                f"use the {given_type} classes (or AutoModel) for it"
            )
        names = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in merged.items():
            name = cls.attribute_map.get(key, key)
            if name in names:
                kwargs[name] = value
            elif key not in ("model_type", "num_labels", "label2id"):
                extra[key] = value
        if "id2label" in kwargs:
            kwargs["id2label"] = _labels(kwargs["id2label"])
        n = merged.get("num_labels")
        if n is not None and len(kwargs.get("id2label", {0: 0, 1: 1})) != n:
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ConfigError(f"{cls.__name__}: num_labels={n!r} is not a positive int")
            kwargs["id2label"] = {i: f"LABEL_{i}" for i in range(n)}
        for name, value in list(kwargs.items()):
            f = names[name]
            default = f.default if f.default is not dataclasses.MISSING else None
            kwargs[name] = _check_type(cls.__name__, name, value, default)
        return cls(**kwargs, extra=extra)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike[str], **overrides: Any) -> Self:
        """A config from a ``config.json`` file.

        Raises:
            FileNotFoundError: no such file.
            ConfigError: the file is not a JSON object, or a value is unsupported.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{os.fspath(path)!r} is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{os.fspath(path)!r} holds a {type(data).__name__}, not an object")
        return cls.from_dict(data, **overrides)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str], **overrides: Any) -> Self:
        """The ``config.json`` of a model folder."""
        path = Path(folder) / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{os.fspath(folder)!r} has no {CONFIG_NAME}")
        return cls.from_json_file(path, **overrides)

    # ------------------------------------------------------------------ writing

    def to_dict(self) -> dict[str, Any]:
        """The config as ``transformers`` writes it: known fields, then the kept extras."""
        out: dict[str, Any] = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.name != "extra":
                out[f.name] = getattr(self, f.name)
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["label2id"] = {v: k for k, v in self.id2label.items()}
        out["model_type"] = self.model_type
        if self.is_encoder_decoder:
            out["is_encoder_decoder"] = True
        return dict(sorted(out.items()))

    def save_pretrained(self, folder: str | os.PathLike[str]) -> None:
        """Write ``config.json`` into ``folder`` (created if needed), atomically."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        atomic_write_text(Path(folder) / CONFIG_NAME, text)


def _labels(value: Any) -> dict[int, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"id2label must be an object of index -> name, got {value!r}")
    try:
        labels = {int(k): str(v) for k, v in value.items()}
    except ValueError:
        raise ConfigError(f"id2label keys must be integers, got {list(value)}") from None
    if sorted(labels) != list(range(len(labels))):
        raise ConfigError(f"id2label keys must be 0..n-1, got {sorted(labels)}")
    return labels


def check_choice(config: PretrainedConfig, key: str, allowed: tuple[Any, ...]) -> None:
    """Raise :class:`ConfigError` unless ``config.key`` is one of ``allowed``."""
    value = getattr(config, key)
    if value not in allowed:
        raise ConfigError(
            f"{type(config).__name__}: {key}={value!r} is not supported; supported: "
            f"{', '.join(map(repr, allowed))}"
        )
