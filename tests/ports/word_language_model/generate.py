"""Port of pytorch/examples ``word_language_model/generate.py``: sample text from the LM.

Source: pytorch/examples, word_language_model/generate.py,
commit 77f55b912142e11fcfdf5b530231fb9c52f181e8.

A rewrite in our own words that keeps the script's PyTorch API usage: ``torch.manual_seed``,
the device choice, ``model.eval()``, ``torch.randint(ntokens, (1, 1), dtype=torch.long)``,
sampling under ``torch.no_grad()`` with ``squeeze().div(temperature).exp().cpu()`` and
``torch.multinomial(word_weights, 1)[0]``, ``input.fill_(word_idx)`` for the RNN and
``torch.Tensor([[word_idx]]).long()`` + ``torch.cat`` for the Transformer, and a 0-d index
tensor used to index a Python list. One change beyond sizes: the script unpickles a whole
module (``torch.load(f)`` of ``torch.save(model, f)``); graphcap never unpickles, so this
port builds the model from its hyperparameters and, when ``--checkpoint`` names a file
written by the ``main`` port, loads its state dict from the file object.
"""

import argparse
import os
import tempfile

from tests.ports import _same as same
from tests.ports._switch import backend
from tests.ports.word_language_model import data
from tests.ports.word_language_model.model import RNNModel, TransformerModel

if backend() == "torch":
    import torch
else:
    import tracer as torch

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "wikitext-tiny")

parser = argparse.ArgumentParser(description="Sample from a word-level language model")
parser.add_argument("--data", type=str, default=DATA, help="location of the data corpus")
parser.add_argument(
    "--checkpoint", type=str, default="", help="state dict written by main (none: initial weights)"
)
parser.add_argument("--model", type=str, default="LSTM", help="the model main trained")
parser.add_argument("--emsize", type=int, default=16)
parser.add_argument("--nhid", type=int, default=16)
parser.add_argument("--nlayers", type=int, default=2)
parser.add_argument("--nhead", type=int, default=2)
parser.add_argument(
    "--outf",
    type=str,
    default=os.path.join(tempfile.mkdtemp(), "generated.txt"),
    help="output file for generated text",
)
parser.add_argument("--words", type=int, default="30", help="number of words to generate")
parser.add_argument("--seed", type=int, default=1111, help="random seed")
parser.add_argument("--temperature", type=float, default=1.0, help="higher: more diversity")
parser.add_argument("--log-interval", type=int, default=10, help="reporting interval")
parser.add_argument("--accel", action="store_true", default=False, help="use accelerator")
args = parser.parse_args()

torch.manual_seed(args.seed)
if args.accel and torch.accelerator.is_available():
    device = torch.accelerator.current_accelerator()
else:
    device = torch.device("cpu")
if args.temperature < 1e-3:
    parser.error("--temperature has to be greater or equal 1e-3.")

corpus = data.Corpus(args.data)
ntokens = len(corpus.dictionary)
if args.model == "Transformer":
    model = TransformerModel(ntokens, args.emsize, args.nhead, args.nhid, args.nlayers)
else:
    model = RNNModel(args.model, ntokens, args.emsize, args.nhid, args.nlayers)
if args.checkpoint:
    with open(args.checkpoint, "rb") as f:
        model.load_state_dict(torch.load(f, map_location=device))
model = model.to(device)
same.weights(model)
model.eval()

is_transformer_model = hasattr(model, "model_type") and model.model_type == "Transformer"
if not is_transformer_model:
    hidden = model.init_hidden(1)
input = torch.randint(ntokens, (1, 1), dtype=torch.long).to(device)

with open(args.outf, "w") as outf:
    with torch.no_grad():
        for i in range(args.words):
            if is_transformer_model:
                output = model(input, False)
                word_weights = output[-1].squeeze().div(args.temperature).exp().cpu()
                same.value("first word weights", word_weights)
                word_idx = torch.multinomial(word_weights, 1)[0]
                word_tensor = torch.Tensor([[word_idx]]).long().to(device)
                input = torch.cat([input, word_tensor], 0)
            else:
                output, hidden = model(input, hidden)
                word_weights = output.squeeze().div(args.temperature).exp().cpu()
                same.value("first word weights", word_weights)
                word_idx = torch.multinomial(word_weights, 1)[0]
                input.fill_(word_idx)
            word = corpus.dictionary.idx2word[word_idx]
            outf.write(word + ("\n" if i % 20 == 19 else " "))
            if i % args.log_interval == 0:
                print("| Generated {}/{} words".format(i, args.words))
