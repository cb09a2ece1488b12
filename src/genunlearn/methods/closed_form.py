"""Closed-form edits of a text-to-image UNet's cross-attention keys and values (UCE, RECE, SPEED).

Every cross-attention key/value projection W₀ (diffusers' ``attn2.to_k`` / ``attn2.to_v``) reads the
text encoder's hidden states c. UCE (Gandikota et al., WACV 2024) picks the W nearest W₀ that sends
each erased embedding c_e where W₀ sends its guide's c_g and keeps each preserved c_p where W₀ sends it:

    min_W  α_e Σ_e ‖W c_e − W₀ c_g‖² + α_p Σ_p ‖W c_p − W₀ c_p‖² + λ ‖W − W₀‖²_F
    ⇒  W = W₀ (λI + α_e C_g C_eᵀ + α_p C_p C_pᵀ) (λI + α_e C_e C_eᵀ + α_p C_p C_pᵀ)⁻¹ = W₀ M.

Every target is W₀ applied to an embedding, so the edit is W₀ times one d × d matrix M shared by all
projections (d: the text encoder's width): one float64 solve for the whole UNet; M − I has rank at
most the number of erased embeddings, so each projection gets a low-rank update (``uce_factors``).
Embeddings are the rows of ``(n, d)`` tensors here.

SPEED-style null-space mode: W = W₀ + Δ with Δ = Δ Q, Q the projector onto the orthogonal
complement of the preserved embeddings' span, so W c_p = W₀ c_p exactly; Δ minimises the same erase
and λ terms (Δ = α_e W₀ (C_g − C_e) C_eᵀ (α_e Q C_e C_eᵀ Q + λI)⁻¹ Q).

RECE (Gong et al., ECCV 2024): after an edit W = W₀ M, the embedding that still regenerates a
concept's keys and values, c' = argmin Σ_l ‖W_l c' − W₀_l c‖² + ρ‖c'‖² = (ρI + MᵀGM)⁻¹ MᵀG c with
G = Σ_l W₀_lᵀ W₀_l, joins the erased set (sent to the concept's guide) and the edit is solved again.
"""

from __future__ import annotations

import torch
from torch import nn

from genunlearn.errors import GenUnlearnError

KV_SUFFIXES = ("attn2.to_k", "attn2.to_v")


def kv_projections(unet: nn.Module) -> dict[str, nn.Linear]:
    """The cross-attention key and value projections of a UNet, by module name."""
    found = {n: m for n, m in unet.named_modules() if n.endswith(KV_SUFFIXES) and isinstance(m, nn.Linear)}
    if not found:
        raise GenUnlearnError(
            f"{type(unet).__name__} has no cross-attention key/value projections ({', '.join(KV_SUFFIXES)})"
        )
    return found


def _complement(preserve: torch.Tensor, tol: float) -> torch.Tensor:
    """Projector onto the directions the preserved embeddings do not span (eigenvalues of
    Σ c_p c_pᵀ at most ``tol`` × the largest count as unspanned)."""
    eye = torch.eye(preserve.shape[1], dtype=torch.float64)
    if not len(preserve):
        return eye
    values, vectors = torch.linalg.eigh(preserve.T @ preserve)
    spanned = vectors[:, values > tol * values.max()]
    return eye - spanned @ spanned.T


def uce_factors(
    erase,
    guide,
    preserve,
    *,
    lam: float,
    erase_scale: float = 1.0,
    preserve_scale: float = 1.0,
    nullspace_tol: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(U, Vᵀ), float64, with the edit M = I + U Vᵀ (W = W₀ M). ``erase`` and ``guide`` are
    row-aligned ``(n, d)`` embeddings (row i of ``erase`` is sent where W₀ sends row i of
    ``guide``), ``preserve`` ``(m, d)``; ``nullspace_tol`` switches from UCE's weighted preservation
    to the null-space edit. The λ and preserve terms are the same on both sides of UCE's solution,
    so M − I = α_e (C_g − C_e) C_eᵀ A⁻¹ (null space: A⁻¹ Q) has rank at most n: applying it to a
    projection costs out × d × n, not out × d²."""
    E, G, P = (x.detach().to(torch.float64) for x in (erase, guide, preserve))
    d = E.shape[1]
    eye = torch.eye(d, dtype=torch.float64)
    if nullspace_tol is None:
        Q = None
        A = lam * eye + erase_scale * E.T @ E + preserve_scale * P.T @ P
    else:
        Q = _complement(P, nullspace_tol)
        A = erase_scale * Q @ E.T @ E @ Q + lam * eye
    Vt = torch.linalg.solve(A, E.T).T  # E A⁻¹ (A is symmetric)
    if Q is not None:
        Vt = Vt @ Q
    U = erase_scale * (G - E).T
    if len(E) >= d:  # as many rows as dimensions: one d × d factor is cheaper
        U, Vt = U @ Vt, eye
    return U, Vt


def edit_matrix(U: torch.Tensor, Vt: torch.Tensor) -> torch.Tensor:
    """M = I + U Vᵀ."""
    return torch.eye(U.shape[0], dtype=torch.float64) + U @ Vt


def gram(weights) -> torch.Tensor:
    """G = Σ_l W_lᵀ W_l: Σ_l ‖W_l x‖² = xᵀ G x over all projections at once (one float32 product of
    the stacked weights, returned in float64)."""
    stacked = torch.cat([w.detach().float() for w in weights])
    return (stacked.T @ stacked).double()


def regeneration_map(M: torch.Tensor, G: torch.Tensor, reg: float) -> torch.Tensor:
    """RECE's closed form: R with c' = R c the embedding whose keys/values under W₀ M are nearest
    W₀'s for c, ridge-regularised by ``reg`` (R = (reg I + MᵀGM)⁻¹ MᵀG)."""
    eye = torch.eye(M.shape[0], dtype=torch.float64)
    return torch.linalg.solve(reg * eye + M.T @ G @ M, M.T @ G)


def rece_factors(
    erase, guide, preserve, G: torch.Tensor, *, rounds: int, reg: float, **options
) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """UCE, then ``rounds`` times: the concept embeddings' regenerating embeddings (under the current
    edit) join the erased set, sent to the same guides, and the edit is solved again from W₀.
    Returns ((U, Vᵀ), every erased embedding)."""
    E, Gd = erase.to(torch.float64), guide.to(torch.float64)
    erased, guides = E, Gd
    factors = uce_factors(erased, guides, preserve, **options)
    for _ in range(rounds):
        erased = torch.cat([erased, E @ regeneration_map(edit_matrix(*factors), G, reg).T])
        guides = torch.cat([guides, Gd])
        factors = uce_factors(erased, guides, preserve, **options)
    return factors, erased


@torch.no_grad()
def apply_edit(unet: nn.Module, U: torch.Tensor, Vt: torch.Tensor) -> list[str]:
    """W ← W₀ (I + U Vᵀ) for every cross-attention key/value projection, in place (float64, then
    the weight's own dtype). Returns the names of the weights it rewrote."""
    names = []
    for name, proj in kv_projections(unet).items():
        if proj.in_features != U.shape[0]:
            raise GenUnlearnError(
                f"{name} reads {proj.in_features}-dim text states, the text encoder gives {U.shape[0]} (a UNet with a text projection is not supported)"
            )
        W0 = proj.weight.to(torch.float64)
        proj.weight.copy_((W0 + (W0 @ U.to(W0.device)) @ Vt.to(W0.device)).to(proj.weight.dtype))
        names.append(f"{name}.weight")
    return names


def relative_error(rows: torch.Tensor, reference: torch.Tensor, G: torch.Tensor) -> float:
    """sqrt(Σ_l ‖W₀_l rows‖² / Σ_l ‖W₀_l reference‖²) over every row: a residual measured in keys
    and values rather than in embedding space."""
    energy = lambda x: torch.einsum("nd,de,ne->", x, G, x)
    return float(energy(rows).clamp_min(0).sqrt() / energy(reference).clamp_min(1e-30).sqrt())


def edit_unet(unet, erase, guide, preserve, *, rounds: int = 0, reg: float = 0.0, **options) -> dict:
    """Edit ``unet``'s cross-attention keys and values in place (UCE; RECE with ``rounds``; ``options``:
    ``rece_factors``'); returns what the edit did."""
    G = gram(p.weight for p in kv_projections(unet).values())
    (U, Vt), erased = rece_factors(erase, guide, preserve, G, rounds=rounds, reg=reg, **options)
    E, Gd, P = (x.to(torch.float64) for x in (erase, guide, preserve))
    moved = lambda X: (X @ Vt.T) @ U.T  # noqa: E731 — what the edit adds to the keys/values of X
    return {
        "edited": apply_edit(unet, U, Vt),
        "erase_vectors": len(erased),
        "preserve_vectors": len(P),
        # 0: the concepts' keys/values are the guides'; 1: unmoved
        "erase_residual": round(relative_error(E + moved(E) - Gd, E - Gd, G), 6),
        "preserve_drift": round(relative_error(moved(P), P, G), 6) if len(P) else None,
    }
