"""``tracer.nn.utils``: gradient clipping and packed sequences (``torch.nn.utils``'s names)."""

from tracer.nn.utils import rnn
from tracer.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_", "rnn"]
