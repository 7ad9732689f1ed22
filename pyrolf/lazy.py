"""Names a package exports but imports only when first asked for (PEP 562): torch, Pyro and the
evaluation stack take seconds to import, which ``import pyrolf``, ``pyrolf --help`` and a bad
setting need not wait for."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_names(namespace: dict, sources: dict[str, tuple[str, ...]]
               ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of the package whose ``globals()`` is
    ``namespace``: ``__getattr__`` gives each name of ``sources[module]`` from the submodule
    ``package.module``, imported on first use, so that ``package.name`` and ``from package import
    name`` work as if the package had imported it; ``__dir__`` lists those names with the
    package's own, so ``dir(package)`` and a notebook's completion show them, importing nothing."""
    package = namespace["__name__"]
    where = {name: module for module, names in sources.items() for name in names}

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
