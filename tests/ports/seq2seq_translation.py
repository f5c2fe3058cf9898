"""Port of "NLP From Scratch: Translation with a Sequence to Sequence Network and Attention".

Source: pytorch/tutorials, intermediate_source/seq2seq_translation_tutorial.py,
commit 803c1b1273a47bc53bb6cd5f63eecfb897bbc856.

A rewrite in our own words that keeps the script's PyTorch API usage: ``torch.device`` chosen
with ``torch.cuda.is_available()``, a GRU encoder and an attention decoder (``nn.Embedding``,
``nn.GRU``, ``nn.Dropout``, ``F.softmax``, ``torch.bmm``, ``F.relu``, ``F.log_softmax``),
``torch.zeros(..., device=device)`` and ``torch.tensor(..., device=device)``, encoder
outputs written row by row (``encoder_outputs[ei] = ...``), teacher forcing decided with
``random.random()``, ``topk`` / ``squeeze`` / ``detach`` / ``item``, a loss summed into a
Python ``0``, two ``optim.SGD`` optimizers, ``nn.NLLLoss``, modules moved with
``.to(device)``, and evaluation under ``torch.no_grad()``. The data (a download) are twenty
sentence pairs in ``data/eng-fra.txt``; hidden size 16 and 20 iterations instead of 256 and
75000; the plots are left out.
"""

import math
import os
import random
import re
import time
import unicodedata
from io import open

from tests.ports import _same as same
from tests.ports._switch import backend

if backend() == "torch":
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch import optim
else:
    import tracer as torch
    import tracer.nn as nn
    import tracer.nn.functional as F
    from tracer import optim

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
DATA = os.path.join(os.path.dirname(__file__), "data", "%s-%s.txt")

SOS_token = 0
EOS_token = 1


class Lang:
    """Word <-> index tables of one language, with word counts."""

    def __init__(self, name):
        self.name = name
        self.word2index = {}
        self.word2count = {}
        self.index2word = {0: "SOS", 1: "EOS"}
        self.n_words = 2

    def addSentence(self, sentence):
        for word in sentence.split(" "):
            self.addWord(word)

    def addWord(self, word):
        if word in self.word2index:
            self.word2count[word] += 1
            return
        self.word2index[word] = self.n_words
        self.word2count[word] = 1
        self.index2word[self.n_words] = word
        self.n_words += 1


def to_ascii(s):
    return "".join(c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn")


def normalize(s):
    """Lower case, ASCII letters and sentence punctuation only, punctuation split off."""
    s = to_ascii(s.lower().strip())
    s = re.sub(r"([.!?])", r" \1", s)
    return re.sub(r"[^a-zA-Z.!?]+", r" ", s)


def read_langs(lang1, lang2, reverse=False):
    with open(DATA % (lang1, lang2), encoding="utf-8") as f:
        lines = f.read().strip().split("\n")
    pairs = [[normalize(s) for s in line.split("\t")] for line in lines]
    if reverse:
        pairs = [list(reversed(p)) for p in pairs]
        return Lang(lang2), Lang(lang1), pairs
    return Lang(lang1), Lang(lang2), pairs


MAX_LENGTH = 10
eng_prefixes = (
    "i am ",
    "i m ",
    "he is",
    "he s ",
    "she is",
    "she s",
    "you are",
    "you re ",
    "we are",
    "we re ",
    "they are",
    "they re ",
)


def keep_pair(p):
    return (
        len(p[0].split(" ")) < MAX_LENGTH
        and len(p[1].split(" ")) < MAX_LENGTH
        and p[1].startswith(eng_prefixes)
    )


def prepare_data(lang1, lang2, reverse=False):
    input_lang, output_lang, pairs = read_langs(lang1, lang2, reverse)
    pairs = [pair for pair in pairs if keep_pair(pair)]
    for pair in pairs:
        input_lang.addSentence(pair[0])
        output_lang.addSentence(pair[1])
    print(
        "Counted words:", input_lang.name, input_lang.n_words, output_lang.name, output_lang.n_words
    )
    return input_lang, output_lang, pairs


input_lang, output_lang, pairs = prepare_data("eng", "fra", True)
print(random.choice(pairs))


class EncoderRNN(nn.Module):
    def __init__(self, input_size, hidden_size):
        super(EncoderRNN, self).__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size)

    def forward(self, input, hidden):
        output = self.embedding(input).view(1, 1, -1)
        output, hidden = self.gru(output, hidden)
        return output, hidden

    def initHidden(self):
        return torch.zeros(1, 1, self.hidden_size, device=device)


class DecoderRNN(nn.Module):
    """The decoder without attention (defined by the tutorial, not trained by it)."""

    def __init__(self, hidden_size, output_size):
        super(DecoderRNN, self).__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input, hidden):
        output = F.relu(self.embedding(input).view(1, 1, -1))
        output, hidden = self.gru(output, hidden)
        return self.softmax(self.out(output[0])), hidden

    def initHidden(self):
        return torch.zeros(1, 1, self.hidden_size, device=device)


class AttnDecoderRNN(nn.Module):
    """A GRU decoder that attends over the (padded) encoder outputs at every step."""

    def __init__(self, hidden_size, output_size, dropout_p=0.1, max_length=MAX_LENGTH):
        super(AttnDecoderRNN, self).__init__()
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.dropout_p = dropout_p
        self.max_length = max_length
        self.embedding = nn.Embedding(self.output_size, self.hidden_size)
        self.attn = nn.Linear(self.hidden_size * 2, self.max_length)
        self.attn_combine = nn.Linear(self.hidden_size * 2, self.hidden_size)
        self.dropout = nn.Dropout(self.dropout_p)
        self.gru = nn.GRU(self.hidden_size, self.hidden_size)
        self.out = nn.Linear(self.hidden_size, self.output_size)

    def forward(self, input, hidden, encoder_outputs):
        embedded = self.dropout(self.embedding(input).view(1, 1, -1))
        attn_weights = F.softmax(self.attn(torch.cat((embedded[0], hidden[0]), 1)), dim=1)
        attn_applied = torch.bmm(attn_weights.unsqueeze(0), encoder_outputs.unsqueeze(0))
        output = torch.cat((embedded[0], attn_applied[0]), 1)
        output = F.relu(self.attn_combine(output).unsqueeze(0))
        output, hidden = self.gru(output, hidden)
        output = F.log_softmax(self.out(output[0]), dim=1)
        return output, hidden, attn_weights

    def initHidden(self):
        return torch.zeros(1, 1, self.hidden_size, device=device)


def tensor_from_sentence(lang, sentence):
    indexes = [lang.word2index[word] for word in sentence.split(" ")]
    indexes.append(EOS_token)
    return torch.tensor(indexes, dtype=torch.long, device=device).view(-1, 1)


def tensors_from_pair(pair):
    return tensor_from_sentence(input_lang, pair[0]), tensor_from_sentence(output_lang, pair[1])


teacher_forcing_ratio = 0.5


def train(
    input_tensor,
    target_tensor,
    encoder,
    decoder,
    encoder_optimizer,
    decoder_optimizer,
    criterion,
    max_length=MAX_LENGTH,
):
    encoder_hidden = encoder.initHidden()
    encoder_optimizer.zero_grad()
    decoder_optimizer.zero_grad()
    input_length = input_tensor.size(0)
    target_length = target_tensor.size(0)
    encoder_outputs = torch.zeros(max_length, encoder.hidden_size, device=device)
    loss = 0
    for ei in range(input_length):
        encoder_output, encoder_hidden = encoder(input_tensor[ei], encoder_hidden)
        encoder_outputs[ei] = encoder_output[0, 0]

    decoder_input = torch.tensor([[SOS_token]], device=device)
    decoder_hidden = encoder_hidden
    if random.random() < teacher_forcing_ratio:
        # Teacher forcing: the next input is the true next word.
        for di in range(target_length):
            decoder_output, decoder_hidden, _ = decoder(
                decoder_input, decoder_hidden, encoder_outputs
            )
            loss += criterion(decoder_output, target_tensor[di])
            decoder_input = target_tensor[di]
    else:
        # Free running: the next input is the decoder's own best guess.
        for di in range(target_length):
            decoder_output, decoder_hidden, _ = decoder(
                decoder_input, decoder_hidden, encoder_outputs
            )
            topv, topi = decoder_output.topk(1)
            decoder_input = topi.squeeze().detach()
            loss += criterion(decoder_output, target_tensor[di])
            if decoder_input.item() == EOS_token:
                break
    same.loss(loss)
    loss.backward()
    encoder_optimizer.step()
    decoder_optimizer.step()
    same.step(encoder, "encoder after one step")
    same.step(decoder, "decoder after one step")
    return loss.item() / target_length


def as_minutes(s):
    m = math.floor(s / 60)
    return "%dm %ds" % (m, s - m * 60)


def train_iters(encoder, decoder, n_iters, print_every=1000, learning_rate=0.01):
    start = time.time()
    print_loss_total = 0
    encoder_optimizer = optim.SGD(encoder.parameters(), lr=learning_rate)
    decoder_optimizer = optim.SGD(decoder.parameters(), lr=learning_rate)
    training_pairs = [tensors_from_pair(random.choice(pairs)) for i in range(n_iters)]
    criterion = nn.NLLLoss()
    for iteration in range(1, n_iters + 1):
        input_tensor, target_tensor = training_pairs[iteration - 1]
        loss = train(
            input_tensor,
            target_tensor,
            encoder,
            decoder,
            encoder_optimizer,
            decoder_optimizer,
            criterion,
        )
        print_loss_total += loss
        if iteration % print_every == 0:
            elapsed = as_minutes(time.time() - start)
            print("%s (%d) %.4f" % (elapsed, iteration, print_loss_total / print_every))
            print_loss_total = 0


def evaluate(encoder, decoder, sentence, max_length=MAX_LENGTH):
    with torch.no_grad():
        input_tensor = tensor_from_sentence(input_lang, sentence)
        input_length = input_tensor.size()[0]
        encoder_hidden = encoder.initHidden()
        encoder_outputs = torch.zeros(max_length, encoder.hidden_size, device=device)
        for ei in range(input_length):
            encoder_output, encoder_hidden = encoder(input_tensor[ei], encoder_hidden)
            encoder_outputs[ei] += encoder_output[0, 0]
        decoder_input = torch.tensor([[SOS_token]], device=device)
        decoder_hidden = encoder_hidden
        decoded_words = []
        decoder_attentions = torch.zeros(max_length, max_length)
        for di in range(max_length):
            decoder_output, decoder_hidden, decoder_attention = decoder(
                decoder_input, decoder_hidden, encoder_outputs
            )
            decoder_attentions[di] = decoder_attention.data
            topv, topi = decoder_output.data.topk(1)
            if topi.item() == EOS_token:
                decoded_words.append("<EOS>")
                break
            decoded_words.append(output_lang.index2word[topi.item()])
            decoder_input = topi.squeeze().detach()
        return decoded_words, decoder_attentions[: di + 1]


def evaluate_randomly(encoder, decoder, n=3):
    for _ in range(n):
        pair = random.choice(pairs)
        output_words, _ = evaluate(encoder, decoder, pair[0])
        print(">", pair[0], "\n=", pair[1], "\n<", " ".join(output_words), "\n")


hidden_size = 16
encoder1 = EncoderRNN(input_lang.n_words, hidden_size).to(device)
attn_decoder1 = AttnDecoderRNN(hidden_size, output_lang.n_words, dropout_p=0.1).to(device)
same.weights(encoder1)
same.weights(attn_decoder1)
train_iters(encoder1, attn_decoder1, 20, print_every=10)
evaluate_randomly(encoder1, attn_decoder1)
output_words, attentions = evaluate(encoder1, attn_decoder1, "je suis trop froid .")
print(output_words, attentions.numpy().shape)
