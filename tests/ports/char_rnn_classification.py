"""Port of "NLP From Scratch: Classifying Names with a Character-Level RNN".

Source: pytorch/tutorials, intermediate_source/char_rnn_classification_tutorial.py,
commit 10098032865151e891c6074522207880f0e68fd3.

A rewrite in our own words that keeps the script's PyTorch API usage: one-hot letters
written with chained indexing (``tensor[li][0][i] = 1``), a hand-made RNN of ``nn.Linear``
layers with ``F.tanh`` and ``nn.LogSoftmax(dim=1)``, ``nn.NLLLoss``, a manual SGD update
``p.data.add_(p.grad.data, alpha=-learning_rate)``, ``topk`` and ``item()``, a confusion
matrix filled with ``+=`` on chained indices and normalised row by row, and prediction
under ``torch.no_grad()``. The names data (a download) are replaced by a few names per
language in ``data/names``; 60 iterations instead of 100000; the plots are left out.
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
    import torch.nn.functional as F
else:
    import tracer as torch
    import tracer.nn as nn
    import tracer.nn.functional as F

DATA = os.path.join(os.path.dirname(__file__), "data", "names", "*.txt")
all_letters = string.ascii_letters + " .,;'"
n_letters = len(all_letters)


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
print(category_lines["Italian"][:5])


def letter_to_index(letter):
    return all_letters.find(letter)


def letter_to_tensor(letter):
    """A 1 x n_letters one-hot row."""
    tensor = torch.zeros(1, n_letters)
    tensor[0][letter_to_index(letter)] = 1
    return tensor


def line_to_tensor(line):
    """A line_length x 1 x n_letters stack of one-hot rows."""
    tensor = torch.zeros(len(line), 1, n_letters)
    for li, letter in enumerate(line):
        tensor[li][0][letter_to_index(letter)] = 1
    return tensor


print(letter_to_tensor("J"))
print(line_to_tensor("Jones").size())
same.value("one-hot", line_to_tensor("Jones"))


class RNN(nn.Module):
    """An Elman RNN cell made of three linear maps, with log-probabilities as output."""

    def __init__(self, input_size, hidden_size, output_size):
        super(RNN, self).__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(input_size, hidden_size)
        self.h2h = nn.Linear(hidden_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input, hidden):
        hidden = F.tanh(self.i2h(input) + self.h2h(hidden))
        output = self.softmax(self.h2o(hidden))
        return output, hidden

    def initHidden(self):
        return torch.zeros(1, self.hidden_size)


n_hidden = 32
rnn = RNN(n_letters, n_hidden, n_categories)
same.weights(rnn)

output, next_hidden = rnn(letter_to_tensor("A"), torch.zeros(1, n_hidden))
output, next_hidden = rnn(line_to_tensor("Albert")[0], torch.zeros(1, n_hidden))
print(output)
same.value("first output", output)


def category_from_output(output):
    top_n, top_i = output.topk(1)
    category_i = top_i[0].item()
    return all_categories[category_i], category_i


print(category_from_output(output))


def random_choice(items):
    return items[random.randint(0, len(items) - 1)]


def random_training_example():
    category = random_choice(all_categories)
    line = random_choice(category_lines[category])
    category_tensor = torch.tensor([all_categories.index(category)], dtype=torch.long)
    return category, line, category_tensor, line_to_tensor(line)


criterion = nn.NLLLoss()
learning_rate = 0.005


def train(category_tensor, line_tensor):
    hidden = rnn.initHidden()
    rnn.zero_grad()
    for i in range(line_tensor.size()[0]):
        output, hidden = rnn(line_tensor[i], hidden)
    loss = criterion(output, category_tensor)
    same.loss(loss)
    loss.backward()
    # A plain SGD step, written out.
    for p in rnn.parameters():
        p.data.add_(p.grad.data, alpha=-learning_rate)
    same.step(rnn)
    return output, loss.item()


def time_since(since):
    s = time.time() - since
    m = math.floor(s / 60)
    return "%dm %ds" % (m, s - m * 60)


n_iters, print_every, plot_every = 60, 20, 10
current_loss, all_losses = 0, []
start = time.time()
for iteration in range(1, n_iters + 1):
    category, line, category_tensor, line_tensor = random_training_example()
    output, loss = train(category_tensor, line_tensor)
    current_loss += loss
    if iteration % print_every == 0:
        guess, _ = category_from_output(output)
        mark = "ok" if guess == category else "wrong (%s)" % category
        print("%d (%s) %.4f %s / %s %s" % (iteration, time_since(start), loss, line, guess, mark))
    if iteration % plot_every == 0:
        all_losses.append(current_loss / plot_every)
        current_loss = 0


def evaluate(line_tensor):
    hidden = rnn.initHidden()
    for i in range(line_tensor.size()[0]):
        output, hidden = rnn(line_tensor[i], hidden)
    return output


confusion = torch.zeros(n_categories, n_categories)
for _ in range(30):
    category, line, category_tensor, line_tensor = random_training_example()
    guess, guess_i = category_from_output(evaluate(line_tensor))
    confusion[all_categories.index(category)][guess_i] += 1
for i in range(n_categories):
    confusion[i] = confusion[i] / confusion[i].sum()
print(confusion.numpy())


def predict(input_line, n_predictions=3):
    print("\n> %s" % input_line)
    with torch.no_grad():
        output = evaluate(line_to_tensor(input_line))
        topv, topi = output.topk(n_predictions, 1, True)
        predictions = []
        for i in range(n_predictions):
            value = topv[0][i].item()
            category_index = topi[0][i].item()
            print("(%.2f) %s" % (value, all_categories[category_index]))
            predictions.append([value, all_categories[category_index]])
        return predictions


predict("Dovesky")
predict("Jackson")
predict("Satoshi")
