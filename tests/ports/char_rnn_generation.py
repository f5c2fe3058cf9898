"""Port of "Generating Names with a Character-Level RNN".

Source: pytorch/tutorials, intermediate_source/char_rnn_generation_tutorial.py,
commit 4ce8b871ef249dfacc1b389108842a0c2c0805b7.

A rewrite in our own words that keeps the script's PyTorch API usage: a conditional RNN
of ``nn.Linear`` layers over ``torch.cat``-ed one-hot inputs with ``nn.Dropout(0.1)`` and
``nn.LogSoftmax(dim=1)``, ``torch.LongTensor`` targets reshaped with ``unsqueeze_(-1)``,
per-step ``nn.NLLLoss`` summed into a Python ``0``, the legacy update overload
``p.data.add_(-learning_rate, p.grad.data)``, and sampling under ``torch.no_grad()`` with
``topk`` and a 0-d index tensor used to index a Python string. The names data (a download)
are replaced by a few names per language in ``data/names``; 40 iterations instead of 100000;
the plot is left out.
"""

import glob
import math
import os
import random
import string
import time
import unicodedata
from io import open

from tests.ports import _same as same
from tests.ports._switch import backend

if backend() == "torch":
    import torch
    import torch.nn as nn
else:
    import tracer as torch
    import tracer.nn as nn

all_letters = string.ascii_letters + " .,;'-"
n_letters = len(all_letters) + 1  # the last index is the end-of-name marker
DATA = os.path.join(os.path.dirname(__file__), "data", "names", "*.txt")


def to_ascii(s):
    """Drop accents and anything outside ``all_letters``."""
    return "".join(
        c
        for c in unicodedata.normalize("NFD", s)
        if unicodedata.category(c) != "Mn" and c in all_letters
    )


def read_lines(filename):
    with open(filename, encoding="utf-8") as f:
        return [to_ascii(line) for line in f.read().strip().split("\n")]


category_lines = {}
all_categories = []
for filename in glob.glob(DATA):
    category = os.path.splitext(os.path.basename(filename))[0]
    all_categories.append(category)
    category_lines[category] = read_lines(filename)
n_categories = len(all_categories)
if n_categories == 0:
    raise RuntimeError(f"no names found at {DATA}")
print("# categories:", n_categories, all_categories)


class RNN(nn.Module):
    """Next-letter log-probabilities from (category, current letter, hidden state)."""

    def __init__(self, input_size, hidden_size, output_size):
        super(RNN, self).__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(n_categories + input_size + hidden_size, hidden_size)
        self.i2o = nn.Linear(n_categories + input_size + hidden_size, output_size)
        self.o2o = nn.Linear(hidden_size + output_size, output_size)
        self.dropout = nn.Dropout(0.1)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, category, input, hidden):
        input_combined = torch.cat((category, input, hidden), 1)
        hidden = self.i2h(input_combined)
        output = self.i2o(input_combined)
        output = self.o2o(torch.cat((hidden, output), 1))
        output = self.softmax(self.dropout(output))
        return output, hidden

    def initHidden(self):
        return torch.zeros(1, self.hidden_size)


def random_choice(items):
    return items[random.randint(0, len(items) - 1)]


def random_training_pair():
    category = random_choice(all_categories)
    return category, random_choice(category_lines[category])


def category_tensor(category):
    tensor = torch.zeros(1, n_categories)
    tensor[0][all_categories.index(category)] = 1
    return tensor


def input_tensor(line):
    """One-hot letters of the line (without the end marker), line_length x 1 x n_letters."""
    tensor = torch.zeros(len(line), 1, n_letters)
    for li in range(len(line)):
        tensor[li][0][all_letters.find(line[li])] = 1
    return tensor


def target_tensor(line):
    """The letters from the second one on, then the end marker."""
    letter_indexes = [all_letters.find(line[li]) for li in range(1, len(line))]
    letter_indexes.append(n_letters - 1)
    return torch.LongTensor(letter_indexes)


def random_training_example():
    category, line = random_training_pair()
    return category_tensor(category), input_tensor(line), target_tensor(line)


criterion = nn.NLLLoss()
learning_rate = 0.0005


def train(category_tensor, input_line_tensor, target_line_tensor):
    target_line_tensor.unsqueeze_(-1)
    hidden = rnn.initHidden()
    rnn.zero_grad()
    loss = 0
    for i in range(input_line_tensor.size(0)):
        output, hidden = rnn(category_tensor, input_line_tensor[i], hidden)
        loss += criterion(output, target_line_tensor[i])
    same.loss(loss)
    loss.backward()
    for p in rnn.parameters():
        p.data.add_(-learning_rate, p.grad.data)
    same.step(rnn)
    return output, loss.item() / input_line_tensor.size(0)


def time_since(since):
    s = time.time() - since
    m = math.floor(s / 60)
    return "%dm %ds" % (m, s - m * 60)


rnn = RNN(n_letters, 32, n_letters)
same.weights(rnn)

n_iters, print_every, plot_every = 40, 20, 10
all_losses, total_loss = [], 0
start = time.time()
for iteration in range(1, n_iters + 1):
    output, loss = train(*random_training_example())
    total_loss += loss
    if iteration % print_every == 0:
        print("%s (%d) %.4f" % (time_since(start), iteration, loss))
    if iteration % plot_every == 0:
        all_losses.append(total_loss / plot_every)
        total_loss = 0

max_length = 20


def sample(category, start_letter="A"):
    """A name grown letter by letter from the most likely next letter."""
    with torch.no_grad():
        category_input = category_tensor(category)
        input = input_tensor(start_letter)
        hidden = rnn.initHidden()
        output_name = start_letter
        for _ in range(max_length):
            output, hidden = rnn(category_input, input[0], hidden)
            topv, topi = output.topk(1)
            topi = topi[0][0]
            if topi == n_letters - 1:
                break
            letter = all_letters[topi]
            output_name += letter
            input = input_tensor(letter)
        return output_name


def samples(category, start_letters="ABC"):
    for start_letter in start_letters:
        print(sample(category, start_letter))


samples("Russian", "RUS")
samples("German", "GER")
samples("Spanish", "SPA")
samples("Chinese", "CHI")
