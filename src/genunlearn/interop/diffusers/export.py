"""genunlearn's own diffusion models written as a diffusers ``DDPMPipeline`` folder.

A model trained with diffusers' ``UNet2DModel`` (``genunlearn train --network unet2d``) leaves as
``model_index.json`` + ``unet/`` (``config.json`` + ``diffusion_pytorch_model.safetensors``) +
``scheduler/`` (a ``DDPMScheduler`` with the process's betas and ``prediction_type``), so
``UNet2DModel.from_pretrained(out / "unet")`` and ``DiffusionPipeline.from_pretrained(out)`` open it.
``genunlearn.json`` beside it keeps the task, the data description and the exact process, so
genunlearn reads it back as a ``DiffusersModel`` that samples bit-identically.

Only this pairing maps exactly onto a diffusers convention: genunlearn's flow models run time from
noise to data (diffusers' flow scheduler runs σ the other way, so the same weights would mean
something else), and the built-in networks (``MLPNet``, ``ConvUNet``) are not diffusers classes.
"""

from __future__ import annotations

from genunlearn.io.weights import atomic_dir, header, write_json
from genunlearn.errors import GenUnlearnError

SCHEDULER_FIELDS = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "prediction_type", "clip_sample")


def check_exportable(model) -> None:
    """One line naming what stops ``model`` from being written as a diffusers pipeline."""
    if model.family != "generative" or model.process.name != "diffusion":
        raise GenUnlearnError(
            f"only diffusion models export to diffusers, not a {model.info.get('model', model.kind)!r} model (genunlearn's flow time runs opposite to diffusers' σ)"
        )
    net_class = type(model.net).__name__
    if net_class != "DiffusersUNet":
        raise GenUnlearnError(
            f"the network {net_class} is not a diffusers class: train with --network unet2d to export (image tasks, one class attribute)"
        )
    if model.process.num_train_timesteps != 1000:
        raise GenUnlearnError(
            f"DiffusersUNet feeds timesteps t·1000, so the process must have num_train_timesteps=1000, not {model.process.num_train_timesteps}"
        )


def scheduler_config(process) -> dict:
    """The ``DDPMScheduler`` arguments that reproduce ``process``'s training convention."""
    cfg = process.config()
    return {k: cfg[k] for k in SCHEDULER_FIELDS}


def export_diffusers(model, path) -> None:
    """Write ``model`` as a ``DDPMPipeline`` folder at ``path`` (atomically), plus ``genunlearn.json``."""
    from diffusers import DDPMPipeline, DDPMScheduler

    from genunlearn.interop.diffusers.folders import RECORD, quiet

    check_exportable(model)
    scheduler = DDPMScheduler(**scheduler_config(model.process))
    with atomic_dir(path) as tmp:
        with quiet():
            DDPMPipeline(unet=model.net.unet, scheduler=scheduler).save_pretrained(tmp, safe_serialization=True)
        layout = {"kind": "pipeline", "unet": "unet", "scheduler": dict(scheduler.config)}
        info = {**model.info, "exported_from": "genunlearn"}
        write_json(
            tmp / RECORD,
            header(
                "generative",
                layout=layout,
                rewritten=["*"],
                copied=[],
                process=model.process.config(),
                data=model.data,
                info=info,
            ),
        )
