"""A diffusers ``UNet2DConditionModel`` (Stable-Diffusion layout) behind ``net(z, t, cond)``.

genunlearn conditions on ``(N, A)`` rows (``data.dataset``); a text-to-image UNet conditions on the
text encoder's hidden states for a prompt. The boundary is here. A ``PromptTable`` holds the frozen
tokenizer and text encoder and the hidden states of every prompt it was asked for, encoded once
(no gradient) as ``StableDiffusionPipeline.encode_prompt`` encodes them, so any prompt is a condition:

* the task's rows come first: every row (each attribute a value or unspecified) written as its
  prompt ("a red circle", "a shape"; the all-unspecified row is the empty prompt, Stable Diffusion's
  unconditional input), so methods, probes and judges that speak attribute rows work unchanged; a
  pipeline with no task has one row, the empty prompt;
* any other prompt ("a round shape", "a photo of a cat") is added when first asked for
  (``prompt_cond``) and named by the row ``[-(j + 1), unspecified...]``, j its place in the table.

While a pipeline is trained from scratch (``sd_pipeline``) the rows' tokens are encoded live by the
text encoder, trained with the UNet; while one is unlearned the table is frozen, as the papers freeze
the text encoder and change the UNet only. Copies of a view (``copy.deepcopy``) share one table.

Times: genunlearn's t ∈ [0, 1) is timestep t·T (the scheduler's ``num_train_timesteps``).
"""

from __future__ import annotations

from itertools import product

import torch
from torch import nn

from genunlearn.errors import GenUnlearnError
from genunlearn.interop.diffusers.view import ViewConfig
from genunlearn.models.soft_prompt import encode_with_prefix, tokenize


def row_prompts(attributes) -> list[str]:
    """The prompt of every condition row, in ``row_index`` order (mixed radix, vocab + 1 per attribute)."""
    from genunlearn.data.dataset import cond_to_prompt

    sizes = [len(a.values) + 1 for a in attributes]
    rows = product(*(range(s) for s in sizes))
    return [
        "" if all(v == len(a.values) for a, v in zip(attributes, r)) else cond_to_prompt(attributes, r) for r in rows
    ]


def check_prompts(tokenizer, prompts) -> None:
    """One line for a prompt the tokenizer would truncate (the pipeline would silently cut it)."""
    limit = tokenizer.model_max_length
    for p in prompts:
        n = len(tokenizer(p, truncation=False, verbose=False).input_ids)
        if n > limit:
            raise GenUnlearnError(
                f"prompt {p!r} is {n} tokens; this pipeline's tokenizer takes at most {limit} (start and end tokens included)"
            )


class PromptTable:
    """Prompts → frozen text-encoder hidden states, encoded once each. Shared by every copy of the
    view that owns it (``__deepcopy__`` returns itself), so prompts added before a method copies the
    network are known to both copies and the encoder is never duplicated or trained."""

    def __init__(self, tokenizer, text_encoder, prompts: list[str]):
        self.tokenizer, self.text_encoder = tokenizer, text_encoder
        self.index: dict[str, int] = {}
        self.hidden = None
        self.add(prompts)

    def __deepcopy__(self, memo):
        return self

    def __len__(self) -> int:
        return len(self.index)

    def add(self, prompts: list[str]) -> list[int]:
        """Table positions of ``prompts``, encoding the new ones (in one batch, without gradients)."""
        new = [p for p in dict.fromkeys(prompts) if p not in self.index]
        if new:
            check_prompts(self.tokenizer, new)
            with torch.no_grad():
                start = self._append(
                    self.text_encoder(
                        tokenize(self.tokenizer, new).to(next(self.text_encoder.parameters()).device)
                    ).last_hidden_state
                )
            self.index.update({p: start + i for i, p in enumerate(new)})
        return [self.index[p] for p in prompts]

    def add_states(self, hidden: torch.Tensor) -> list[int]:
        """Table positions of hidden states given as they are (an attack's soft prompts): rows no text names."""
        start = self._append(hidden.detach())
        return list(range(start, start + len(hidden)))

    def _append(self, hidden: torch.Tensor) -> int:
        """Append rows of hidden states; the position of the first."""
        start = 0 if self.hidden is None else len(self.hidden)
        self.hidden = hidden if self.hidden is None else torch.cat([self.hidden, hidden.to(self.hidden.device)])
        return start

    def reencoded(self, text_encoder) -> "PromptTable":
        """The same prompts at the same positions, encoded by another text encoder (rows added as
        states stay as they are)."""
        out = PromptTable(self.tokenizer, text_encoder, [])
        out.index, out.hidden = dict(self.index), self.hidden.clone()
        with torch.no_grad():
            out.hidden[list(self.index.values())] = text_encoder(
                tokenize(self.tokenizer, list(self.index)).to(next(text_encoder.parameters()).device)
            ).last_hidden_state.to(out.hidden)
        return out


class TextUNetView(nn.Module):
    def __init__(
        self,
        unet,
        attributes,
        tokens: torch.Tensor | None = None,
        *,
        num_train_timesteps: int,
        text_encoder=None,
        table: PromptTable | None = None,
    ):
        super().__init__()
        self.unet = unet
        self.attributes = tuple(attributes)
        self.num_train_timesteps = num_train_timesteps
        self.radix = [len(a.values) + 1 for a in attributes]
        self.register_buffer(
            "rows", torch.tensor(list(product(*(range(s) for s in self.radix))), dtype=torch.long), persistent=False
        )
        self.register_buffer("tokens", tokens, persistent=False)
        self.text_encoder = text_encoder  # trained with the UNet (from scratch) or None (frozen table)
        self.table = table
        self.config = ViewConfig(cond_vocab=tuple(len(a.values) for a in attributes))

    @classmethod
    def frozen(cls, unet, attributes, tokenizer, text_encoder, *, num_train_timesteps: int) -> "TextUNetView":
        """The view used for unlearning: a frozen table, the task's rows first."""
        return cls(
            unet,
            attributes,
            num_train_timesteps=num_train_timesteps,
            table=PromptTable(tokenizer, text_encoder, row_prompts(attributes)),
        )

    def prompt_cond(self, prompts: list[str]) -> torch.Tensor:
        """``(N, A)`` condition rows of any prompts: a task row where the prompt is that row's prompt
        (so built-in rows and their numbers are unchanged), else the prompt's place in the table."""
        if self.table is None:
            raise GenUnlearnError(
                "free-text prompts need the frozen text encoder of a loaded pipeline (not one being trained)"
            )
        at = torch.tensor(self.table.add(list(prompts)), dtype=torch.long, device=self.rows.device)
        null = torch.tensor(self.config.cond_vocab, dtype=torch.long, device=self.rows.device).expand(len(at), -1)
        return torch.where(
            (at < len(self.rows))[:, None],
            self.rows[at.clamp_max(len(self.rows) - 1)],
            torch.cat([-(at[:, None] + 1), null[:, 1:]], 1),
        )

    def prompt_states(
        self, prompts: list[str], prefix: torch.Tensor | None = None, *, text_encoder=None
    ) -> torch.Tensor:
        """Hidden states ``(N, L, d)`` of ``prompts`` with the free token embeddings ``prefix`` ``(k, d)``
        after the start token (``soft_prompt``), differentiable in ``prefix`` and the encoder: the
        table's frozen one, or ``text_encoder`` (a method training its own)."""
        if self.table is None:
            raise GenUnlearnError(
                "soft prompts need the frozen text encoder of a loaded pipeline (not one being trained)"
            )
        return encode_with_prefix(self.table.tokenizer, text_encoder or self.table.text_encoder, list(prompts), prefix)

    def states_cond(self, states: torch.Tensor) -> torch.Tensor:
        """``(N, A)`` condition rows naming hidden states ``(N, L, d)`` themselves (e.g. ``prompt_states``
        of an attack), so the model's sampler and guidance take them like any prompt."""
        at = torch.tensor(self.table.add_states(states), dtype=torch.long, device=self.rows.device)
        null = torch.tensor(self.config.cond_vocab, dtype=torch.long, device=self.rows.device).expand(len(at), -1)
        return torch.cat([-(at[:, None] + 1), null[:, 1:]], 1)

    def with_text_encoder(self, text_encoder) -> "TextUNetView":
        """This UNet (shared) conditioned by another frozen text encoder: the table re-encoded by it."""
        return TextUNetView(
            self.unet,
            self.attributes,
            num_train_timesteps=self.num_train_timesteps,
            table=self.table.reencoded(text_encoder),
        )

    def row_index(self, cond: torch.Tensor | None, n: int, device) -> torch.Tensor:
        if cond is None:
            return torch.full((n,), len(self.rows) - 1, device=device)
        index = torch.zeros(cond.shape[0], dtype=torch.long, device=cond.device)
        for a, size in enumerate(self.radix):
            index = index * size + cond[:, a]
        return torch.where(cond[:, 0] < 0, -cond[:, 0] - 1, index)

    def encoder_hidden_states(self, cond: torch.Tensor | None, n: int, device) -> torch.Tensor:
        rows = self.row_index(cond, n, device)
        if self.text_encoder is None:
            return self.table.hidden[rows.to(self.table.hidden.device)].to(device)
        return self.text_encoder(self.tokens[rows]).last_hidden_state

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.denoise(x, t, self.encoder_hidden_states(cond, x.shape[0], x.device))

    def denoise(self, x: torch.Tensor, t: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """The UNet's output at genunlearn times ``t`` ∈ [0, 1) on given hidden states (``prompt_states``)."""
        t = t.to(x.dtype).expand(x.shape[0])
        return self.unet(x, t * self.num_train_timesteps, encoder_hidden_states=states.to(x.device, x.dtype)).sample
