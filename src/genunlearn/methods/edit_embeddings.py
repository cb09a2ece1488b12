"""The text embeddings a closed-form cross-attention edit (UCE, RECE) moves: prompts encoded as
``StableDiffusionPipeline.encode_prompt`` encodes them (the pipeline's own tokenizer, padded to its
length, and frozen text encoder), the hidden states at chosen token positions:

* ``tokens=last``: the concept prompt's last word token, sent where W₀ sends the guide's last word
  token (the start token for the empty guide); a preserved prompt's last word token is kept;
* ``tokens=tail`` (UCE's published erasing script): from the concept's last word token to the end,
  padding included, sent to the guide's positions from its last word token, the two runs right-trimmed
  to one length; a preserved prompt keeps every position, and the empty prompt is always preserved
  (so the unconditional branch of guidance stays as it was);
* ``tokens=all``: every position after the start token, padding included (the UNet attends to all of
  them and each carries the prompt through the causal text encoder), each sent to the guide's
  aligned position: a shared prefix to itself, the concept's own words to the guide's words counted from
  the last (the guide's first when it has fewer; the token before when it adds none), the end token and the
  padding to the guide's, shifted by the length difference; a preserved prompt keeps the same positions.
"""

from __future__ import annotations

import torch

from genunlearn.errors import GenUnlearnError


def split_prompts(text: str | None) -> list[str]:
    """'a; b' → ['a', 'b'] (empty pieces dropped)."""
    return [p.strip() for p in (text or "").split(";") if p.strip()]


def encode(tokenizer, text_encoder, prompts: list[str]) -> tuple[torch.Tensor, list[list[int]]]:
    """Hidden states ``(n, L, d)`` of prompts padded to the tokenizer's length L, as the Stable
    Diffusion pipeline encodes them, and each prompt's unpadded token ids. A prompt longer than L or
    holding a word the tokenizer does not know fails with one line."""
    from genunlearn.interop.diffusers.folders import quiet
    from genunlearn.models.soft_prompt import tokenize

    length = tokenizer.model_max_length
    with quiet():  # transformers warns of every prompt longer than the tokenizer's length; refused below
        ids = [tokenizer(p).input_ids for p in prompts]
    for p, i in zip(prompts, ids):
        if len(i) > length:
            raise GenUnlearnError(f"prompt {p!r} is {len(i)} tokens; the pipeline's tokenizer holds at most {length}")
        if tokenizer.unk_token_id in i[1:-1]:
            raise GenUnlearnError(f"prompt {p!r} holds a word the pipeline's tokenizer does not know")
    with torch.no_grad():
        hidden = text_encoder(tokenize(tokenizer, prompts).to(text_encoder.device)).last_hidden_state
    return hidden.float().cpu(), ids


def _common(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two token lists."""
    return next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def aligned_positions(concept: list[int], guide: list[int], length: int, tokens: str) -> tuple[list[int], list[int]]:
    """(concept positions, the guide position each is sent to) for two unpadded token lists; see
    the module docstring."""
    last_c, last_g = len(concept) - 2, max(len(guide) - 2, 0)
    if tokens == "last":
        return [last_c], [last_g]
    if tokens == "tail":
        trim = max(last_c, last_g)
        return list(range(last_c, length - trim + last_c)), list(range(last_g, length - trim + last_g))
    words_c, words_g = concept[:-1], guide[:-1]  # the start token and the words
    prefix = _common(words_c, words_g)  # ≥ 1: both start with the start token
    suffix = _common(words_c[prefix:][::-1], words_g[prefix:][::-1])
    own_c, own_g = len(words_c) - prefix - suffix, len(words_g) - prefix - suffix

    def target(i: int) -> int:
        if i < prefix:
            return i
        if i < prefix + own_c:  # the concept's own words, right-aligned with the guide's
            return prefix + own_g - 1 - min(prefix + own_c - 1 - i, own_g - 1) if own_g else prefix - 1
        return min(i + len(guide) - len(concept), length - 1)

    src = list(range(1, length))
    return src, [target(i) for i in src]


def kept_positions(ids: list[int], length: int, tokens: str) -> list[int]:
    """The positions of a preserved prompt whose keys and values the edit keeps (module docstring)."""
    if tokens == "tail":
        return list(range(length))
    return aligned_positions(ids, ids, length, tokens)[0]


def edit_embeddings(
    tokenizer, text_encoder, concepts: list[str], guides: list[str], preserve: list[str], tokens: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(erase, guide, preserve) embedding rows for ``closed_form.uce_factors``."""
    for c, g in zip(concepts, guides):
        if c == g:
            raise GenUnlearnError(f"concept {c!r} is its own guide; name another anchor")
    if tokens == "tail" and "" not in preserve:
        preserve = [*preserve, ""]
    hidden, ids = encode(tokenizer, text_encoder, concepts + guides + preserve)
    n, length = len(concepts), hidden.shape[1]
    erase, guide = [], []
    for i in range(n):
        src, dst = aligned_positions(ids[i], ids[n + i], length, tokens)
        erase.append(hidden[i, src])
        guide.append(hidden[n + i, dst])
    kept = [hidden[2 * n + j, kept_positions(ids[2 * n + j], length, tokens)] for j in range(len(preserve))]
    return torch.cat(erase), torch.cat(guide), torch.cat(kept) if kept else hidden.new_zeros(0, hidden.shape[2])
