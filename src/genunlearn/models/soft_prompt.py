"""Prompts as token ids (padded as the Stable Diffusion pipeline pads them) and with free token
embeddings in front (a soft prompt), encoded by a CLIP text encoder.

UnlearnDiffAtk and AdvUnlearn attack a text-to-image model through ``k`` tokens placed before the
prompt whose embeddings are free vectors rather than rows of the vocabulary. CLIP's text model takes
token ids only, so the vectors enter through a forward hook on its input-embedding table
(``get_input_embeddings``, transformers' public accessor): the ids hold placeholder tokens at the
``k`` positions after the start token, the hook writes the vectors there, and positions, causal
attention and the final layer norm stay the encoder's own. The prompt moves right by ``k``; the
padding at the end makes room. Gradients reach the vectors and, when it trains, the encoder.
"""

from __future__ import annotations

import torch

from genunlearn.errors import GenUnlearnError
from genunlearn.processes.conditioning import unwrap


def tokenize(tokenizer, prompts: list[str]) -> torch.Tensor:
    """Token ids padded to the tokenizer's length, as the Stable Diffusion pipeline pads them."""
    return tokenizer(
        prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids


def prefixed_ids(tokenizer, prompts: list[str], k: int) -> torch.Tensor:
    """Token ids ``(N, L)``: the start token, ``k`` placeholders (the end token), the prompt's tokens,
    padding; a prompt that no longer fits is one line."""
    length = tokenizer.model_max_length
    for p in prompts:
        n = len(tokenizer(p, truncation=False, verbose=False).input_ids)
        if n + k > length:
            raise GenUnlearnError(
                f"prompt {p!r} is {n} tokens; with {k} soft tokens in front this pipeline's tokenizer holds prompts of at most {length - k}"
            )
    ids = tokenize(tokenizer, prompts)
    holder = torch.full((len(prompts), k), tokenizer.eos_token_id, dtype=ids.dtype)
    return torch.cat([ids[:, :1], holder, ids[:, 1 : length - k]], 1)


ATTACK_TOKENS = 5  # the soft tokens UnlearnDiffAtk (and AdvUnlearn's attacker) put in front of the prompt


def soft_tokens(tokenizer, prompts: list[str], wanted: int | None, who: str, *, say: bool = True) -> int:
    """How many soft tokens go in front of ``prompts``: ``wanted``, checked to fit every prompt; or
    (``None``) UnlearnDiffAtk's 5, or as many as the tokenizer leaves before the longest prompt, said
    in one line unless ``say`` is false (a tiny pipeline's tokenizer holds its longest prompt and little more)."""
    if wanted is not None:
        prefixed_ids(tokenizer, prompts, wanted)
        return wanted
    from genunlearn.progress import stage

    length = tokenizer.model_max_length
    longest = max(len(tokenizer(p, truncation=False, verbose=False).input_ids) for p in prompts)
    if length - longest < 1:
        raise GenUnlearnError(
            f"{who}: no room for a soft token: this pipeline's tokenizer holds {length} tokens and the longest prompt takes {longest}"
        )
    k = min(ATTACK_TOKENS, length - longest)
    if k < ATTACK_TOKENS and say:
        stage(
            f"{who}: {k} soft tokens in front of the prompts",
            f"UnlearnDiffAtk's {ATTACK_TOKENS} do not fit: the tokenizer holds {length} tokens, the longest prompt takes {longest}",
        )
    return k


def encode_with_prefix(tokenizer, text_encoder, prompts: list[str], prefix: torch.Tensor | None) -> torch.Tensor:
    """Last hidden states ``(N, L, d)`` of ``prompts`` with ``prefix`` ``(k, d)`` after the start token
    (``None`` or ``k = 0``: the prompts as the pipeline encodes them)."""
    k = 0 if prefix is None else len(prefix)
    device = next(text_encoder.parameters()).device
    ids = prefixed_ids(tokenizer, prompts, k).to(device)
    if k == 0:
        return text_encoder(ids).last_hidden_state

    def write_prefix(_module, _inputs, out):
        return torch.cat([out[:, :1], prefix.to(out).expand(len(out), -1, -1), out[:, 1 + k :]], 1)

    handle = unwrap(text_encoder).get_input_embeddings().register_forward_hook(write_prefix)
    try:
        return text_encoder(ids).last_hidden_state
    finally:
        handle.remove()


def random_prefix(tokenizer, text_encoder, k: int, generator: torch.Generator) -> torch.Tensor:
    """The embeddings ``(k, d)`` of ``k`` seeded random vocabulary tokens (special tokens excluded):
    UnlearnDiffAtk's starting point."""
    table = text_encoder.get_input_embeddings().weight.detach()
    special = torch.tensor(tokenizer.all_special_ids)
    words = torch.tensor([i for i in range(len(table)) if i not in special])
    return table[words[torch.randint(len(words), (k,), generator=generator)].to(table.device)].clone()


def embedding_scale(text_encoder) -> float:
    """The root mean square entry of the vocabulary's embeddings: step sizes are fractions of it, so
    one setting means the same for a CLIP of any width or initialisation."""
    return float(unwrap(text_encoder).get_input_embeddings().weight.detach().float().pow(2).mean().sqrt())
