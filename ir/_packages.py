"""graphcap's own top-level packages, found where graphcap is installed, not on ``sys.path``.

graphcap's packages (``ir``, ``export``, ``runtime``, ``tracer``) import one another by
their top-level names. Python looks those up on ``sys.path``, whose first entry is the
folder of the script being run (or the working directory), so a user's ``runtime.py`` or
``export.py`` there would be imported in place of graphcap's package. Each package calls
:func:`import_own` for the siblings it needs before importing them, which loads them from
the folder that holds ``ir``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def import_own(*names: str) -> None:
    """Import graphcap's packages ``names`` from graphcap's own folder (once).

    Raises:
        ImportError: a module of one of those names that is not graphcap's was imported
            before (a user's ``runtime.py``, say); the message names its file.
    """
    for name in names:
        module = sys.modules.get(name)
        if module is not None:
            where = getattr(module, "__file__", None) or ""
            if not os.path.abspath(where).startswith(_ROOT + os.sep):
                raise ImportError(
                    f"the module {name!r} imported from {where or 'an unknown place'} is not "
                    f"graphcap's package {name!r} (in {_ROOT}), which graphcap needs; rename "
                    "your module or import graphcap before it"
                )
            continue
        spec = importlib.machinery.PathFinder.find_spec(name, [_ROOT])
        if spec is None or spec.loader is None:
            raise ImportError(f"graphcap's package {name!r} is missing from {_ROOT}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
