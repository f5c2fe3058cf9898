"""Port of "Word Embeddings: Encoding Lexical Semantics" (NLP tutorials, part 3).

Source: pytorch/tutorials, beginner_source/nlp/word_embeddings_tutorial.py,
commit 016d0cc077f60c82b8497d4c7f92051ce40cafee.

A rewrite in our own words that keeps the script's PyTorch API usage: ``nn.Embedding`` looked
up with a ``torch.LongTensor`` wrapped in ``autograd.Variable``, an n-gram language model
(``Embedding`` -> ``view`` -> ``Linear`` -> ``F.relu`` -> ``Linear`` -> ``F.log_softmax``)
trained with ``nn.NLLLoss`` and ``optim.SGD``, and the loss summed into a
``torch.Tensor([0])`` with ``+= loss.data``. The text is the first four lines of the
tutorial's sonnet; 2 epochs instead of 10.
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

# ---- one lookup in a 2-word table
word_to_ix = {"hello": 0, "world": 1}
embeds = nn.Embedding(2, 5)
same.weights(embeds)
lookup_tensor = torch.LongTensor([word_to_ix["hello"]])
hello_embed = embeds(autograd.Variable(lookup_tensor))
print(hello_embed)
same.value("lookup", hello_embed)

# ---- an n-gram language model: predict a word from the two before it
CONTEXT_SIZE = 2
EMBEDDING_DIM = 10
text = """When forty winters shall besiege thy brow,
And dig deep trenches in thy beauty's field,
Thy youth's proud livery so gazed on now,
Will be a totter'd weed of small worth held:""".split()
trigrams = [([text[i], text[i + 1]], text[i + 2]) for i in range(len(text) - 2)]
print(trigrams[:3])

vocab = set(text)
word_to_ix = {word: i for i, word in enumerate(vocab)}


class NGramLanguageModeler(nn.Module):
    """Log-probabilities of the next word from the embeddings of the context words."""

    def __init__(self, vocab_size, embedding_dim, context_size):
        super(NGramLanguageModeler, self).__init__()
        self.embeddings = nn.Embedding(vocab_size, embedding_dim)
        self.linear1 = nn.Linear(context_size * embedding_dim, 128)
        self.linear2 = nn.Linear(128, vocab_size)

    def forward(self, inputs):
        flat = self.embeddings(inputs).view((1, -1))
        hidden = F.relu(self.linear1(flat))
        return F.log_softmax(self.linear2(hidden), dim=1)


losses = []
loss_function = nn.NLLLoss()
model = NGramLanguageModeler(len(vocab), EMBEDDING_DIM, CONTEXT_SIZE)
same.weights(model)
optimizer = optim.SGD(model.parameters(), lr=0.001)

for epoch in range(2):
    total_loss = torch.Tensor([0])
    for context, target in trigrams:
        context_var = autograd.Variable(torch.LongTensor([word_to_ix[w] for w in context]))
        model.zero_grad()
        log_probs = model(context_var)
        loss = loss_function(log_probs, autograd.Variable(torch.LongTensor([word_to_ix[target]])))
        same.loss(loss)
        loss.backward()
        optimizer.step()
        same.step(model)
        total_loss += loss.data
    losses.append(total_loss)
print(losses)
same.value("epoch losses", losses)


# ---- the CBOW exercise's data helper (the model is left to the reader, as published)
def make_context_vector(context, word_to_ix):
    idxs = [word_to_ix[w] for w in context]
    return autograd.Variable(torch.LongTensor(idxs))


print(make_context_vector(text[:4], word_to_ix))
