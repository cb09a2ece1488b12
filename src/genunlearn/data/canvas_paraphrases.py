"""Canvas paraphrases: held-out captions written only in the training words.

``canvas.captions(row, "heldout")`` mixes two kinds of unseen phrasing: held-out templates and
held-out synonyms. A pipeline whose text encoder was trained from scratch never saw the synonyms'
words, so whether an erasure generalises to new phrasings is asked of the first kind alone: the
held-out templates filled with a row's training words (``split="paraphrase"``). This lives apart from
``canvas`` because that module's source is the canvas data's fingerprint (``data.fingerprint``):
what is added here changes no image and keeps every trained canvas model's cache key.
"""

from __future__ import annotations

from genunlearn.data import canvas

SPLITS = (*canvas.CAPTION_SPLITS, "paraphrase")


def captions(row, split: str = "train") -> tuple[str, ...]:
    """``canvas.captions``, plus ``split="paraphrase"`` (sorted, disjoint from the training captions)."""
    if split != "paraphrase":
        return canvas.captions(row, split)
    train = set(canvas.captions(row))  # checks the row
    return tuple(
        sorted(
            canvas._fill(canvas.HELDOUT_TEMPLATES, canvas._slot_words(tuple(int(i) for i in row), heldout=False))
            - train
        )
    )
