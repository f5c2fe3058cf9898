"""Port of "Sequence Models and Long Short-Term Memory Networks" (NLP tutorials, part 4).

Source: pytorch/tutorials, beginner_source/nlp/sequence_models_tutorial.py,
commit 0d1e0f7576479586ee777d5387153830750025eb.

A rewrite in our own words that keeps the script's PyTorch API usage: ``nn.LSTM`` stepped one
element at a time and over a whole sequence with an ``(h, c)`` tuple of
``autograd.Variable``s, and an LSTM part-of-speech tagger that keeps its hidden state on the
module, calls ``F.log_softmax`` without ``dim`` (the implicit-dimension form, which warns
in PyTorch) and trains with ``nn.NLLLoss`` and ``optim.SGD``. 5 epochs instead of 300.
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

# ---- an LSTM stepped through a sequence, then run over all of it at once
lstm = nn.LSTM(3, 3)
same.weights(lstm)
inputs = [autograd.Variable(torch.randn((1, 3))) for _ in range(5)]
hidden = (autograd.Variable(torch.randn(1, 1, 3)), autograd.Variable(torch.randn((1, 1, 3))))
for element in inputs:
    out, hidden = lstm(element.view(1, 1, -1), hidden)
same.value("stepped", (out, hidden))

inputs = torch.cat(inputs).view(len(inputs), 1, -1)
hidden = (autograd.Variable(torch.randn(1, 1, 3)), autograd.Variable(torch.randn((1, 1, 3))))
out, hidden = lstm(inputs, hidden)
print(out, hidden)
same.value("whole sequence", (out, hidden))


# ---- an LSTM part-of-speech tagger
def prepare_sequence(seq, to_ix):
    return autograd.Variable(torch.LongTensor([to_ix[w] for w in seq]))


training_data = [
    ("The dog ate the apple".split(), ["DET", "NN", "V", "DET", "NN"]),
    ("Everybody read that book".split(), ["NN", "V", "DET", "NN"]),
]
word_to_ix = {}
for sentence, _ in training_data:
    for word in sentence:
        word_to_ix.setdefault(word, len(word_to_ix))
tag_to_ix = {"DET": 0, "NN": 1, "V": 2}
EMBEDDING_DIM = 6
HIDDEN_DIM = 6


class LSTMTagger(nn.Module):
    """Tag scores for each word from an LSTM over the sentence's word embeddings."""

    def __init__(self, embedding_dim, hidden_dim, vocab_size, tagset_size):
        super(LSTMTagger, self).__init__()
        self.hidden_dim = hidden_dim
        self.word_embeddings = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim)
        self.hidden2tag = nn.Linear(hidden_dim, tagset_size)
        self.hidden = self.init_hidden()

    def init_hidden(self):
        # (num_layers, minibatch, hidden_dim), all zeros: no history yet.
        return (
            autograd.Variable(torch.zeros(1, 1, self.hidden_dim)),
            autograd.Variable(torch.zeros(1, 1, self.hidden_dim)),
        )

    def forward(self, sentence):
        embeds = self.word_embeddings(sentence)
        lstm_out, self.hidden = self.lstm(embeds.view(len(sentence), 1, -1), self.hidden)
        tag_space = self.hidden2tag(lstm_out.view(len(sentence), -1))
        return F.log_softmax(tag_space)


model = LSTMTagger(EMBEDDING_DIM, HIDDEN_DIM, len(word_to_ix), len(tag_to_ix))
same.weights(model)
loss_function = nn.NLLLoss()
optimizer = optim.SGD(model.parameters(), lr=0.1)

print(model(prepare_sequence(training_data[0][0], word_to_ix)))
for epoch in range(5):
    for sentence, tags in training_data:
        model.zero_grad()
        model.hidden = model.init_hidden()
        sentence_in = prepare_sequence(sentence, word_to_ix)
        targets = prepare_sequence(tags, tag_to_ix)
        tag_scores = model(sentence_in)
        loss = loss_function(tag_scores, targets)
        same.loss(loss)
        loss.backward()
        optimizer.step()
        same.step(model)

tag_scores = model(prepare_sequence(training_data[0][0], word_to_ix))
print(tag_scores)
