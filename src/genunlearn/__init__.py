"""genunlearn: machine unlearning for generative models.

Kept import-light: the CLI's ``--help`` and error paths must not pay for torch.
"""

__version__ = "0.1.0"

from genunlearn.errors import GenUnlearnError  # noqa: E402  (pure Python, cheap)

__all__ = ["GenUnlearnError", "__version__"]
