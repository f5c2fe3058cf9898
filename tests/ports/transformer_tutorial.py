"""Port of "Language Modeling with nn.Transformer and torchtext".

Source: pytorch/tutorials, beginner_source/transformer_tutorial.py,
commit 00109f5abe4d664833ae7cde8b694b41356adb2b.

A rewrite in our own words that keeps the script's PyTorch API usage: ``from torch import nn,
Tensor``, ``nn.TransformerEncoderLayer(d_model, nhead, d_hid, dropout)`` stacked by
``nn.TransformerEncoder``, a sinusoidal ``PositionalEncoding`` built with ``torch.arange``,
``torch.exp``, strided slice assignment and ``register_buffer``, ``nn.Embedding`` and
``nn.Linear`` initialised through ``.data.uniform_`` / ``.data.zero_``; batches made with
``view(...).t().contiguous()`` and ``.to(device)``; ``nn.CrossEntropyLoss``,
``torch.optim.SGD``, ``StepLR(optimizer, 1.0, gamma=0.95)`` with ``get_last_lr()``,
``torch.nn.utils.clip_grad_norm_``, ``torch.no_grad()``, and the best weights kept with
``torch.save(model.state_dict(), path)`` / ``model.load_state_dict(torch.load(path))`` in
a ``TemporaryDirectory``. WikiText-2 and torchtext are replaced by ``_text``'s generated
lines and stand-ins; the model is cut to width 16, bptt 8, 2 epochs.
"""

import math
import os
import time
from tempfile import TemporaryDirectory

from tests.ports import _same as same
from tests.ports import _text as text_data
from tests.ports._switch import backend

if backend() == "torch":
    import torch
    from torch import Tensor, nn
    from torch.nn import TransformerEncoder, TransformerEncoderLayer
    from torch.utils.data import dataset
else:
    import tracer as torch
    from tracer import Tensor, nn
    from tracer.nn import TransformerEncoder, TransformerEncoderLayer
    from tracer.utils.data import dataset


class TransformerModel(nn.Module):
    """Embedding, positions, a stack of encoder layers and a projection onto the vocabulary."""

    def __init__(
        self, ntoken: int, d_model: int, nhead: int, d_hid: int, nlayers: int, dropout: float = 0.5
    ):
        super().__init__()
        self.model_type = "Transformer"
        self.pos_encoder = PositionalEncoding(d_model, dropout)
        encoder_layers = TransformerEncoderLayer(d_model, nhead, d_hid, dropout)
        self.transformer_encoder = TransformerEncoder(encoder_layers, nlayers)
        self.embedding = nn.Embedding(ntoken, d_model)
        self.d_model = d_model
        self.linear = nn.Linear(d_model, ntoken)
        self.init_weights()

    def init_weights(self) -> None:
        initrange = 0.1
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.linear.bias.data.zero_()
        self.linear.weight.data.uniform_(-initrange, initrange)

    def forward(self, src: Tensor, src_mask: Tensor = None) -> Tensor:
        """``[seq_len, batch]`` token ids to ``[seq_len, batch, ntoken]`` scores."""
        src = self.embedding(src) * math.sqrt(self.d_model)
        src = self.pos_encoder(src)
        output = self.transformer_encoder(src, src_mask)
        return self.linear(output)


class PositionalEncoding(nn.Module):
    """Adds sines and cosines of the position at geometrically spaced frequencies."""

    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 5000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.pe[: x.size(0)]
        return self.dropout(x)


tokenizer = text_data.tokenizer
vocab = text_data.build_vocab_from_iterator(map(tokenizer, text_data.wiki_lines(60, 0)), ["<unk>"])
vocab.set_default_index(vocab["<unk>"])


def data_process(raw_text_iter: dataset.IterableDataset) -> Tensor:
    """Raw lines to one flat tensor of token ids (empty lines dropped)."""
    data = [torch.tensor(vocab(tokenizer(item)), dtype=torch.long) for item in raw_text_iter]
    return torch.cat(tuple(filter(lambda t: t.numel() > 0, data)))


train_data = data_process(text_data.wiki_lines(60, 0))
val_data = data_process(text_data.wiki_lines(15, 1))
test_data = data_process(text_data.wiki_lines(15, 2))

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def batchify(data: Tensor, bsz: int) -> Tensor:
    """``[N]`` to ``[N // bsz, bsz]``: ``bsz`` columns, the remainder dropped."""
    seq_len = data.size(0) // bsz
    data = data[: seq_len * bsz]
    data = data.view(bsz, seq_len).t().contiguous()
    return data.to(device)


batch_size = 4
eval_batch_size = 2
train_data = batchify(train_data, batch_size)
val_data = batchify(val_data, eval_batch_size)
test_data = batchify(test_data, eval_batch_size)

bptt = 8


def get_batch(source: Tensor, i: int) -> tuple[Tensor, Tensor]:
    """Input rows ``i..i+seq_len`` and, flattened, the rows one step later as targets."""
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i : i + seq_len]
    target = source[i + 1 : i + 1 + seq_len].reshape(-1)
    return data, target


ntokens = len(vocab)
emsize = 16
d_hid = 16
nlayers = 2
nhead = 2
dropout = 0.2
model = TransformerModel(ntokens, emsize, nhead, d_hid, nlayers, dropout).to(device)
same.weights(model)

criterion = nn.CrossEntropyLoss()
lr = 5.0
optimizer = torch.optim.SGD(model.parameters(), lr=lr)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1.0, gamma=0.95)


def train(model: nn.Module) -> None:
    model.train()
    total_loss = 0.0
    log_interval = 10
    start_time = time.time()
    num_batches = len(train_data) // bptt
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        data, targets = get_batch(train_data, i)
        output = model(data)
        output_flat = output.view(-1, ntokens)
        loss = criterion(output_flat, targets)
        same.loss(loss)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        same.step(model)
        total_loss += loss.item()
        if batch % log_interval == 0 and batch > 0:
            lr = scheduler.get_last_lr()[0]
            ms_per_batch = (time.time() - start_time) * 1000 / log_interval
            cur_loss = total_loss / log_interval
            print(
                f"| epoch {epoch:3d} | {batch:5d}/{num_batches:5d} batches | lr {lr:02.2f} | "
                f"ms/batch {ms_per_batch:5.2f} | loss {cur_loss:5.2f} | "
                f"ppl {math.exp(cur_loss):8.2f}"
            )
            total_loss = 0
            start_time = time.time()


def evaluate(model: nn.Module, eval_data: Tensor) -> float:
    model.eval()
    total_loss = 0.0
    with torch.no_grad():
        for i in range(0, eval_data.size(0) - 1, bptt):
            data, targets = get_batch(eval_data, i)
            seq_len = data.size(0)
            output = model(data)
            output_flat = output.view(-1, ntokens)
            total_loss += seq_len * criterion(output_flat, targets).item()
    return total_loss / (len(eval_data) - 1)


best_val_loss = float("inf")
epochs = 2
with TemporaryDirectory() as tempdir:
    best_model_params_path = os.path.join(tempdir, "best_model_params.pt")
    for epoch in range(1, epochs + 1):
        epoch_start_time = time.time()
        train(model)
        val_loss = evaluate(model, val_data)
        elapsed = time.time() - epoch_start_time
        print(f"| end of epoch {epoch:3d} | time: {elapsed:5.2f}s | valid loss {val_loss:5.2f}")
        if val_loss < best_val_loss:
            best_val_loss = val_loss
            torch.save(model.state_dict(), best_model_params_path)
        scheduler.step()
    model.load_state_dict(torch.load(best_model_params_path))

test_loss = evaluate(model, test_data)
print(f"| End of training | test loss {test_loss:5.2f} | test ppl {math.exp(test_loss):8.2f}")
