"""Base recipes: how the library trains a generative model for each built-in task.

The same recipe trains the base model (all data) and the retrain gold standard (retain split
only), so the two differ in their data and nothing else. Results are cached by a hash of the
recipe, task, forget request, steps and seed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from genunlearn.io.cache import cached, config_hash
from genunlearn.errors import GenUnlearnError
from genunlearn.extras import require
from genunlearn.forget.request import ForgetRequest

MODEL_KINDS = ("flow", "diffusion", "sd")


@dataclass(frozen=True)
class Recipe:
    network: dict
    process: dict
    train: dict  # TrainConfig fields
    batch_size: int
    conditional: bool = True


def _conv_unet(mult: tuple) -> dict:
    return {"_class_name": "ConvUNet", "in_channels": 3, "base_channels": 32, "channel_mult": mult, "emb_dim": 128}


_MLP = {"_class_name": "MLPNet", "dim": 2, "hidden": 256, "depth": 4}  # dim is set from the data
_PIXEL_MLP = {"_class_name": "MLPNet", "dim": 64, "hidden": 512, "depth": 4}
UNET2D = {
    "_class_name": "DiffusersUNet",
    "in_channels": 1,
    "sample_size": 8,
    "block_out_channels": (32, 64),
}  # --network unet2d: diffusers' UNet2DModel (channels and size set from the data), exportable as a diffusers pipeline
NETWORKS = ("builtin", "unet2d")
_TRAIN = {
    "optimizer": "adamw",
    "grad_clip": 1.0,
    "lr_schedule": "cosine",
    "warmup": 100,
    "ema_decay": 0.999,
    "log_every": 50,
}
_FLOW = {"name": "flow", "solver": "midpoint"}
_DIFFUSION = {"name": "diffusion", "sampler": "ddim", "eta": 1.0, "clip_sample": False}

RECIPES: dict[tuple[str, str], Recipe] = {
    ("toy", "flow"): Recipe(
        _MLP, {**_FLOW, "steps": 50}, {**_TRAIN, "steps": 3000, "lr": 2e-3}, 512, conditional=False
    ),
    ("toy", "diffusion"): Recipe(
        _MLP,
        {**_DIFFUSION, "steps": 100, "guidance": 1.0},
        {**_TRAIN, "steps": 3000, "lr": 2e-3},
        512,
        conditional=False,
    ),
    ("digits", "flow"): Recipe(
        _PIXEL_MLP, {**_FLOW, "steps": 20, "guidance": 1.5}, {**_TRAIN, "steps": 4000, "lr": 2e-3}, 128
    ),
    ("digits", "diffusion"): Recipe(
        _PIXEL_MLP, {**_DIFFUSION, "steps": 50, "guidance": 1.5}, {**_TRAIN, "steps": 4000, "lr": 2e-3}, 128
    ),
    # measured (50/prompt): shape and colour right on 97.0 % of full prompts (guidance 2: 94.8 %); EMA 0.998 leaves 0.4 % of the initial weights after 2800 steps
    ("shapes", "flow"): Recipe(
        _conv_unet((1, 2, 2)),
        {**_FLOW, "steps": 20, "guidance": 3.0, "attr_dropout": 0.3},
        {**_TRAIN, "steps": 2800, "lr": 2e-3, "ema_decay": 0.998},
        64,
    ),
    # f-DMU base (measured, 16/prompt, DDIM 25, guidance 3): prompt accuracy 94 %, circle prompts 100 % circles; the former 2000 steps / EMA 0.999 (13 % of the initial weights left in the EMA) / guidance 2 gave 36 %
    ("shapes", "diffusion"): Recipe(
        _conv_unet((1, 2, 2)),
        {**_DIFFUSION, "steps": 25, "guidance": 3.0, "attr_dropout": 0.3},
        {**_TRAIN, "steps": 3000, "lr": 2e-3, "ema_decay": 0.998},
        64,
    ),
}


# Stable Diffusion v1.x layout, tiny (``generative.sd_recipe``): SD's scheduler (scaled-linear betas 0.00085–0.012, ε),
# a 2-layer CLIP text encoder, an AutoencoderKL with one 2× downsampling (16×16×3 → 8×8×4), a cross-attention UNet
_SD_NETWORK = {
    "text_encoder": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
    "vae": {
        "down_block_types": ["DownEncoderBlock2D"] * 2,
        "up_block_types": ["UpDecoderBlock2D"] * 2,
        "block_out_channels": [16, 32],
        "layers_per_block": 1,
        "latent_channels": 4,
        "norm_num_groups": 8,
        "mid_block_add_attention": False,
    },
    "unet": {
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "block_out_channels": [32, 64],
        "layers_per_block": 1,
        "attention_head_dim": 8,
        "norm_num_groups": 16,
    },
    "autoencoder_train": {
        "batch_size": 64,
        "kl_weight": 1e-6,
        "train": {**_TRAIN, "steps": 1500, "lr": 1e-3, "ema_decay": None},
    },
}
_SD_PROCESS = {
    **_DIFFUSION,
    "steps": 25,
    "guidance": 3.0,
    "attr_dropout": 0.3,
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
}
RECIPES[("shapes", "sd")] = Recipe(
    _SD_NETWORK, _SD_PROCESS, {**_TRAIN, "steps": 3000, "lr": 1e-3, "ema_decay": 0.998}, 64
)
# canvas (32×32×3 → 16×16×4 latents): a three-level UNet with cross-attention at 8×8 and 4×4 (as cheap per step as
# two levels with it at 16×16); single-thread CPU per step of 64: autoencoder 0.52 s, UNet 0.73 s (shapes: 0.15 s, 0.31 s),
# so 2.6× the work of the shapes pipeline (490 s on 2 cores) per step.
# Measured at 3000 steps (train captions, 1 per full row; the autoencoder's reconstructions are judged 100 % right, so the
# UNet and text encoder limit): every attribute right on 37.8 % at guidance 3, 46.5 % at 6, 44.8 % at 10, with the
# objects confused (triangle drawn as a crescent, heart as a circle) and the loss still falling: 3× the steps, guidance 6
_CANVAS_UNET = {
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [32, 64, 64],
}
RECIPES[("canvas", "sd")] = Recipe(
    {**_SD_NETWORK, "unet": {**_SD_NETWORK["unet"], **_CANVAS_UNET}},
    {**_SD_PROCESS, "guidance": 6.0},
    {**_TRAIN, "steps": 9000, "lr": 1e-3, "ema_decay": 0.998},
    64,
)


def recipe_for(task: str, kind: str) -> Recipe:
    from genunlearn.data import TOY_TASKS

    if kind not in MODEL_KINDS:
        raise GenUnlearnError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    family = "toy" if task in TOY_TASKS else task
    if kind == "sd":
        for module in ("transformers", "tokenizers"):
            require(module, "a Stable-Diffusion-layout pipeline (--model sd)")
    if kind == "sd" and (family, kind) not in RECIPES:
        family = "shapes"  # other image tasks: the same tiny pipeline, channels and size set from the data
    if (family, kind) not in RECIPES:
        family = "digits"  # user image data: the digits recipe, channels set from the data
    return RECIPES[(family, kind)]


@dataclass
class TrainJob:
    """Everything that determines a trained generative model (and its cache key)."""

    task: str
    kind: str = "flow"
    forget: ForgetRequest | None = None
    steps: int | None = None
    seed: int = 0
    overrides: dict = field(default_factory=dict)  # recipe field overrides, e.g. {"conditional": False}

    def recipe(self) -> Recipe:
        r = replace(recipe_for(self.task, self.kind), **self.overrides)
        ae = r.network.get("autoencoder_train")
        if self.steps and ae:  # --steps scales both stages of a latent model by the same factor
            n = max(1, round(ae["train"]["steps"] * self.steps / r.train["steps"]))
            r = replace(r, network={**r.network, "autoencoder_train": {**ae, "train": {**ae["train"], "steps": n}}})
        train = {**r.train, **({"steps": self.steps} if self.steps else {}), "seed": self.seed}
        return replace(r, train=train)

    def key(self) -> str:
        from genunlearn.data.fingerprint import task_fingerprint

        return config_hash(
            {
                "task": self.task,
                "data": task_fingerprint(self.task),
                "kind": self.kind,
                "forget": self.forget.spec() if self.forget else None,
                "recipe": asdict(self.recipe()),
            }
        )


def train_generative(job: TrainJob, *, data=None, out_dir=None, resume: bool = False, progress: bool = True):
    """Train a model by its recipe on the task's data (the retain split if ``job.forget``);
    ``data`` stands in for the task's training split (a benchmark that grows it), same attributes."""
    import torch

    from genunlearn.data import load_dataset
    from genunlearn.generative.model import GenerativeModel
    from genunlearn.models import build_network
    from genunlearn.processes import build_process
    from genunlearn.training import train_from_scratch

    data = load_dataset(job.task) if data is None else data
    meta = data.meta()
    if job.forget is not None:
        _, data = data.split(job.forget)
    recipe = job.recipe()
    if job.kind == "sd":
        from genunlearn.generative.sd_recipe import train_sd

        model = train_sd(job, recipe, data, meta, out_dir=out_dir, resume=resume, progress=progress)
        model.info = {**model.info, **_job_info(job, recipe), "role": "retrain" if job.forget else "base"}
        return model
    torch.manual_seed(job.seed)
    net_cfg = dict(recipe.network)
    if "in_channels" in net_cfg:
        net_cfg["in_channels"] = data.sample_shape[0]
    if "dim" in net_cfg:
        net_cfg["dim"] = math.prod(data.sample_shape)
    if "sample_size" in net_cfg:
        if data.kind != "images":
            raise GenUnlearnError(f"{net_cfg['_class_name']} is an image network; {job.task} holds {data.kind}")
        net_cfg["sample_size"] = data.sample_shape[-1]
    net_cfg["cond_vocab"] = data.cond_vocab if recipe.conditional else ()
    net = build_network(net_cfg)
    process = build_process(recipe.process)
    x, cond = data.x, (data.cond() if recipe.conditional else None)
    batch = min(recipe.batch_size, len(data))

    def step_loss(model, g):
        idx = torch.randint(len(x), (batch,), generator=g)
        return process.loss(model, x[idx], None if cond is None else cond[idx], generator=g).mean()

    role = "retrain" if job.forget else "base"
    trained = train_from_scratch(
        net, step_loss, recipe.train, f"{role} {job.task}/{job.kind}", out_dir=out_dir, resume=resume, progress=progress
    )
    info = {"model": job.kind, "role": role, **trained, **_job_info(job, recipe)}
    return GenerativeModel(net, process, meta, info)


def _job_info(job: TrainJob, recipe: Recipe) -> dict:
    """What every trained model records about the job that made it."""
    return {
        "task": job.task,
        "forget": job.forget.spec() if job.forget else None,
        "seed": job.seed,
        "overrides": job.overrides,
        "recipe": asdict(recipe),
        "key": job.key(),
        "base_key": replace(job, forget=None).key(),  # the model this one is judged against
        **({"layout": "sd"} if job.kind == "sd" else {}),
    }


def train_cached(job: TrainJob, *, progress: bool = True, use_cache: bool = True):
    """Load the model for ``job`` from the cache, or train and cache it."""
    from genunlearn.data.fingerprint import data_identity
    from genunlearn.generative.model import GenerativeModel

    load = GenerativeModel.from_pretrained
    if job.kind == "sd":
        from genunlearn.interop.diffusers.folders import DiffusersModel

        load = DiffusersModel.from_pretrained
    return cached(
        job.key(),
        lambda work: train_generative(job, out_dir=work, resume=True, progress=progress),
        load,
        use_cache=use_cache,
        data=data_identity(job.task),
    )
