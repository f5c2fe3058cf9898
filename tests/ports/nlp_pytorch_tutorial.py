"""Port of "Introduction to PyTorch" (NLP tutorials, part 1).

Source: pytorch/tutorials, beginner_source/nlp/pytorch_tutorial.py,
commit 00e0058584f8faf2e058902c245d88f672736cd7.

A rewrite in our own words that keeps the script's PyTorch API usage: tensors made with
``torch.Tensor(data)`` and ``torch.randn``, ``cat`` and ``view``, ``autograd.Variable`` with
``.data`` and ``.grad_fn``, and ``backward()`` on a sum. There is no training in this part;
the comparison covers the tensors it prints and the gradient it computes.
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
    import tracer.nn as nn  # noqa: F401
    import tracer.nn.functional as F  # noqa: F401
    import tracer.optim as optim  # noqa: F401

torch.manual_seed(1)

# ---- making tensors from nested lists: a vector, a matrix and a 2x2x2 block
vector_values = [1.0, 2.0, 3.0]
V = torch.Tensor(vector_values)
matrix_values = [[1.0, 2.0, 3.0], [4.0, 5.0, 6]]
M = torch.Tensor(matrix_values)
block_values = [[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]]
T = torch.Tensor(block_values)
print(V, M, T)
same.value("tensors", (V, M, T))

# Indexing drops one dimension each time.
print(V[0], M[0], T[0])
same.value("indexed", (V[0], M[0], T[0]))

# Random data of a given shape.
x = torch.randn((3, 4, 5))
print(x)

# ---- arithmetic, concatenation and reshaping
x = torch.Tensor([1.0, 2.0, 3.0])
y = torch.Tensor([4.0, 5.0, 6.0])
z = x + y
print(z)
same.value("sum", z)

rows_a = torch.randn(2, 5)
rows_b = torch.randn(3, 5)
stacked_rows = torch.cat([rows_a, rows_b])
cols_a = torch.randn(2, 3)
cols_b = torch.randn(2, 5)
stacked_cols = torch.cat([cols_a, cols_b], 1)
print(stacked_rows, stacked_cols)
same.value("cat", (stacked_rows, stacked_cols))

x = torch.randn(2, 3, 4)
print(x.view(2, 12))
print(x.view(2, -1))
same.value("view", (x.view(2, 12), x.view(2, -1)))

# ---- autograd through Variables
x = autograd.Variable(torch.Tensor([1.0, 2.0, 3]), requires_grad=True)
print(x.data)
y = autograd.Variable(torch.Tensor([4.0, 5.0, 6]), requires_grad=True)
z = x + y
print(z.data)
print(z.grad_fn)

s = z.sum()
print(s)
print(s.grad_fn)
s.backward()
print(x.grad)
same.value("grad", (s, x.grad, y.grad))

# Taking .data out of a Variable and wrapping it again cuts the history.
x = torch.randn((2, 2))
y = torch.randn((2, 2))
z = x + y
var_x = autograd.Variable(x, requires_grad=True)
var_y = autograd.Variable(y, requires_grad=True)
var_z = var_x + var_y
print(var_z.grad_fn)
var_z_data = var_z.data
new_var_z = autograd.Variable(var_z_data)
print(new_var_z.grad_fn)
assert var_z.grad_fn is not None and new_var_z.grad_fn is None
same.value("variables", (var_z, new_var_z))
