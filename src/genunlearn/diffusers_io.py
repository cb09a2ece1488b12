"""diffusers folders in and out: a user's pipeline (``model_index.json``) or model folder (+ a
scheduler folder) becomes a ``GenerativeModel`` (``DiffusersModel``), and leaves in the format it
came in, loadable by the user's own diffusers code.

Supported: ``UNet2DModel`` (any block layout; class-conditional through ``num_class_embeds``, with or
without a null class, or unconditional) with a DDPM-family scheduler (any ``beta_schedule`` of
``processes.diffusion.BETA_SCHEDULES``, ``prediction_type`` epsilon / v_prediction / sample) or
``FlowMatchEulerDiscreteScheduler`` (σ convention and ``shift``). On output only the UNet is
rewritten (``diffusion_pytorch_model.safetensors`` + ``config.json``); every other component is copied
unchanged; ``genunlearn.json`` beside it records the task, the data description, the process (e.g. a
one-step generator's t*) and what was done. Weights are read from safetensors only.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from genunlearn.checkpoint import atomic_dir, header, read_json, write_json
from genunlearn.errors import GenUnlearnError
from genunlearn.generative import GenerativeModel

RECORD = "genunlearn.json"
UNETS = ("UNet2DModel",)
DIFFUSION_SCHEDULERS = ("DDPMScheduler", "DDIMScheduler", "DDPMParallelScheduler", "DDIMParallelScheduler", "PNDMScheduler", "DPMSolverMultistepScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "UniPCMultistepScheduler", "HeunDiscreteScheduler")
FLOW_SCHEDULERS = ("FlowMatchEulerDiscreteScheduler",)


def _config(folder: Path) -> dict:
    path = folder / "config.json"
    return read_json(path) if path.is_file() else {}


def is_diffusers_folder(path) -> bool:
    """A diffusers pipeline folder or a diffusers model folder (reads JSON only)."""
    path = Path(path)
    return (path / "model_index.json").is_file() or _config(path).get("_class_name") in UNETS or (path / RECORD).is_file()


def _scheduler_config(folder: Path) -> dict:
    path = folder / "scheduler_config.json"
    if not path.is_file():
        raise GenUnlearnError(f"{folder}: no scheduler_config.json (pass the folder written by the scheduler's save_pretrained)")
    return read_json(path)


def process_from_scheduler(cfg: dict, *, has_null: bool):
    """The genunlearn process that reproduces a diffusers scheduler's training convention."""
    from genunlearn.processes.diffusion import Diffusion
    from genunlearn.processes.flow_matching import FlowMatching

    name = cfg.get("_class_name")
    dropout = 0.1 if has_null else 0.0  # condition dropout needs a null class
    if name in FLOW_SCHEDULERS:
        if cfg.get("use_dynamic_shifting"):
            raise GenUnlearnError(f"{name} with use_dynamic_shifting is not supported (resolution-dependent shift); set a fixed shift")
        return FlowMatching(solver="euler", steps=28, guidance=1.0, cond_dropout=dropout, shift=float(cfg.get("shift", 1.0)), grid="diffusers", num_train_timesteps=int(cfg.get("num_train_timesteps", 1000)))
    if name in DIFFUSION_SCHEDULERS:
        if cfg.get("trained_betas") is not None:
            raise GenUnlearnError(f"{name} with trained_betas is not supported; supported beta_schedule values: linear, scaled_linear, squaredcos_cap_v2")
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
    raise GenUnlearnError(f"unsupported scheduler {name!r}; supported: {', '.join(DIFFUSION_SCHEDULERS + FLOW_SCHEDULERS)}")


@dataclass
class DiffusersModel(GenerativeModel):
    """A generative model whose folder is a diffusers pipeline or model folder."""

    layout: dict = field(default_factory=dict)  # {"kind": "pipeline"|"model", "source": path, "unet": subfolder, "scheduler": config}

    @classmethod
    def from_pretrained(cls, path, *, task: str | None = None, scheduler: str | None = None) -> "DiffusersModel":
        """Load a diffusers folder. ``task`` names the data (built-in task, image folder or .npz)
        unless the folder's ``genunlearn.json`` does; ``scheduler`` is the scheduler folder of a
        bare model folder."""
        from diffusers import UNet2DModel

        from genunlearn.data import load_dataset
        from genunlearn.models.diffusers_view import UNetView
        from genunlearn.processes import build_process

        path = Path(path)
        record = read_json(path / RECORD) if (path / RECORD).is_file() else {}
        if (path / "model_index.json").is_file():
            index = read_json(path / "model_index.json")
            unet_name = next((k for k, v in index.items() if isinstance(v, list) and len(v) == 2 and v[1] in UNETS), None)
            if unet_name is None:
                found = ", ".join(f"{k}: {v[1]}" for k, v in index.items() if isinstance(v, list) and len(v) == 2)
                raise GenUnlearnError(f"{path}: pipeline {index.get('_class_name')!r} has no supported denoiser (found {found}; supported: {', '.join(UNETS)})")
            sched = _scheduler_config(path / "scheduler") if scheduler is None else _scheduler_config(Path(scheduler))
            layout = {"kind": "pipeline", "source": str(path.resolve()), "unet": unet_name, "scheduler": sched}
            unet_dir = path / unet_name
        else:
            cls_name = _config(path).get("_class_name")
            if cls_name not in UNETS:
                raise GenUnlearnError(f"{path}: not a genunlearn model, a diffusers pipeline (model_index.json) or a supported diffusers model ({', '.join(UNETS)})")
            if scheduler is None and "scheduler" not in record.get("layout", {}):
                raise GenUnlearnError(f"{path}: a bare {cls_name} folder needs its scheduler: pass --scheduler SCHEDULER_FOLDER")
            sched = _scheduler_config(Path(scheduler)) if scheduler is not None else record["layout"]["scheduler"]
            layout = {"kind": "model", "source": str(path.resolve()), "unet": "", "scheduler": sched}
            unet_dir = path
        task = task or record.get("info", {}).get("task")
        if task is None:
            raise GenUnlearnError(f"{path}: a diffusers model does not say what data it models: pass --task (a built-in task, an image folder or an .npz)")
        try:
            unet = UNet2DModel.from_pretrained(unet_dir, use_safetensors=True).eval()
        except (OSError, ValueError, EnvironmentError) as e:
            raise GenUnlearnError(f"{unet_dir}: cannot load the UNet2DModel ({str(e).splitlines()[0]})") from None
        data = load_dataset(task)
        if data.kind != "images":
            raise GenUnlearnError(f"{task}: a UNet2DModel generates images; this task holds 2D points")
        size = unet.config.sample_size
        size = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
        meta = {**data.meta(), "sample_shape": [unet.config.in_channels, *size], "data_shape": list(data.sample_shape)}
        num_classes = data.num_classes if unet.config.num_class_embeds else None
        flow = layout["scheduler"].get("_class_name") in FLOW_SCHEDULERS
        T = int(layout["scheduler"].get("num_train_timesteps", 1000))
        net = UNetView(unet, num_train_timesteps=T, flow=flow, num_classes=num_classes)
        process = build_process(record["process"]) if "process" in record else process_from_scheduler(layout["scheduler"], has_null=net.has_null)
        info = {"model": process.name, "role": "base", "format": f"diffusers-{layout['kind']}", **record.get("info", {}), "task": str(Path(task).resolve()) if Path(task).exists() else task}
        return cls(net, process, meta, info, layout)

    def save_pretrained(self, path) -> None:
        """The same format as the source: the UNet rewritten, other components copied unchanged, the
        record in ``genunlearn.json``."""
        source = Path(self.layout["source"])
        with atomic_dir(path) as tmp:
            if self.layout["kind"] == "pipeline":
                shutil.copy2(source / "model_index.json", tmp / "model_index.json")
                copied = []
                for item in sorted(source.iterdir()):
                    if item.is_dir() and item.name != self.layout["unet"]:
                        shutil.copytree(item, tmp / item.name)
                        copied.append(item.name)
                unet_dir = tmp / self.layout["unet"]
            else:
                copied, unet_dir = [], tmp
            self.net.unet.save_pretrained(unet_dir, safe_serialization=True)
            record = header("generative", layout={k: v for k, v in self.layout.items() if k != "source"}, rewritten=[self.layout["unet"] or "."], copied=copied, process=self.process.config(), data=self.data, info=self.info)
            write_json(tmp / RECORD, record)

    def extra_config(self) -> dict:
        return {"process": self.process.config(), "layout": self.layout}


def describe_save(path) -> str:
    """What a save wrote, for the CLI's one line."""
    path = Path(path)
    if not (path / RECORD).is_file():
        return ""
    record = json.loads((path / RECORD).read_text())
    copied = ", ".join(f"{c}/" for c in record.get("copied", []))
    return f"diffusers {record['layout']['kind']}: rewrote {', '.join(r + '/' for r in record['rewritten'] if r != '.') or 'the UNet'}" + (f", copied {copied} unchanged" if copied else "")
