"""Port of "Deep Learning with PyTorch" (NLP tutorials, part 2): a bag-of-words classifier.

Source: pytorch/tutorials, beginner_source/nlp/deep_learning_tutorial.py,
commit 016d0cc077f60c82b8497d4c7f92051ce40cafee.

A rewrite in our own words that keeps the script's PyTorch API usage: ``nn.Linear`` on
``autograd.Variable`` inputs, ``F.relu`` / ``F.softmax`` / ``F.log_softmax``, an
``nn.Module`` subclass, bag-of-words vectors built with ``torch.zeros`` and ``+=`` on an
indexed element, ``torch.LongTensor`` targets, ``nn.NLLLoss`` and ``optim.SGD``. The toy
data are the tutorial's; the epochs are cut from 100 to 5.
"""

from tests.ports import _same as same
from tests.ports._switch import backend

if backend() == "torch":
    import torch
    import torch.autograd as autograd
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.optim as optim
else:
    import tracer as torch
    import tracer.autograd as autograd
    import tracer.nn as nn
    import tracer.nn.functional as F
    import tracer.optim as optim

torch.manual_seed(1)

# ---- an affine map, non-linearities and softmax
lin = nn.Linear(5, 3)
same.weights(lin)
data = autograd.Variable(torch.randn(2, 5))
print(lin(data))
same.value("affine", lin(data))

data = autograd.Variable(torch.randn(2, 2))
print(data, F.relu(data))
same.value("relu", F.relu(data))

data = autograd.Variable(torch.randn(5))
print(F.softmax(data, dim=0), F.softmax(data, dim=0).sum(), F.log_softmax(data, dim=0))
same.value("softmax", (F.softmax(data, dim=0), F.log_softmax(data, dim=0)))

# ---- a logistic-regression bag-of-words classifier: Spanish or English?
train_set = [
    ("me gusta comer en la cafeteria".split(), "SPANISH"),
    ("Give it to me".split(), "ENGLISH"),
    ("No creo que sea una buena idea".split(), "SPANISH"),
    ("No it is not a good idea to get lost at sea".split(), "ENGLISH"),
]
held_out = [("Yo creo que si".split(), "SPANISH"), ("it is lost on me".split(), "ENGLISH")]

word_to_ix = {}
for words, _ in train_set + held_out:
    for w in words:
        word_to_ix.setdefault(w, len(word_to_ix))
VOCAB_SIZE = len(word_to_ix)
NUM_LABELS = 2
label_to_ix = {"SPANISH": 0, "ENGLISH": 1}


class BoWClassifier(nn.Module):
    """Log-probabilities of the labels from a bag-of-words count vector."""

    def __init__(self, num_labels, vocab_size):
        super(BoWClassifier, self).__init__()
        self.linear = nn.Linear(vocab_size, num_labels)

    def forward(self, bow_vec):
        return F.log_softmax(self.linear(bow_vec), dim=1)


def make_bow_vector(sentence, word_to_ix):
    counts = torch.zeros(len(word_to_ix))
    for w in sentence:
        counts[word_to_ix[w]] += 1
    return counts.view(1, -1)


def make_target(label, label_to_ix):
    return torch.LongTensor([label_to_ix[label]])


model = BoWClassifier(NUM_LABELS, VOCAB_SIZE)
same.weights(model)
for param in model.parameters():
    print(param)

bow_vector = make_bow_vector(train_set[0][0], word_to_ix)
print(model(autograd.Variable(bow_vector)))
for words, _ in held_out:
    print(model(autograd.Variable(make_bow_vector(words, word_to_ix))))
print(next(model.parameters())[:, word_to_ix["creo"]])

loss_function = nn.NLLLoss()
optimizer = optim.SGD(model.parameters(), lr=0.1)

for epoch in range(5):
    for words, label in train_set:
        model.zero_grad()
        bow_vec = autograd.Variable(make_bow_vector(words, word_to_ix))
        target = autograd.Variable(make_target(label, label_to_ix))
        log_probs = model(bow_vec)
        loss = loss_function(log_probs, target)
        same.loss(loss)
        loss.backward()
        optimizer.step()
        same.step(model)

for words, _ in held_out:
    log_probs = model(autograd.Variable(make_bow_vector(words, word_to_ix)))
    print(log_probs)
print(next(model.parameters())[:, word_to_ix["creo"]])
