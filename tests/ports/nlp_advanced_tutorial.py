"""Port of "Advanced: Making Dynamic Decisions and the Bi-LSTM CRF" (NLP tutorials, part 5).

Source: pytorch/tutorials, beginner_source/nlp/advanced_tutorial.py,
commit 546ebc600c1972a19cc2aa858b081b85ac7bbf12.

A rewrite in our own words that keeps the script's PyTorch API usage: a bidirectional
``nn.LSTM`` feeding a CRF whose transition matrix is an ``nn.Parameter`` edited through
``.data[...] =``; ``torch.Tensor(1, n).fill_(...)`` buffers, ``torch.max(vec, 1)``,
``.view(-1).data.tolist()``, indexing with 0-d index tensors, ``expand``, and
``backward()`` on the one-element negative log-likelihood, trained with ``optim.SGD``
(with ``weight_decay``). The toy data are the tutorial's; 2 epochs instead of 300. One fix
beyond sizes: this version was written when indexing gave one-element tensors, so it
``torch.cat``-s 0-d values, which PyTorch 2 rejects; as the tutorial's later versions do,
the two appended values get ``.view(1)``.
"""

from tests.ports import _same as same
from tests.ports._switch import backend

if backend() == "torch":
    import torch
    import torch.autograd as autograd
    import torch.nn as nn
    import torch.optim as optim
else:
    import tracer as torch
    import tracer.autograd as autograd
    import tracer.nn as nn
    import tracer.optim as optim

torch.manual_seed(1)


def to_scalar(var):
    """The first element as a Python number."""
    return var.view(-1).data.tolist()[0]


def argmax(vec):
    """The index of the largest entry of a 1 x n tensor, as a Python int."""
    _, idx = torch.max(vec, 1)
    return to_scalar(idx)


def prepare_sequence(seq, to_ix):
    return autograd.Variable(torch.LongTensor([to_ix[w] for w in seq]))


def log_sum_exp(vec):
    """log(sum(exp(vec))) of a 1 x n tensor, shifted by its maximum for stability."""
    max_score = vec[0, argmax(vec)]
    max_score_broadcast = max_score.view(1, -1).expand(1, vec.size()[1])
    return max_score + torch.log(torch.sum(torch.exp(vec - max_score_broadcast)))


class BiLstmCrf(nn.Module):
    """Emission scores from a BiLSTM, tag-to-tag transition scores from a CRF."""

    def __init__(self, vocab_size, tag_to_ix, embedding_dim, hidden_dim):
        super(BiLstmCrf, self).__init__()
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.vocab_size = vocab_size
        self.tag_to_ix = tag_to_ix
        self.tagset_size = len(tag_to_ix)
        self.word_embeds = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim // 2, num_layers=1, bidirectional=True)
        self.hidden2tag = nn.Linear(hidden_dim, self.tagset_size)
        # transitions[i, j]: the score of moving *to* tag i *from* tag j.
        self.transitions = nn.Parameter(torch.randn(self.tagset_size, self.tagset_size))
        # Nothing moves into START or out of STOP.
        self.transitions.data[tag_to_ix[START_TAG], :] = -10000
        self.transitions.data[:, tag_to_ix[STOP_TAG]] = -10000
        self.hidden = self.init_hidden()

    def init_hidden(self):
        return (
            autograd.Variable(torch.randn(2, 1, self.hidden_dim // 2)),
            autograd.Variable(torch.randn(2, 1, self.hidden_dim // 2)),
        )

    def _forward_alg(self, feats):
        """The log partition function, by the forward algorithm in log space."""
        init_alphas = torch.Tensor(1, self.tagset_size).fill_(-10000.0)
        init_alphas[0][self.tag_to_ix[START_TAG]] = 0.0
        forward_var = autograd.Variable(init_alphas)
        for feat in feats:
            alphas_t = []
            for next_tag in range(self.tagset_size):
                emit_score = feat[next_tag].view(1, -1).expand(1, self.tagset_size)
                trans_score = self.transitions[next_tag].view(1, -1)
                next_tag_var = forward_var + trans_score + emit_score
                alphas_t.append(log_sum_exp(next_tag_var).view(1))
            forward_var = torch.cat(alphas_t).view(1, -1)
        terminal_var = forward_var + self.transitions[self.tag_to_ix[STOP_TAG]]
        return log_sum_exp(terminal_var)

    def _get_lstm_features(self, sentence):
        self.hidden = self.init_hidden()
        embeds = self.word_embeds(sentence).view(len(sentence), 1, -1)
        lstm_out, self.hidden = self.lstm(embeds, self.hidden)
        lstm_out = lstm_out.view(len(sentence), self.hidden_dim)
        return self.hidden2tag(lstm_out)

    def _score_sentence(self, feats, tags):
        """The score of the given tag sequence."""
        score = autograd.Variable(torch.Tensor([0]))
        tags = torch.cat([torch.LongTensor([self.tag_to_ix[START_TAG]]), tags])
        for i, feat in enumerate(feats):
            score = score + self.transitions[tags[i + 1], tags[i]] + feat[tags[i + 1]]
        return score + self.transitions[self.tag_to_ix[STOP_TAG], tags[-1]]

    def _viterbi_decode(self, feats):
        """The best-scoring tag path and its score."""
        backpointers = []
        init_vvars = torch.Tensor(1, self.tagset_size).fill_(-10000.0)
        init_vvars[0][self.tag_to_ix[START_TAG]] = 0
        forward_var = autograd.Variable(init_vvars)
        for feat in feats:
            bptrs_t, viterbivars_t = [], []
            for next_tag in range(self.tagset_size):
                # Emissions do not change the argmax; they are added after it.
                next_tag_var = forward_var + self.transitions[next_tag]
                best_tag_id = argmax(next_tag_var)
                bptrs_t.append(best_tag_id)
                viterbivars_t.append(next_tag_var[0][best_tag_id].view(1))
            forward_var = (torch.cat(viterbivars_t) + feat).view(1, -1)
            backpointers.append(bptrs_t)
        terminal_var = forward_var + self.transitions[self.tag_to_ix[STOP_TAG]]
        best_tag_id = argmax(terminal_var)
        path_score = terminal_var[0][best_tag_id]
        best_path = [best_tag_id]
        for bptrs_t in reversed(backpointers):
            best_tag_id = bptrs_t[best_tag_id]
            best_path.append(best_tag_id)
        start = best_path.pop()
        assert start == self.tag_to_ix[START_TAG]
        best_path.reverse()
        return path_score, best_path

    def neg_log_likelihood(self, sentence, tags):
        feats = self._get_lstm_features(sentence)
        return self._forward_alg(feats) - self._score_sentence(feats, tags)

    def forward(self, sentence):
        lstm_feats = self._get_lstm_features(sentence)
        return self._viterbi_decode(lstm_feats)


START_TAG = "<START>"
STOP_TAG = "<STOP>"
EMBEDDING_DIM = 5
HIDDEN_DIM = 4

training_data = [
    (
        "the wall street journal reported today that apple corporation made money".split(),
        "B I I I O O O B I O O".split(),
    ),
    ("georgia tech is a university in georgia".split(), "B I O O O O B".split()),
]
word_to_ix = {}
for sentence, _ in training_data:
    for word in sentence:
        word_to_ix.setdefault(word, len(word_to_ix))
tag_to_ix = {"B": 0, "I": 1, "O": 2, START_TAG: 3, STOP_TAG: 4}

model = BiLstmCrf(len(word_to_ix), tag_to_ix, EMBEDDING_DIM, HIDDEN_DIM)
same.weights(model)
optimizer = optim.SGD(model.parameters(), lr=0.01, weight_decay=1e-4)

precheck_sent = prepare_sequence(training_data[0][0], word_to_ix)
precheck_tags = torch.LongTensor([tag_to_ix[t] for t in training_data[0][1]])
before = model(precheck_sent)
print(before)
same.value("viterbi before", (before[0], torch.LongTensor(before[1])))

for epoch in range(2):
    for sentence, tags in training_data:
        model.zero_grad()
        sentence_in = prepare_sequence(sentence, word_to_ix)
        targets = torch.LongTensor([tag_to_ix[t] for t in tags])
        neg_log_likelihood = model.neg_log_likelihood(sentence_in, targets)
        same.loss(neg_log_likelihood)
        neg_log_likelihood.backward()
        optimizer.step()
        same.step(model)

print(model(prepare_sequence(training_data[0][0], word_to_ix)))
