"""The energies in force across continual requests: a later request multiplies in every earlier one,
and −F_k at the same λ_k restores F_k's region (the pair cancels)."""

from __future__ import annotations

from genunlearn.errors import GenUnlearnError
from genunlearn.forget.energy import Energy


def energies_after(
    model, lam: float, energy: Energy, *, keep_previous: bool, composed: bool
) -> tuple[list[dict], bool]:
    """The energies in force after this request (``{"lam", "energy"}`` specs, as ``info`` keeps them)
    and whether it restored one: −F_k at λ_k cancels an earlier F_k (both drop out); any other energy
    is added. Restoring needs composed mode, whose base stage still holds the region."""
    history = list(model.info.get("continualflow", {}).get("energies", [])) if keep_previous else []
    plain = lambda spec: {k: v for k, v in spec.items() if k != "negate"}  # noqa: E731
    for k, h in enumerate(history):
        if (
            h["lam"] == lam
            and plain(h["energy"]) == plain(energy.spec)
            and bool(h["energy"].get("negate")) != bool(energy.spec.get("negate"))
        ):
            if not composed:
                raise GenUnlearnError(
                    "restoring an applied energy needs mode=composed: a fine-tuned model no longer holds the region, so its pool cannot bring it back"
                )
            return history[:k] + history[k + 1 :], True
    return history + [{"lam": lam, "energy": energy.spec}], False


def base_stage(model):
    """A composed model's first stage (q0, which composed mode never changes); any other model itself."""
    while model.process.name == "composed":
        model = model.with_net(model.net.base, process=model.process.base)
    return model
