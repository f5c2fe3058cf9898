"""Packed sequences, as ``torch.nn.utils.rnn``.

A :class:`PackedSequence` holds the valid steps of a batch of sequences, time step by time
step (``data`` ``[sum(lengths), *]``), with ``batch_sizes[t]`` sequences still running at
step ``t``; sequences are stored longest first, and ``sorted_indices``/``unsorted_indices``
map between that order and the caller's (None when the input was already sorted). Packing
and unpacking are ``Gather`` ops with index arrays computed from the lengths, so gradients
flow through both. ``nn.RNN``/``LSTM``/``GRU`` accept a ``PackedSequence`` and run it as a
padded batch with per-sequence lengths (ONNX ``sequence_lens``), returning a
``PackedSequence`` of the same layout, as PyTorch does.

The lengths decide the packing in Python, so while tracing they must be known: lengths
computed from the traced inputs raise ``TraceError``. A graph whose lengths are an input
passes them to the recurrent layer's ``lengths`` argument instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from tracer import _functions
from tracer.tensor import Tensor, tensor

__all__ = [
    "PackedSequence",
    "invert_permutation",
    "pack_padded_sequence",
    "pack_sequence",
    "pad_packed_sequence",
    "pad_sequence",
    "unpack_sequence",
    "unpad_sequence",
]


class PackedSequence(NamedTuple):
    """The valid steps of a batch of sequences; build it with :func:`pack_padded_sequence`.

    Attributes:
        data: ``[sum(lengths), *]``, step 0 of every sequence, then step 1, ...
        batch_sizes: int64 ``[max_length]``, how many sequences are running at each step.
        sorted_indices: int64 ``[batch]``, the caller's index of each stored sequence, or
            None when the input was already sorted by decreasing length.
        unsorted_indices: the inverse permutation of ``sorted_indices``.
    """

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None

    def to(self, *args: Any, **kwargs: Any) -> PackedSequence:
        """``data`` converted with ``Tensor.to``; the index tensors stay as they are."""
        return self._replace(data=self.data.to(*args, **kwargs))

    def cpu(self) -> PackedSequence:
        """Itself: eager tensors live on the CPU."""
        return self

    def float(self) -> PackedSequence:
        """``data`` as float32."""
        return self._replace(data=self.data.float())

    def double(self) -> PackedSequence:
        """``data`` as float64."""
        return self._replace(data=self.data.double())

    @property
    def is_cuda(self) -> bool:
        """False: eager tensors live on the CPU."""
        return False


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of an int64 permutation (None stays None)."""
    if permutation is None:
        return None
    p = np.asarray(permutation.tolist(), np.int64)
    inverse = np.empty_like(p)
    inverse[p] = np.arange(p.size, dtype=p.dtype)
    return tensor(inverse)


def _lengths(lengths: Any, batch: int) -> np.ndarray:
    # tolist(): while tracing, lengths computed from the inputs raise instead of being baked.
    data = np.asarray(lengths.tolist() if isinstance(lengths, Tensor) else lengths, np.int64)
    data = data.reshape(-1)
    if data.size != batch:
        raise RuntimeError(
            f"Expected `len(lengths)` to be equal to batch_size, but got {data.size} "
            f"(batch_size={batch})"
        )
    if data.size and data.min() <= 0:
        raise RuntimeError(
            "Length of all samples has to be greater than 0, but found an element in "
            "'lengths' that is <= 0"
        )
    return data


def _pack_index(batch_sizes: np.ndarray, batch: int) -> np.ndarray:
    """Rows of a ``[T * batch, *]`` time-major tensor that hold the packed steps, in order."""
    return np.concatenate(
        [t * batch + np.arange(n, dtype=np.int64) for t, n in enumerate(batch_sizes)]
    )


def _pack_sorted(x: Tensor, batch_sizes: np.ndarray) -> Tensor:
    """Pack ``x`` (time-major, batch already sorted) with the given ``batch_sizes``."""
    steps, batch = int(x.shape[0]), int(x.shape[1])
    flat = x.reshape(steps * batch, *x.shape[2:])
    return flat.index_select(0, tensor(_pack_index(batch_sizes, batch)))


def pack_padded_sequence(
    input: Tensor,
    lengths: Tensor | Sequence[int],
    batch_first: bool = False,
    enforce_sorted: bool = True,
) -> PackedSequence:
    """Pack a padded batch ``[T, B, *]`` (``[B, T, *]`` if ``batch_first``) of ``lengths``.

    Args:
        input: the padded batch.
        lengths: each sequence's length (a list or a 1-D tensor).
        batch_first: ``input`` is ``[B, T, *]``.
        enforce_sorted: require ``lengths`` sorted in decreasing order; with False the
            batch is sorted here and the permutation kept in the result.

    Raises:
        RuntimeError: lengths that do not match the batch, are not positive, exceed the
            time dim, or are unsorted while ``enforce_sorted``.
    """
    x = input.transpose(0, 1) if batch_first else input
    steps, batch = int(x.shape[0]), int(x.shape[1])
    lens = _lengths(lengths, batch)
    if lens.size and lens.max() > steps:
        raise RuntimeError(
            f"Length of a sample ({lens.max()}) is greater than the sequence length ({steps})"
        )
    sorted_indices = None
    if enforce_sorted:
        if (lens[1:] > lens[:-1]).any():
            raise RuntimeError(
                "`lengths` array must be sorted in decreasing order when `enforce_sorted` is "
                "True. You can pass `enforce_sorted=False` to pack_padded_sequence and/or "
                "pack_sequence to sidestep this requirement."
            )
    else:
        order = np.argsort(-lens, kind="stable")
        sorted_indices = tensor(order.astype(np.int64))
        lens = lens[order]
        x = x.index_select(1, sorted_indices)
    batch_sizes = (lens[None, :] > np.arange(int(lens.max(initial=0)))[:, None]).sum(1)
    data = _pack_sorted(x, batch_sizes)
    return PackedSequence(
        data, tensor(batch_sizes.astype(np.int64)), sorted_indices,
        invert_permutation(sorted_indices),
    )  # fmt: skip


def _sorted_lengths(batch_sizes: np.ndarray) -> np.ndarray:
    batch = int(batch_sizes[0]) if batch_sizes.size else 0
    return (batch_sizes[None, :] > np.arange(batch)[:, None]).sum(1).astype(np.int64)


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Undo :func:`pack_padded_sequence`: the padded batch and each sequence's length.

    Returns:
        ``(padded, lengths)``: ``padded`` is ``[T, B, *]`` (``[B, T, *]`` if
        ``batch_first``) with ``T`` the longest length (or ``total_length``) and
        ``padding_value`` past each length, in the caller's batch order; ``lengths`` is
        int64 ``[B]``.

    Raises:
        ValueError: ``total_length`` shorter than the longest sequence.
    """
    data, sizes = sequence.data, np.asarray(sequence.batch_sizes.tolist(), np.int64)
    steps = int(sizes.size)
    if total_length is not None:
        if total_length < steps:
            raise ValueError(
                "Expected total_length to be at least the length of the longest sequence in "
                f"input, but got total_length={total_length} and max sequence length being "
                f"{steps}"
            )
        steps = int(total_length)
    lens = _sorted_lengths(sizes)
    batch = int(lens.size)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    pad_row = int(data.shape[0])
    index = np.full((steps, batch), pad_row, np.int64)
    for t, (start, n) in enumerate(zip(starts, sizes, strict=True)):
        index[t, :n] = start + np.arange(n)
    filler = data.new_full((1, *data.shape[1:]), padding_value)
    rows = _functions.cat([data, filler]).index_select(0, tensor(index.reshape(-1)))
    padded = rows.reshape(steps, batch, *data.shape[1:])
    if sequence.unsorted_indices is not None:
        padded = padded.index_select(1, sequence.unsorted_indices)
        lens = lens[np.asarray(sequence.unsorted_indices.tolist(), np.int64)]
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, tensor(lens)


def repack(padded: Tensor, like: PackedSequence) -> PackedSequence:
    """Pack time-major ``padded`` (caller's batch order) with ``like``'s layout."""
    x = padded if like.sorted_indices is None else padded.index_select(1, like.sorted_indices)
    sizes = np.asarray(like.batch_sizes.tolist(), np.int64)
    data = _pack_sorted(x[: sizes.size], sizes)
    return like._replace(data=data)


def pad_sequence(
    sequences: Sequence[Tensor],
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> Tensor:
    """Stack sequences ``[L_i, *]`` into ``[max L, B, *]`` (``[B, max L, *]`` if ``batch_first``).

    Shorter sequences are padded with ``padding_value`` on ``padding_side`` ("right" or
    "left").

    Raises:
        RuntimeError: an empty list, or trailing dims that differ.
        ValueError: an unknown ``padding_side``.
    """
    if padding_side not in ("right", "left"):
        raise ValueError(
            f"Expected padding_side to be one of left or right, but got {padding_side}."
        )
    items = list(sequences)
    if not items:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    trailing = tuple(items[0].shape[1:])
    for s in items:
        if tuple(s.shape[1:]) != trailing:
            raise RuntimeError(
                f"pad_sequence: the sequences' trailing dims must match, got {list(trailing)} "
                f"and {list(s.shape[1:])}"
            )
    longest = max(int(s.shape[0]) for s in items)
    padded = []
    for s in items:
        extra = longest - int(s.shape[0])
        if extra:
            filler = s.new_full((extra, *trailing), padding_value)
            parts = [s, filler] if padding_side == "right" else [filler, s]
            s = _functions.cat(parts)
        padded.append(s)
    return _functions.stack(padded, 0 if batch_first else 1)


def unpad_sequence(
    padded_sequences: Tensor, lengths: Tensor | Sequence[int], batch_first: bool = False
) -> list[Tensor]:
    """Split a padded batch back into its sequences, each ``[length, *]``."""
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    lens = lengths.tolist() if isinstance(lengths, Tensor) else list(lengths)
    return [x[i, : int(n)] for i, n in enumerate(lens)]


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences ``[L_i, *]``; see :func:`pack_padded_sequence`."""
    lengths = [int(s.shape[0]) for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The list of sequences a :class:`PackedSequence` holds, in the caller's order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
