"""Modules imported when first used: altair takes ~1.5 s to import, and a fleet run's processes
(its main process and each worker computing metrics only) draw no chart."""

from __future__ import annotations

import importlib
from types import ModuleType


class _Lazy(ModuleType):
    """Stands for a module until one of its attributes is asked for; then imports it (Python's
    import lock makes that safe from several threads) and serves its attributes from then on."""

    def __getattr__(self, attr: str):
        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)
        return getattr(real, attr)


def module(name: str) -> ModuleType:
    """The module `name`, imported at the first use of one of its attributes."""
    return _Lazy(name)
