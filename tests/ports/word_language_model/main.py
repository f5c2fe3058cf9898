"""Port of pytorch/examples ``word_language_model/main.py``: train an RNN or Transformer LM.

Source: pytorch/examples, word_language_model/main.py,
commit 77f55b912142e11fcfdf5b530231fb9c52f181e8.

A rewrite in our own words that keeps the script's PyTorch API usage: ``torch.manual_seed``,
the ``torch.accelerator`` / ``torch.device("cpu")`` choice, ``narrow`` / ``view`` / ``t`` /
``contiguous`` / ``.to(device)`` batching, ``nn.NLLLoss``, optional ``torch.optim.AdamW``,
hidden states detached between batches, ``model.zero_grad()``,
``torch.nn.utils.clip_grad_norm_``, the manual update ``p.data.add_(p.grad, alpha=-lr)``,
``torch.no_grad()`` evaluation, ``rnn.flatten_parameters()`` and an optional
``torch.onnx.export(model, (dummy_input, hidden), path)``. One change beyond sizes: the
script checkpoints the whole module (``torch.save(model, f)``, a pickle) and reloads it
under ``torch.serialization.safe_globals``; graphcap refuses to pickle modules, so this port
checkpoints ``model.state_dict()`` through the same file objects and reloads it with
``model.load_state_dict(torch.load(f))``. WikiText-2 is replaced by ``data/wikitext-tiny``;
sizes are cut (width 16, bptt 8, 2 epochs).
"""

import argparse
import math
import os
import tempfile
import time

from tests.ports import _same as same
from tests.ports._switch import backend
from tests.ports.word_language_model import data
from tests.ports.word_language_model.model import RNNModel, TransformerModel

if backend() == "torch":
    import torch
    import torch.nn as nn
    import torch.onnx
else:
    import tracer as torch
    import tracer.nn as nn
    import tracer.onnx

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "wikitext-tiny")

parser = argparse.ArgumentParser(description="Word-level language model (RNN or Transformer)")
parser.add_argument("--data", type=str, default=DATA, help="location of the data corpus")
parser.add_argument(
    "--model", type=str, default="LSTM", help="RNN_TANH, RNN_RELU, LSTM, GRU or Transformer"
)
parser.add_argument("--emsize", type=int, default=16, help="size of word embeddings")
parser.add_argument("--nhid", type=int, default=16, help="hidden units per layer")
parser.add_argument("--nlayers", type=int, default=2, help="number of layers")
parser.add_argument("--lr", type=float, default=20, help="initial learning rate")
parser.add_argument("--clip", type=float, default=0.25, help="gradient clipping")
parser.add_argument("--epochs", type=int, default=2, help="upper epoch limit")
parser.add_argument("--batch_size", type=int, default=4, metavar="N", help="batch size")
parser.add_argument("--bptt", type=int, default=8, help="sequence length")
parser.add_argument("--dropout", type=float, default=0.2, help="dropout between layers")
parser.add_argument("--tied", action="store_true", help="tie the input and output embeddings")
parser.add_argument("--seed", type=int, default=1111, help="random seed")
parser.add_argument("--log-interval", type=int, default=10, metavar="N", help="report interval")
parser.add_argument(
    "--save",
    type=str,
    default=os.path.join(tempfile.mkdtemp(), "model.pt"),
    help="path to save the final model",
)
parser.add_argument("--onnx-export", type=str, default="", help="path of an ONNX export")
parser.add_argument("--nhead", type=int, default=2, help="heads of the transformer model")
parser.add_argument("--dry-run", action="store_true", help="verify the code and the model")
parser.add_argument("--accel", action="store_true", help="enables accelerated training")
parser.add_argument("--use-optimizer", action="store_true", help="use AdamW")
args = parser.parse_args()

torch.manual_seed(args.seed)
if args.accel and torch.accelerator.is_available():
    device = torch.accelerator.current_accelerator()
else:
    device = torch.device("cpu")
print("Using device:", device)

corpus = data.Corpus(args.data)


def batchify(data, bsz):
    """The sequence laid out as ``bsz`` columns; the remainder is trimmed off."""
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    data = data.view(bsz, -1).t().contiguous()
    return data.to(device)


eval_batch_size = 2
train_data = batchify(corpus.train, args.batch_size)
val_data = batchify(corpus.valid, eval_batch_size)
test_data = batchify(corpus.test, eval_batch_size)

ntokens = len(corpus.dictionary)
if args.model == "Transformer":
    model = TransformerModel(
        ntokens, args.emsize, args.nhead, args.nhid, args.nlayers, args.dropout
    ).to(device)
else:
    model = RNNModel(
        args.model, ntokens, args.emsize, args.nhid, args.nlayers, args.dropout, args.tied
    ).to(device)
same.weights(model)

criterion = nn.NLLLoss()
if args.use_optimizer:
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)


def repackage_hidden(h):
    """Hidden states cut from their history (tensors or tuples of them)."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def get_batch(source, i):
    """Rows ``i..i+seq_len`` as input and, flattened, the rows one step later as target."""
    seq_len = min(args.bptt, len(source) - 1 - i)
    data = source[i : i + seq_len]
    target = source[i + 1 : i + 1 + seq_len].view(-1)
    return data, target


def evaluate(data_source):
    model.eval()
    total_loss = 0.0
    ntokens = len(corpus.dictionary)
    if args.model != "Transformer":
        hidden = model.init_hidden(eval_batch_size)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, args.bptt):
            data, targets = get_batch(data_source, i)
            if args.model == "Transformer":
                output = model(data)
                output = output.view(-1, ntokens)
            else:
                output, hidden = model(data, hidden)
                hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


def train():
    model.train()
    total_loss = 0.0
    start_time = time.time()
    ntokens = len(corpus.dictionary)
    if args.model != "Transformer":
        hidden = model.init_hidden(args.batch_size)
    for batch, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
        data, targets = get_batch(train_data, i)
        if args.use_optimizer:
            optimizer.zero_grad()
        else:
            model.zero_grad()
        if args.model == "Transformer":
            output = model(data)
            output = output.view(-1, ntokens)
        else:
            # Detach, so backpropagation stops at this batch.
            hidden = repackage_hidden(hidden)
            output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        same.loss(loss)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        if args.use_optimizer:
            optimizer.step()
        else:
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
        same.step(model)
        total_loss += loss.item()
        if batch % args.log_interval == 0 and batch > 0:
            cur_loss = total_loss / args.log_interval
            elapsed = time.time() - start_time
            print(
                "| epoch {:3d} | {:5d}/{:5d} batches | lr {:02.2f} | ms/batch {:5.2f} | "
                "loss {:5.2f} | ppl {:8.2f}".format(
                    epoch,
                    batch,
                    len(train_data) // args.bptt,
                    lr,
                    elapsed * 1000 / args.log_interval,
                    cur_loss,
                    math.exp(cur_loss),
                )
            )
            total_loss = 0
            start_time = time.time()
        if args.dry_run:
            break


def export_onnx(path, batch_size, seq_len):
    print("The model is also exported in ONNX format at {}.".format(os.path.realpath(path)))
    model.eval()
    dummy_input = torch.LongTensor(seq_len * batch_size).zero_().view(-1, batch_size).to(device)
    hidden = model.init_hidden(batch_size)
    torch.onnx.export(model, (dummy_input, hidden), path)


lr = args.lr
best_val_loss = None
try:
    for epoch in range(1, args.epochs + 1):
        epoch_start_time = time.time()
        train()
        val_loss = evaluate(val_data)
        print(
            "| end of epoch {:3d} | time: {:5.2f}s | valid loss {:5.2f} | valid ppl {:8.2f}".format(
                epoch, (time.time() - epoch_start_time), val_loss, math.exp(val_loss)
            )
        )
        if not best_val_loss or val_loss < best_val_loss:
            with open(args.save, "wb") as f:
                torch.save(model.state_dict(), f)
            best_val_loss = val_loss
        else:
            lr /= 4.0  # no improvement on the validation data: anneal
except KeyboardInterrupt:
    print("Exiting from training early")

with open(args.save, "rb") as f:
    model.load_state_dict(torch.load(f))
    if args.model in ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"]:
        model.rnn.flatten_parameters()

test_loss = evaluate(test_data)
print(
    "| End of training | test loss {:5.2f} | test ppl {:8.2f}".format(
        test_loss, math.exp(test_loss)
    )
)
if len(args.onnx_export) > 0:
    export_onnx(args.onnx_export, batch_size=1, seq_len=args.bptt)
