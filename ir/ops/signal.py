"""Signal and small linear-algebra ops.

DFT, STFT, window functions, MelWeightMatrix, Det, Unique, ReverseSequence.
"""

from __future__ import annotations
