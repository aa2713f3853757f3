"""Lazy attribute loading for package ``__init__`` files (keeps imports light)."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable, list]:
    """Return ``(__getattr__, __dir__, __all__)`` for a package.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict
        Public name -> module (relative to ``package``, e.g. ``"._filter"``).
    """
    names = sorted(exports)

    def __getattr__(name: str) -> Any:
        if name in exports:
            module = importlib.import_module(exports[name], package)
            return getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__, names
