"""``torch.nn.modules.rnn``'s path: recurrent layers and cells.

Defined in ``rnn.py`` and ``rnn_cell.py`` of ``tracer/nn``, re-exported here.
"""

from tracer.nn.rnn import GRU, LSTM, RNN, RNNBase
from tracer.nn.rnn_cell import GRUCell, LSTMCell, RNNCell, RNNCellBase

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCell", "RNNCellBase"]
