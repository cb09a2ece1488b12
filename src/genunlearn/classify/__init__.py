"""Classifier unlearning (SalUn's classification setting): recipe, methods, CLI.

Kept import-light (no torch here) so ``genunlearn --help`` stays fast; see ``model.py`` and
``unlearn.py``.
"""
