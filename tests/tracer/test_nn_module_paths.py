"""``tracer.nn.modules.*`` and ``tracer.nn.parameter``: the module paths torch code imports from.

Every class is the one ``tracer.nn`` exports, and sits in the submodule where torch keeps it.
"""

from __future__ import annotations

import importlib

import pytest

import tracer.nn as nn
import tracer.nn.modules as modules

SUBMODULES = sorted(n for n in modules.__all__ if n.islower())


@pytest.mark.parametrize("sub", SUBMODULES)
def test_each_path_re_exports_tracer_nn_classes(sub: str) -> None:
    module = importlib.import_module(f"tracer.nn.modules.{sub}")
    assert module.__all__
    for name in module.__all__:
        assert getattr(module, name) is getattr(nn, name)
        assert getattr(modules, name) is getattr(nn, name)


def test_paths_are_torchs() -> None:
    torch = pytest.importorskip("torch")
    for sub in SUBMODULES:
        theirs = importlib.import_module(f"torch.nn.modules.{sub}")
        for name in importlib.import_module(f"tracer.nn.modules.{sub}").__all__:
            assert hasattr(theirs, name), f"torch.nn.modules.{sub} has no {name}"
    for name in nn.__all__:
        ours, theirs = getattr(nn, name), getattr(torch.nn, name, None)
        if not isinstance(ours, type) or not isinstance(theirs, type) or name == "Parameter":
            continue
        sub = theirs.__module__.removeprefix("torch.nn.modules.")
        module = importlib.import_module(f"tracer.nn.modules.{sub}")
        assert getattr(module, name, None) is ours, f"tracer.nn.modules.{sub}.{name} is missing"
    from tracer.nn.parameter import Parameter

    assert Parameter is nn.Parameter
