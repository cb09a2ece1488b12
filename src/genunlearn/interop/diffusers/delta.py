"""An edit as the UNet weights it changed: one safetensors file that
``unet.load_state_dict(delta, strict=False)`` applies to the original UNet.

A closed-form editor (UCE, RECE) rewrites a few cross-attention projections of a UNet of hundreds of
megabytes; shipping the edit as the changed tensors only (the edited values, not differences, so
the result is bit-identical) keeps it small and applies to the user's own copy of the base model.
Both folders are read from their safetensors only (a diffusers pipeline or a UNet folder), so no
task or scheduler needs naming.
"""

from __future__ import annotations

from pathlib import Path

from genunlearn.io.weights import atomic_file, load_tensors, read_json, save_tensors
from genunlearn.interop.diffusers.folders import UNETS
from genunlearn.errors import GenUnlearnError

FORMAT = "genunlearn-unet-delta"


def unet_folder(path) -> Path:
    """The UNet's folder of a diffusers pipeline (its ``model_index.json`` entry) or a UNet folder."""
    path = Path(path)
    if (path / "model_index.json").is_file():
        index = read_json(path / "model_index.json")
        name = next((k for k, v in index.items() if isinstance(v, list) and len(v) == 2 and v[1] in UNETS), None)
        if name is None:
            raise GenUnlearnError(f"{path}: the pipeline has no UNet ({', '.join(UNETS)})")
        return path / name
    if (path / "config.json").is_file() and read_json(path / "config.json").get("_class_name") in UNETS:
        return path
    raise GenUnlearnError(f"{path}: not a diffusers pipeline (model_index.json) or UNet folder")


def unet_tensors(path) -> dict:
    """Every tensor of a folder's UNet (sharded files merged)."""
    folder = unet_folder(path)
    files = sorted(folder.glob("diffusion_pytorch_model*.safetensors"))
    if not files:
        raise GenUnlearnError(f"{folder}: no diffusion_pytorch_model*.safetensors")
    return {k: v for f in files for k, v in load_tensors(f).items()}


def changed_tensors(base: dict, edited: dict) -> dict:
    """The tensors of ``edited`` that ``base`` lacks or holds with another value, shape or dtype."""
    missing = sorted(set(base) - set(edited))
    if missing:
        raise GenUnlearnError(
            f"the edited UNet lacks {len(missing)} of the base's tensors (e.g. {missing[0]}); a delta cannot remove weights"
        )
    return {
        k: v
        for k, v in edited.items()
        if k not in base or base[k].dtype != v.dtype or base[k].shape != v.shape or not base[k].equal(v)
    }


def write_delta(edited, base, out) -> dict:
    """Write the UNet tensors of folder ``edited`` that differ from folder ``base``'s to the
    safetensors file ``out`` (atomically). Returns them."""
    delta = changed_tensors(unet_tensors(base), unet_tensors(edited))
    if not delta:
        raise GenUnlearnError(f"{edited} and {base} hold the same UNet weights; nothing to export")
    record = Path(edited) / "genunlearn.json"
    method = read_json(record).get("info", {}).get("method", "") if record.is_file() else ""
    with atomic_file(out) as tmp:
        save_tensors(
            tmp,
            delta,
            metadata={"format": FORMAT, "base": Path(base).name, "method": method, "tensors": str(len(delta))},
        )
    return delta
