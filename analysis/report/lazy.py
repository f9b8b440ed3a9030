"""Modules imported when first used: altair takes ~1.5 s to import, and a fleet run's processes
(its main process and each worker computing metrics only) draw no chart."""

from __future__ import annotations

import importlib
from types import ModuleType


class _Lazy(ModuleType):
    """Stands for a module: each attribute asked for is the module's own, the module imported at
    the first (Python's import lock makes that safe from several threads)."""

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self.__name__), attr)

    def __reduce__(self):
        """Pickled as the module itself (by name), as a real module is."""
        return importlib.import_module, (self.__name__,)


def module(name: str) -> ModuleType:
    """The module `name`, imported at the first use of one of its attributes."""
    return _Lazy(name)
