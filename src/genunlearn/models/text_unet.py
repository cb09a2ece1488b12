"""A diffusers ``UNet2DConditionModel`` (Stable-Diffusion layout) behind ``net(z, t, cond)``.

genunlearn conditions on attribute rows (``data.dataset``); a text-to-image UNet conditions on the
text encoder's hidden states for a prompt. The boundary is here: every possible row (each attribute
a value or unspecified) is written as its prompt ("a red circle", "a shape"; the all-unspecified row
is the empty prompt, Stable Diffusion's unconditional input), tokenized once, and

* while a pipeline is trained from scratch, encoded live by the text encoder (trained with the UNet);
* while a pipeline is unlearned, looked up in a table of hidden states encoded once by the frozen
  text encoder (a buffer, so it moves with the network and is never trained), as the papers freeze
  the text encoder and change the UNet only.

Times: genunlearn's t ∈ [0, 1) is timestep t·T (the scheduler's ``num_train_timesteps``).
"""

from __future__ import annotations

import torch
from torch import nn

from genunlearn.device import place
from genunlearn.models.diffusers_view import ViewConfig


def row_prompts(attributes) -> list[str]:
    """The prompt of every condition row, in ``row_index`` order (mixed radix, vocab + 1 per attribute)."""
    from itertools import product

    from genunlearn.data.dataset import cond_to_prompt

    sizes = [len(a.values) + 1 for a in attributes]
    rows = product(*(range(s) for s in sizes))
    return ["" if all(v == len(a.values) for a, v in zip(attributes, r)) else cond_to_prompt(attributes, r) for r in rows]


def tokenize(tokenizer, prompts: list[str]) -> torch.Tensor:
    """Token ids padded to the tokenizer's length, as the Stable Diffusion pipeline pads them."""
    return tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids


class TextUNetView(nn.Module):
    def __init__(self, unet, attributes, tokens: torch.Tensor, *, num_train_timesteps: int, text_encoder=None, hidden: torch.Tensor | None = None):
        super().__init__()
        self.unet = unet
        self.num_train_timesteps = num_train_timesteps
        self.radix = [len(a.values) + 1 for a in attributes]
        self.register_buffer("tokens", tokens, persistent=False)
        self.text_encoder = text_encoder  # trained with the UNet (from scratch) or None (frozen table)
        self.register_buffer("hidden", hidden, persistent=False)
        self.config = ViewConfig(cond_vocab=tuple(len(a.values) for a in attributes))

    @classmethod
    def frozen(cls, unet, attributes, tokenizer, text_encoder, *, num_train_timesteps: int) -> "TextUNetView":
        """The view used for unlearning: hidden states of every row's prompt encoded once, frozen."""
        tokens = tokenize(tokenizer, row_prompts(attributes))
        with torch.no_grad():
            hidden = text_encoder(place(text_encoder, tokens)[0]).last_hidden_state
        return cls(unet, attributes, tokens, num_train_timesteps=num_train_timesteps, hidden=hidden)

    def row_index(self, cond: torch.Tensor | None, n: int, device) -> torch.Tensor:
        if cond is None:
            return torch.full((n,), len(self.tokens) - 1, device=device)
        index = torch.zeros(cond.shape[0], dtype=torch.long, device=cond.device)
        for a, size in enumerate(self.radix):
            index = index * size + cond[:, a]
        return index

    def encoder_hidden_states(self, cond: torch.Tensor | None, n: int, device) -> torch.Tensor:
        rows = self.row_index(cond, n, device)
        if self.text_encoder is None:
            return self.hidden[rows]
        return self.text_encoder(self.tokens[rows]).last_hidden_state

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        states = self.encoder_hidden_states(cond, x.shape[0], x.device).to(x.dtype)
        t = t.to(x.dtype).expand(x.shape[0])
        return self.unet(x, t * self.num_train_timesteps, encoder_hidden_states=states).sample
