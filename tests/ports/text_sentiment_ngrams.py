"""Port of "Text classification with the torchtext library" (EmbeddingBag news classifier).

Source: pytorch/tutorials, beginner_source/text_sentiment_ngrams_tutorial.py,
commit 5130967035247c8343376ee69f49d6e10d61eaca.

A rewrite in our own words that keeps the script's PyTorch API usage: a ``collate_fn`` that
builds ``torch.tensor(..., dtype=torch.int64)`` token lists, ``cumsum`` offsets and
``torch.cat``, ``.to(device)``; ``DataLoader`` (``batch_size``, ``shuffle``,
``collate_fn``) over an ``IterableDataset`` and over ``random_split`` subsets; an
``nn.EmbeddingBag`` + ``nn.Linear`` model initialised through ``.weight.data.uniform_``
and ``.bias.data.zero_``;
``model.train()`` / ``model.eval()``, ``torch.nn.CrossEntropyLoss``, ``torch.optim.SGD``,
``torch.nn.utils.clip_grad_norm_``, ``torch.optim.lr_scheduler.StepLR(optimizer, 1.0,
gamma=0.1)`` and ``torch.no_grad()``. AG_NEWS (a torchtext datapipe) is replaced by
``_text``'s generated headlines served by an ``IterableDataset``, and torchtext's tokenizer
and vocabulary by small stand-ins; embedding size 16, 2 epochs.
"""

import time

from tests.ports import _same as same
from tests.ports import _text as text_data
from tests.ports._switch import backend

if backend() == "torch":
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, IterableDataset
    from torch.utils.data.dataset import random_split
else:
    import tracer as torch
    from tracer import nn
    from tracer.utils.data import DataLoader, IterableDataset
    from tracer.utils.data.dataset import random_split


class NewsItems(IterableDataset):
    """The AG_NEWS stand-in: a stream of (label, text), as torchtext's datapipe is."""

    def __init__(self, split):
        train = split == "train"
        self.items = text_data.news_items(240 if train else 60, seed=0 if train else 1)

    def __iter__(self):
        return iter(self.items)


def ag_news(split="train"):
    return NewsItems(split)


tokenizer = text_data.tokenizer


def yield_tokens(data_iter):
    for _, text in data_iter:
        yield tokenizer(text)


vocab = text_data.build_vocab_from_iterator(yield_tokens(ag_news("train")), specials=["<unk>"])
vocab.set_default_index(vocab["<unk>"])


def text_pipeline(x):
    return vocab(tokenizer(x))


def label_pipeline(x):
    return int(x) - 1


device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def collate_batch(batch):
    label_list, text_list, offsets = [], [], [0]
    for _label, _text in batch:
        label_list.append(label_pipeline(_label))
        processed_text = torch.tensor(text_pipeline(_text), dtype=torch.int64)
        text_list.append(processed_text)
        offsets.append(processed_text.size(0))
    label_list = torch.tensor(label_list, dtype=torch.int64)
    offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
    text_list = torch.cat(text_list)
    return label_list.to(device), text_list.to(device), offsets.to(device)


dataloader = DataLoader(ag_news("train"), batch_size=8, shuffle=False, collate_fn=collate_batch)
first_label, first_text, first_offsets = next(iter(dataloader))
print(first_label, first_offsets)


class TextClassificationModel(nn.Module):
    """Mean of the token embeddings of each text (an EmbeddingBag), then a linear layer."""

    def __init__(self, vocab_size, embed_dim, num_class):
        super(TextClassificationModel, self).__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, sparse=False)
        self.fc = nn.Linear(embed_dim, num_class)
        self.init_weights()

    def init_weights(self):
        initrange = 0.5
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.fc.weight.data.uniform_(-initrange, initrange)
        self.fc.bias.data.zero_()

    def forward(self, text, offsets):
        return self.fc(self.embedding(text, offsets))


num_class = len(set([label for (label, text) in ag_news("train")]))
vocab_size = len(vocab)
emsize = 16
model = TextClassificationModel(vocab_size, emsize, num_class).to(device)
same.weights(model)


def train(dataloader):
    model.train()
    total_acc, total_count = 0, 0
    log_interval = 2
    start_time = time.time()
    for idx, (label, text, offsets) in enumerate(dataloader):
        optimizer.zero_grad()
        predicted_label = model(text, offsets)
        loss = criterion(predicted_label, label)
        same.loss(loss)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        same.step(model)
        total_acc += (predicted_label.argmax(1) == label).sum().item()
        total_count += label.size(0)
        if idx % log_interval == 0 and idx > 0:
            print(
                "| epoch {:3d} | {:5d}/{:5d} batches | accuracy {:8.3f} | {:.2f}s".format(
                    epoch, idx, len(dataloader), total_acc / total_count, time.time() - start_time
                )
            )
            total_acc, total_count = 0, 0
            start_time = time.time()


def evaluate(dataloader):
    model.eval()
    total_acc, total_count = 0, 0
    with torch.no_grad():
        for label, text, offsets in dataloader:
            predicted_label = model(text, offsets)
            criterion(predicted_label, label)
            total_acc += (predicted_label.argmax(1) == label).sum().item()
            total_count += label.size(0)
    return total_acc / total_count


EPOCHS = 2
LR = 5
BATCH_SIZE = 64

criterion = torch.nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=LR)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1.0, gamma=0.1)
total_accu = None
train_dataset = list(ag_news("train"))  # torchtext's to_map_style_dataset
test_dataset = list(ag_news("test"))
num_train = int(len(train_dataset) * 0.95)
split_train_, split_valid_ = random_split(
    train_dataset, [num_train, len(train_dataset) - num_train]
)
train_dataloader = DataLoader(
    split_train_, batch_size=BATCH_SIZE, shuffle=True, collate_fn=collate_batch
)
valid_dataloader = DataLoader(
    split_valid_, batch_size=BATCH_SIZE, shuffle=True, collate_fn=collate_batch
)
test_dataloader = DataLoader(
    test_dataset, batch_size=BATCH_SIZE, shuffle=True, collate_fn=collate_batch
)

for epoch in range(1, EPOCHS + 1):
    epoch_start_time = time.time()
    train(train_dataloader)
    accu_val = evaluate(valid_dataloader)
    if total_accu is not None and total_accu > accu_val:
        scheduler.step()
    else:
        total_accu = accu_val
    print("| end of epoch {:3d} | valid accuracy {:8.3f}".format(epoch, accu_val))

print("test accuracy {:8.3f}".format(evaluate(test_dataloader)))

ag_news_label = {1: "World", 2: "Sports", 3: "Business", 4: "Sci/Tec"}


def predict(text, text_pipeline):
    with torch.no_grad():
        text = torch.tensor(text_pipeline(text))
        output = model(text, torch.tensor([0]))
        return output.argmax(1).item() + 1


model = model.to("cpu")
print(
    "This is a %s news"
    % ag_news_label[predict("The striker scored in the cup match", text_pipeline)]
)
