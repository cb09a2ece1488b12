"""diffusers folders in and out: a user's pipeline (``model_index.json``) or model folder (+ a
scheduler folder) becomes a ``GenerativeModel`` (``DiffusersModel``), and leaves in the format it
came in, loadable by the user's own diffusers code.

Supported: ``UNet2DModel`` (any block layout; class-conditional through ``num_class_embeds``, with or
without a null class, or unconditional) with a DDPM-family scheduler (any ``beta_schedule`` of
``processes.diffusion.BETA_SCHEDULES``, ``prediction_type`` epsilon / v_prediction / sample) or
``FlowMatchEulerDiscreteScheduler`` (σ convention and ``shift``); and the Stable Diffusion v1.x layout
(``UNet2DConditionModel`` + ``CLIPTextModel`` + ``CLIPTokenizer`` + ``AutoencoderKL`` + a DDPM-family
scheduler), which runs in latent space with prompts as text (``interop.diffusers.text_unet``; a pipeline loaded
without ``--task`` has prompts only, no training data). On
output only the changed component is rewritten (the UNet: ``diffusion_pytorch_model.safetensors`` +
``config.json``; the text encoder after a method that trains it); every other component is copied
unchanged; ``genunlearn.json`` beside it records the task, the data description, the process (e.g. a
one-step generator's t*) and what was done. Weights are read from safetensors only.
"""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from genunlearn.io.weights import atomic_dir, header, read_json, write_json
from genunlearn.data.dataset import PROMPT_ATTRIBUTES
from genunlearn.device import current, place
from genunlearn.errors import GenUnlearnError
from genunlearn.extras import require
from genunlearn.generative.model import GenerativeModel
from genunlearn.processes import build_process

RECORD = "genunlearn.json"
UNETS = ("UNet2DModel", "UNet2DConditionModel")
DIFFUSION_SCHEDULERS = (
    "DDPMScheduler",
    "DDIMScheduler",
    "DDPMParallelScheduler",
    "DDIMParallelScheduler",
    "PNDMScheduler",
    "DPMSolverMultistepScheduler",
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "UniPCMultistepScheduler",
    "HeunDiscreteScheduler",
)
FLOW_SCHEDULERS = ("FlowMatchEulerDiscreteScheduler",)
PROMPTS = "prompts"  # the data name of a text-to-image pipeline loaded without a task


def _config(folder: Path) -> dict:
    path = folder / "config.json"
    return read_json(path) if path.is_file() else {}


def is_diffusers_folder(path) -> bool:
    """A diffusers pipeline folder or a diffusers model folder (reads JSON only)."""
    path = Path(path)
    return (
        (path / "model_index.json").is_file() or _config(path).get("_class_name") in UNETS or (path / RECORD).is_file()
    )


def _scheduler_config(folder: Path) -> dict:
    path = folder / "scheduler_config.json"
    if not path.is_file():
        raise GenUnlearnError(
            f"{folder}: no scheduler_config.json (pass the folder written by the scheduler's save_pretrained)"
        )
    return read_json(path)


def process_from_scheduler(cfg: dict, *, has_null: bool):
    """The genunlearn process that reproduces a diffusers scheduler's training convention."""
    from genunlearn.processes.diffusion import Diffusion
    from genunlearn.processes.flow_matching import FlowMatching

    name = cfg.get("_class_name")
    dropout = 0.1 if has_null else 0.0  # condition dropout needs a null class
    if name in FLOW_SCHEDULERS:
        if cfg.get("use_dynamic_shifting"):
            raise GenUnlearnError(
                f"{name} with use_dynamic_shifting is not supported (resolution-dependent shift); set a fixed shift"
            )
        return FlowMatching(
            solver="euler",
            steps=28,
            guidance=1.0,
            cond_dropout=dropout,
            shift=float(cfg.get("shift", 1.0)),
            grid="diffusers",
            num_train_timesteps=int(cfg.get("num_train_timesteps", 1000)),
        )
    if name in DIFFUSION_SCHEDULERS:
        if cfg.get("trained_betas") is not None:
            raise GenUnlearnError(
                f"{name} with trained_betas is not supported; supported beta_schedule values: linear, scaled_linear, squaredcos_cap_v2"
            )
        return Diffusion(
            num_train_timesteps=int(cfg.get("num_train_timesteps", 1000)),
            beta_start=float(cfg.get("beta_start", 1e-4)),
            beta_end=float(cfg.get("beta_end", 0.02)),
            beta_schedule=cfg.get("beta_schedule", "linear"),
            prediction_type=cfg.get("prediction_type", "epsilon"),
            clip_sample=bool(cfg.get("clip_sample", False)),
            sampler="ddim",
            steps=50,
            eta=0.0,
            guidance=1.0,
            cond_dropout=dropout,
        )
    raise GenUnlearnError(
        f"unsupported scheduler {name!r}; supported: {', '.join(DIFFUSION_SCHEDULERS + FLOW_SCHEDULERS)}"
    )


@dataclass
class DiffusersModel(GenerativeModel):
    """A generative model whose folder is a diffusers pipeline or model folder. A Stable Diffusion
    layout runs in latent space: ``sample_shape`` is the latent shape, ``encode``/``decode`` go
    through its autoencoder (``components["vae"]``)."""

    layout: dict = field(
        default_factory=dict
    )  # {"kind": "pipeline"|"model", "source": path|None, "unet": subfolder, "scheduler": config}
    components: dict = field(default_factory=dict)  # a latent model's vae, text_encoder, tokenizer, scheduler
    changed: tuple[
        str, ...
    ] = ()  # components changed in memory ("unet", "text_encoder"): what a save rewrites (none: the UNet)

    @classmethod
    def from_pretrained(cls, path, *, task: str | None = None, scheduler: str | None = None) -> "DiffusersModel":
        """Load a diffusers folder. ``task`` names the data (built-in task, image folder or .npz)
        unless the folder's ``genunlearn.json`` does; ``scheduler`` is the scheduler folder of a
        bare model folder."""
        from genunlearn.data import load_dataset

        path = Path(path)
        record = read_json(path / RECORD) if (path / RECORD).is_file() else {}
        layout, denoiser = _layout(path, record, scheduler)
        task = task or record.get("info", {}).get("task")
        text = denoiser == "UNet2DConditionModel"
        if task is None and not text:
            raise GenUnlearnError(
                f"{path}: a diffusers model does not say what data it models: pass --task (a built-in task, an image folder or an .npz)"
            )
        data = load_dataset(task) if task is not None else None
        if data is not None and data.kind != "images":
            raise GenUnlearnError(f"{task}: a {denoiser} generates images; this task holds 2D points")
        if text:
            net, shapes, components = _load_text_to_image(
                path, layout, PROMPT_ATTRIBUTES if data is None else data.attributes
            )
        else:
            net, shapes, components = _load_unet(path, layout, data)
        described = (
            data.meta()
            if data is not None
            else {
                "name": PROMPTS,
                "kind": "images",
                "attributes": [{"name": a.name, "values": []} for a in PROMPT_ATTRIBUTES],
            }
        )
        meta = {
            **described,
            **shapes,
            "data_shape": list(data.sample_shape if data is not None else shapes["image_shape"]),
        }
        process = (
            build_process(record["process"])
            if "process" in record
            else process_from_scheduler(layout["scheduler"], has_null=getattr(net, "has_null", True))
        )
        info = {
            "model": process.name,
            "role": "base",
            "format": f"diffusers-{layout['kind']}",
            **record.get("info", {}),
        }
        if task is not None:
            info["task"] = str(Path(task).resolve()) if Path(task).exists() else task
        return cls(net, process, meta, info, layout, components).to(current().device)

    @property
    def has_task(self) -> bool:
        """Whether data stand behind the model (a built-in task, a folder, an .npz); a text-to-image
        pipeline loaded without ``--task`` has prompts only."""
        return "task" in self.info

    def prompt_cond(self, prompts: list[str]) -> torch.Tensor:
        """Condition rows of any prompts, encoded by the pipeline's own text encoder (``TextUNetView``)."""
        if not hasattr(self.net, "prompt_cond"):
            raise GenUnlearnError(
                "free-text prompts need a text-to-image pipeline (UNet2DConditionModel + CLIPTextModel); this model conditions on class ids"
            )
        return self.net.prompt_cond(prompts)

    @classmethod
    def from_components(cls, net, process, data: dict, components: dict, *, info: dict) -> "DiffusersModel":
        """A Stable-Diffusion-layout model built in memory (``sd_pipeline``); saved whole."""
        layout = {"kind": "pipeline", "source": None, "unet": "unet", "scheduler": dict(components["scheduler"].config)}
        meta = {**data, **_latent_shapes(net.unet, components["vae"]), "data_shape": list(data["sample_shape"])}
        return cls(
            net, process, meta, {"model": process.name, "format": "diffusers-pipeline", **info}, layout, components
        )

    def with_net(self, net, **kw) -> "DiffusersModel":
        """This model with another UNet view (``GenerativeModel.with_net``); a save rewrites the UNet."""
        return replace(super().with_net(net, **kw), changed=tuple(dict.fromkeys([*self.changed, "unet"])))

    def with_text_encoder(self, text_encoder, *, info: dict) -> "DiffusersModel":
        """This pipeline with another text encoder (the same UNet, its prompt table re-encoded); a save
        rewrites ``text_encoder/``."""
        net = self.net.with_text_encoder(text_encoder)
        return replace(
            self,
            net=net,
            components={**self.components, "text_encoder": text_encoder},
            info=info,
            changed=tuple(dict.fromkeys([*self.changed, "text_encoder"])),
        )

    # --- latent space (Stable Diffusion layout) -------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, ...]:
        """The images it generates (the autoencoder's side of a latent model)."""
        return tuple(self.data.get("image_shape", self.sample_shape))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        from genunlearn.data.dataset import fit_images

        if "vae" not in self.components:
            return super().encode(x)
        vae = self.components["vae"]
        return encode_latents(vae, fit_images(x, self.image_shape)) * vae.config.scaling_factor

    def in_model_space(self, data):
        from dataclasses import replace

        return replace(data, x=self.encode(data.x)) if "vae" in self.components else super().in_model_space(data)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if "vae" not in self.components:
            return z
        vae = self.components["vae"]
        with torch.no_grad():
            return vae.decode(place(vae, z)[0] / vae.config.scaling_factor).sample.clamp(-1, 1)

    def to(self, where) -> "DiffusersModel":
        """The UNet and the autoencoder on ``where`` (the text encoder's states are the view's buffers)."""
        super().to(where)
        if "vae" in self.components:
            self.components["vae"].to(where)
        return self

    def save_pretrained(self, path) -> None:
        """The same format as the source: the changed components rewritten (the UNet unless another
        changed), the others copied unchanged, the record in ``genunlearn.json``. A model built in
        memory writes every component."""
        source = self.layout["source"]
        with atomic_dir(path) as tmp:
            if source is None:
                copied = []
                with quiet():
                    _pipeline(self).save_pretrained(tmp, safe_serialization=True)
                rewritten = ["*"]
            else:
                source = Path(source)
                modules = {self.layout["unet"]: self.net.unet, "text_encoder": self.components.get("text_encoder")}
                rewritten = [self.layout["unet"] if c == "unet" else c for c in self.changed or ("unet",)]
                copied = []
                if self.layout["kind"] == "pipeline":
                    shutil.copy2(source / "model_index.json", tmp / "model_index.json")
                    for item in sorted(source.iterdir()):
                        if item.is_dir() and item.name not in rewritten:
                            shutil.copytree(item, tmp / item.name)
                            copied.append(item.name)
                    for name in rewritten:
                        with quiet():
                            modules[name].save_pretrained(tmp / name, safe_serialization=True)
                else:
                    self.net.unet.save_pretrained(tmp, safe_serialization=True)
                    rewritten = ["."]
            record = header(
                "generative",
                layout={k: v for k, v in self.layout.items() if k != "source"},
                rewritten=rewritten,
                copied=copied,
                process=self.process.config(),
                data=self.data,
                info=self.info,
            )
            write_json(tmp / RECORD, record)

    def extra_config(self) -> dict:
        return {"process": self.process.config(), "layout": self.layout}


def encode_latents(vae, x: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """An autoencoder's posterior means of images (unscaled), in batches, without gradients."""
    with torch.no_grad():
        return torch.cat(
            [vae.encode(place(vae, x[i : i + batch])[0]).latent_dist.mean.to(x.device) for i in range(0, len(x), batch)]
        )


@contextmanager
def quiet():
    """transformers' per-load progress bars and its notes about optional image processors off
    (genunlearn prints its own one line per stage); nothing to silence without the ``sd`` extra."""
    try:
        from transformers.utils import logging
    except ImportError:
        yield
        return

    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def _pipeline(model: DiffusersModel):
    """The Stable Diffusion pipeline object of an in-memory model (no safety checker)."""
    with quiet():
        from diffusers import StableDiffusionPipeline

    c = model.components
    return StableDiffusionPipeline(
        vae=c["vae"],
        text_encoder=c["text_encoder"],
        tokenizer=c["tokenizer"],
        unet=model.net.unet,
        scheduler=c["scheduler"],
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _layout(path: Path, record: dict, scheduler) -> tuple[dict, str]:
    """Where the denoiser and the scheduler config are, and the denoiser's class name."""
    if (path / "model_index.json").is_file():
        index = read_json(path / "model_index.json")
        entries = {k: v for k, v in index.items() if isinstance(v, list) and len(v) == 2}
        unet_name = next((k for k, v in entries.items() if v[1] in UNETS), None)
        if unet_name is None:
            found = ", ".join(f"{k}: {v[1]}" for k, v in entries.items())
            raise GenUnlearnError(
                f"{path}: pipeline {index.get('_class_name')!r} has no supported denoiser (found {found}; supported: {', '.join(UNETS)})"
            )
        denoiser = entries[unet_name][1]
        if denoiser == "UNet2DConditionModel":
            missing = [k for k in ("text_encoder", "tokenizer", "vae") if not (entries.get(k) or [None, None])[1]]
            if missing:
                raise GenUnlearnError(
                    f"{path}: a UNet2DConditionModel pipeline needs the Stable Diffusion components; missing {', '.join(missing)}"
                )
        sched = _scheduler_config(path / "scheduler") if scheduler is None else _scheduler_config(Path(scheduler))
        return {"kind": "pipeline", "source": str(path.resolve()), "unet": unet_name, "scheduler": sched}, denoiser
    cls_name = _config(path).get("_class_name")
    if cls_name != "UNet2DModel":
        raise GenUnlearnError(
            f"{path}: not a genunlearn model, a diffusers pipeline (model_index.json) or a supported diffusers model folder (UNet2DModel; a UNet2DConditionModel needs its pipeline folder)"
        )
    if scheduler is None and "scheduler" not in record.get("layout", {}):
        raise GenUnlearnError(
            f"{path}: a bare {cls_name} folder needs its scheduler: pass --scheduler SCHEDULER_FOLDER"
        )
    sched = _scheduler_config(Path(scheduler)) if scheduler is not None else record["layout"]["scheduler"]
    return {"kind": "model", "source": str(path.resolve()), "unet": "", "scheduler": sched}, cls_name


def _from_pretrained(cls, folder: Path, what: str, **kw):
    """``cls.from_pretrained(folder)`` with diffusers' and transformers' errors as one line."""
    try:
        with quiet():
            return cls.from_pretrained(folder, **kw)
    except (OSError, ValueError, EnvironmentError) as e:
        raise GenUnlearnError(f"{folder}: cannot load the {what} ({str(e).splitlines()[0]})") from None


def _load_unet(path: Path, layout: dict, data):
    from diffusers import UNet2DModel

    from genunlearn.interop.diffusers.view import UNetView

    unet = _from_pretrained(UNet2DModel, path / layout["unet"], "UNet2DModel", use_safetensors=True).eval()
    num_classes = data.num_classes if unet.config.num_class_embeds else None
    flow = layout["scheduler"].get("_class_name") in FLOW_SCHEDULERS
    T = int(layout["scheduler"].get("num_train_timesteps", 1000))
    return (
        UNetView(unet, num_train_timesteps=T, flow=flow, num_classes=num_classes),
        {"sample_shape": [unet.config.in_channels, *_size(unet)]},
        {},
    )


def _load_text_to_image(path: Path, layout: dict, attributes):
    """Stable Diffusion v1.x layout: frozen text encoder (a table of hidden states: the task's row
    prompts, then any prompt asked for; ``TextUNetView``), autoencoder for latents, trainable UNet."""
    require("transformers", f"{path}: a Stable-Diffusion-layout pipeline")
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from genunlearn.interop.diffusers.text_unet import TextUNetView

    if layout["scheduler"].get("_class_name") in FLOW_SCHEDULERS:
        raise GenUnlearnError(f"{path}: a UNet2DConditionModel with a flow-matching scheduler is not supported")
    unet = _from_pretrained(
        UNet2DConditionModel, path / layout["unet"], "UNet2DConditionModel", use_safetensors=True
    ).eval()
    vae = (
        _from_pretrained(AutoencoderKL, path / "vae", "AutoencoderKL", use_safetensors=True)
        .eval()
        .requires_grad_(False)
    )
    text_encoder = (
        _from_pretrained(CLIPTextModel, path / "text_encoder", "CLIPTextModel", use_safetensors=True)
        .eval()
        .requires_grad_(False)
    )
    tokenizer = _from_pretrained(CLIPTokenizer, path / "tokenizer", "CLIPTokenizer")
    T = int(layout["scheduler"].get("num_train_timesteps", 1000))
    net = TextUNetView.frozen(unet, attributes, tokenizer, text_encoder, num_train_timesteps=T)
    return net, _latent_shapes(unet, vae), {"vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer}


def _size(unet) -> tuple[int, int]:
    size = unet.config.sample_size
    return tuple(size) if isinstance(size, (list, tuple)) else (size, size)


def _latent_shapes(unet, vae) -> dict:
    """A latent model's process space (the UNet's input) and image space (the autoencoder's output)."""
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    h, w = _size(unet)
    return {
        "sample_shape": [unet.config.in_channels, h, w],
        "image_shape": [vae.config.out_channels, h * factor, w * factor],
    }


def describe_save(path) -> str:
    """What a save wrote, for the CLI's one line."""
    path = Path(path)
    if not (path / RECORD).is_file():
        return ""
    record = json.loads((path / RECORD).read_text())
    if record["rewritten"] == ["*"]:
        return f"diffusers {record['layout']['kind']}: wrote every component"
    copied = ", ".join(f"{c}/" for c in record.get("copied", []))
    return (
        f"diffusers {record['layout']['kind']}: rewrote {', '.join(r + '/' for r in record['rewritten'] if r != '.') or 'the UNet'}"
        + (f", copied {copied} unchanged" if copied else "")
    )
