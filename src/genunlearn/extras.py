"""Optional dependency groups: a module of an extra, or one line saying which extra to install.

Stable-Diffusion-layout pipelines need ``transformers`` and ``tokenizers`` (the ``sd`` extra); the
rest of genunlearn runs without them. The groups are declared in ``pyproject.toml`` (a test checks
that every import under ``src/`` is declared there).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from genunlearn.errors import GenUnlearnError

EXTRA_OF = {"transformers": "sd", "tokenizers": "sd"}


def require(module: str, why: str) -> ModuleType:
    """Import ``module`` (a top-level package of an extra) or raise one line naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRA_OF[module.split(".")[0]]
        raise GenUnlearnError(
            f"{why} needs the package {module.split('.')[0]!r}: install the {extra!r} extra (pip install 'genunlearn[{extra}]')"
        ) from None
