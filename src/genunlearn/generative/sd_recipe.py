"""A tiny pipeline in exactly the Stable Diffusion v1.x layout, built and trained for a prompt task.

``genunlearn train --task shapes --model sd`` makes: a CLIP BPE tokenizer trained (``tokenizers``) on
the task's prompts, a small ``CLIPTextModel``, a small ``AutoencoderKL``, a ``UNet2DConditionModel``
with cross-attention and the Stable Diffusion scheduler (scaled-linear betas, ε-prediction). Two
stages, both in the one training loop: the autoencoder (reconstruction + a small KL term, as the
latent-diffusion autoencoders), then the UNet and the text encoder together on the autoencoder's
latents (posterior means × ``scaling_factor`` = 1 / their std, diffusers' convention), with the
task's prompt dropout so the empty prompt is the unconditional input for guidance. The result is a
``DiffusersModel`` (``interop.diffusers.folders``) saved with ``StableDiffusionPipeline.save_pretrained``: diffusers
loads it unchanged, and the same ``unlearn`` path serves a real Stable Diffusion folder.
"""

from __future__ import annotations

import math

import torch

from genunlearn.device import place, randn


def build_tokenizer(prompts: list[str], folder, reserve: list[str] = ()):
    """A CLIP tokenizer whose BPE vocabulary is learnt from ``prompts`` (each word one token).
    ``reserve``: prompts never trained on (held-out captions) that must still tokenize without
    truncation: their characters join the alphabet and their length bounds the tokenizer's.

    The trainer breaks frequency ties in hash order, so ids are renumbered canonically (special
    tokens, then by length and spelling): the same prompts give the same ids in every process."""
    from pathlib import Path

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    bpe = Tokenizer(models.BPE(unk_token=specials[1], end_of_word_suffix="</w>"))
    bpe.normalizer = normalizers.Lowercase()
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    alphabet = sorted(set("".join(reserve)) - set(" "))
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        special_tokens=specials,
        end_of_word_suffix="</w>",
        initial_alphabet=alphabet,
        show_progress=False,
    )
    bpe.train_from_iterator(sorted(set(prompts)), trainer)
    _, merges_file = bpe.model.save(str(folder))
    merges = [
        tuple(line.split()) for line in Path(merges_file).read_text().splitlines() if line and not line.startswith("#")
    ]
    tokens = sorted(set(bpe.get_vocab()) - set(specials), key=lambda t: (len(t), t))
    vocab = {t: i for i, t in enumerate(specials + tokens)}
    files = models.BPE(vocab=vocab, merges=merges, unk_token=specials[1], end_of_word_suffix="</w>").save(str(folder))
    longest = max(len(bpe.encode(p).ids) for p in [*prompts, *reserve]) + 2  # <start> tokens <end>
    return CLIPTokenizer(*files, model_max_length=longest)


def scheduler_for(process: dict):
    """The diffusers scheduler with the process's training convention (betas, prediction type)."""
    from diffusers import DDIMScheduler

    keys = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "prediction_type")
    return DDIMScheduler(**{k: process[k] for k in keys}, clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def build_components(recipe: dict, tokenizer, image_shape):
    """Untrained text encoder, autoencoder and UNet sized by ``recipe`` (the recipe's ``network``)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    te = recipe["text_encoder"]
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **te,
        )
    )
    c, h, _ = image_shape
    vae = AutoencoderKL(in_channels=c, out_channels=c, sample_size=h, **recipe["vae"])
    factor = 2 ** (len(recipe["vae"]["block_out_channels"]) - 1)
    unet = UNet2DConditionModel(
        sample_size=h // factor,
        in_channels=recipe["vae"]["latent_channels"],
        out_channels=recipe["vae"]["latent_channels"],
        cross_attention_dim=te["hidden_size"],
        **recipe["unet"],
    )
    return text_encoder, vae, unet


class CaptionBank:
    """Every training caption of every condition row, for a task with many per row (``caption_pool``):
    ``texts`` is the row prompts (so a row index is still its own prompt) followed by each row's
    captions; ``sample`` turns condition rows into one drawn caption each, named as the text view
    names any prompt (``[-(j + 1), unspecified...]``, ``interop.diffusers.text_unet``)."""

    def __init__(self, attributes, pool):
        from itertools import product

        from genunlearn.interop.diffusers.text_unet import row_prompts

        self.texts, start, count, heldout = row_prompts(attributes), [], [], set()
        for row in product(*(range(len(a.values) + 1) for a in attributes)):
            captions = pool(row, "train")
            start.append(len(self.texts))
            count.append(len(captions))
            self.texts += captions
            heldout.update(pool(row, "heldout"))
        self.heldout = sorted(heldout)
        self.start, self.count = torch.tensor(start), torch.tensor(count)

    def sample(self, net, cond: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        rows = net.row_index(cond, len(cond), cond.device).cpu()
        pick = self.start[rows] + (
            torch.rand(len(rows), generator=g, device="cpu") * self.count[rows]
        ).long().clamp_max(self.count[rows] - 1)
        return torch.cat([-(pick[:, None] + 1), torch.tensor(net.config.cond_vocab[1:]).expand(len(pick), -1)], 1).to(
            cond.device
        )


class Reconstruction(torch.nn.Module):
    """encode → reparameterised latent → decode as one ``forward``, so that a distributed wrapper sees
    the call and averages the autoencoder's gradients across processes."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction, KL(q(z|x) ‖ N(0, I)) per image, latent elements per image)."""
        posterior = self.vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * randn(posterior.mean.shape, generator, device=posterior.mean.device)
        return self.vae.decode(z).sample, posterior.kl(), math.prod(posterior.mean.shape[1:])


def train_autoencoder(vae, x: torch.Tensor, cfg: dict, *, out_dir, resume: bool, progress: bool, label: str):
    """Reconstruction MSE + ``kl_weight`` · KL(q(z|x) ‖ N(0, I)) per element; trains ``vae`` in place."""
    from genunlearn.training import TrainConfig, train

    batch, kl_weight = cfg["batch_size"], cfg["kl_weight"]

    def step_loss(model, g):
        xb = place(model, x[torch.randint(len(x), (batch,), generator=g)])[0]
        recon, kl, elements = model(xb, g)
        return (recon - xb).pow(2).mean() + kl_weight * kl.mean() / elements

    return train(
        Reconstruction(vae),
        step_loss,
        TrainConfig(**cfg["train"]),
        out_dir=out_dir,
        resume=resume,
        desc=f"{label} autoencoder",
        progress=progress,
    )


def task_tokenizer(data, bank):
    """A CLIP BPE tokenizer learnt from the task's captions (or row prompts), held-out words reserved;
    read into memory (it is saved with the pipeline)."""
    import tempfile

    from genunlearn.interop.diffusers.text_unet import row_prompts

    with tempfile.TemporaryDirectory(prefix="genunlearn-tokenizer-") as folder:
        texts = bank.texts if bank else row_prompts(data.attributes)
        return build_tokenizer([p for p in texts if p], folder, reserve=bank.heldout if bank else ())


def scaled_latents(vae, x: torch.Tensor) -> torch.Tensor:
    """The trained autoencoder frozen, its latents of ``x`` scaled to unit standard deviation (the
    factor recorded in its config, as Stable Diffusion's is)."""
    from genunlearn.interop.diffusers.folders import encode_latents

    vae.eval().requires_grad_(False)
    latents = encode_latents(vae, x)
    vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    return latents * vae.config.scaling_factor


def latent_loss(process, net, z: torch.Tensor, cond: torch.Tensor, batch: int, bank):
    """The UNet stage's step loss on a batch of latents: the rows' conditions, or (captioned task)
    condition dropout and then a caption drawn for what is left of each row."""
    from genunlearn.processes.conditioning import drop_condition

    def step_loss(model, g):
        idx = torch.randint(len(z), (batch,), generator=g)
        if bank is None:
            return process.loss(model, z[idx], cond[idx], generator=g).mean()
        dropped = drop_condition(net, cond[idx], process.cond_dropout, process.attr_dropout, g)
        return process.loss(model, z[idx], bank.sample(net, dropped, g), generator=g, drop_cond=False).mean()

    return step_loss


def train_sd(job, recipe, data, meta: dict, *, out_dir=None, resume: bool = False, progress: bool = True):
    """Both stages for ``job`` on ``data`` (already the retain split for a retrain); a ``DiffusersModel``."""
    from pathlib import Path

    from genunlearn.data import caption_pool
    from genunlearn.interop.diffusers.folders import DiffusersModel
    from genunlearn.models.soft_prompt import tokenize
    from genunlearn.interop.diffusers.text_unet import TextUNetView, row_prompts
    from genunlearn.processes import build_process
    from genunlearn.training import TrainConfig, train

    torch.manual_seed(job.seed)
    stage_dir = lambda name: Path(out_dir) / name if out_dir is not None else None  # checkpoints per stage
    pool = caption_pool(job.task)
    bank = CaptionBank(data.attributes, pool) if pool else None
    tokenizer = task_tokenizer(data, bank)
    text_encoder, vae, unet = build_components(recipe.network, tokenizer, data.sample_shape)
    scheduler = scheduler_for(recipe.process)
    label = f"{'retrain' if job.forget else 'base'} {job.task}/sd"
    ae = train_autoencoder(
        vae,
        data.x,
        recipe.network["autoencoder_train"],
        out_dir=stage_dir("vae"),
        resume=resume,
        progress=progress,
        label=label,
    )
    z = scaled_latents(vae, data.x)
    process = build_process(recipe.process)
    net = TextUNetView(
        unet,
        data.attributes,
        tokenize(tokenizer, bank.texts if bank else row_prompts(data.attributes)),
        num_train_timesteps=scheduler.config.num_train_timesteps,
        text_encoder=text_encoder,
    )
    step_loss = latent_loss(process, net, z, data.cond(), min(recipe.batch_size, len(data)), bank)
    tc = TrainConfig(**recipe.train)
    result = train(net, step_loss, tc, out_dir=stage_dir("unet"), resume=resume, desc=label, progress=progress)
    net.eval()
    # encoded once into the view's states; the UNet stays trainable, as when the pipeline is loaded
    text_encoder.requires_grad_(False)
    view = TextUNetView.frozen(
        unet, data.attributes, tokenizer, text_encoder, num_train_timesteps=scheduler.config.num_train_timesteps
    )
    components = {"vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "scheduler": scheduler}
    info = {
        "train_seconds": round(ae.seconds + result.seconds, 3),
        "steps": result.steps,
        "autoencoder_steps": ae.steps,
    }
    return DiffusersModel.from_components(view, process, meta, components, info=info)
