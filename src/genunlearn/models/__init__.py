"""Networks (weights only; the generative process is separate) and their save/load."""

from __future__ import annotations

from pathlib import Path

from genunlearn.errors import GenUnlearnError

# class name → module; imported on demand (torch and diffusers are slow to import)
NETWORKS = {
    "MLPNet": "genunlearn.models.mlp",
    "ConvUNet": "genunlearn.models.unet",
    "DiffusersUNet": "genunlearn.interop.diffusers.unet",
    "ConvClassifier": "genunlearn.models.classifier",
    "MLPClassifier": "genunlearn.models.classifier",
    "ComposedNet": "genunlearn.models.composed",
    "I2INet": "genunlearn.models.i2i",
}


def network_class(name: str):
    import importlib

    if name not in NETWORKS:
        raise GenUnlearnError(f"unknown network class {name!r} in checkpoint (known: {', '.join(NETWORKS)})")
    return getattr(importlib.import_module(NETWORKS[name]), name)


def network_config(net) -> dict:
    """diffusers-style config: ``_class_name`` plus the constructor arguments."""
    cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in net.config.items() if not k.startswith("_")}
    return {"_class_name": type(net).__name__, **cfg}


def build_network(cfg: dict):
    cfg = dict(cfg)
    cls = network_class(cfg.pop("_class_name", None))
    args = {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items()}
    try:
        return cls(**args)
    except TypeError as e:
        raise GenUnlearnError(f"network config does not fit {cls.__name__}: {e}") from None


def save_network(folder: Path, net, name: str = "network") -> dict:
    """Write ``<name>.safetensors`` into ``folder``; return the config entry to store."""
    from genunlearn.io.weights import save_tensors

    save_tensors(Path(folder) / f"{name}.safetensors", net.state_dict())
    return network_config(net)


def load_network(folder: Path, cfg: dict, name: str = "network"):
    from genunlearn.io.weights import load_tensors

    net = build_network(cfg)
    state = load_tensors(Path(folder) / f"{name}.safetensors")
    mismatch = weight_mismatch(net.state_dict(), state)
    if mismatch:
        raise GenUnlearnError(
            f"{folder}: {name}.safetensors does not fit the {cfg.get('_class_name')} in config.json: {mismatch}"
        )
    net.load_state_dict(state, strict=True)
    return net.eval()


def weight_mismatch(expected: dict, found: dict) -> str:
    """What differs between a network's tensors and a file's ('' when they fit): counts and the first of each kind."""
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected]
    shapes = [k for k in expected if k in found and tuple(found[k].shape) != tuple(expected[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if extra:
        parts.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
    if shapes:
        k = shapes[0]
        parts.append(
            f"{len(shapes)} of another shape (e.g. {k}: file {tuple(found[k].shape)}, config {tuple(expected[k].shape)})"
        )
    return "; ".join(parts)
