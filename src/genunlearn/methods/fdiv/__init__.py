"""f-DMU: concept erasure as f-divergence minimisation (Novello et al., arXiv:2509.21167), and
Concept Ablation (Kumari et al. 2023) as its MSE case.

The trainable model under the **target** prompt ("a red circle") is pulled towards the frozen original
under the **anchor** prompt ("a red shape"): per DDPM step, D_f(p_Φ(x_{t−1}|x_t, anchor) ‖
p_Φ̂(x_{t−1}|x_t, target)). Anchor images are drawn once from the original model with the anchor
prompts (never real data); each step takes (x_0, anchor prompt, target prompt) triples, one shared
(x_t, t, ε), target = sg ε_Φ(x_t, t, anchor), pred = ε_Φ̂(x_t, t, target).

The package, one idea per module: ``config`` (the options), ``pairs`` (the prompt pairs and the
anchor images), ``closed`` (the closed-form loss), ``variational`` (the f-GAN critic and bound) and
``method`` (what one run trains). Spec: ../shared/methods/fdivergence.md; user doc: docs/methods/fdiv.md.
"""

from genunlearn.methods.fdiv.closed import closed_loss, importance_timesteps, kl_weights
from genunlearn.methods.fdiv.config import DEFAULT_LR, ConceptAblationConfig, FDivConfig
from genunlearn.methods.fdiv.method import ConceptAblation, FDiv
from genunlearn.methods.fdiv.pairs import AnchorPool, PromptPairs, make_anchor_pool, prompt_pairs, request_pairs

__all__ = [
    "DEFAULT_LR",
    "AnchorPool",
    "ConceptAblation",
    "ConceptAblationConfig",
    "FDiv",
    "FDivConfig",
    "PromptPairs",
    "closed_loss",
    "importance_timesteps",
    "kl_weights",
    "make_anchor_pool",
    "prompt_pairs",
    "request_pairs",
]
