"""SFD, Score Forgetting Distillation (Chen, Zhang & Zhou, ICLR 2025): a data-free distillation of a
class-conditional diffusion (or flow) teacher into a one-step generator that has forgotten classes.

Three copies of the teacher network: the teacher f_φ (frozen), a fake score f_ψ and the generator
G_θ(z, c) = f_θ(b_{t*} z, t*, c) (``OneStep`` process). Each iteration:
1. fake-score step: denoising score matching of f_ψ on sg[G(z, c)] for retained c and on sg[G(z′, c_f)];
2. generator step: SiD loss ℓ(r, s, x_g) = Σ (r − s) ⊙ [(r − x_g) − α (r − s)] / ω,
   ω = sg mean|r − x_g|, with r = f_φ(x_t, t, c), s = f_ψ(x_t, t, c) for retained c, and the
   cross-condition forgetting term r = f_φ(x_t, t, **c_o**), s = f_ψ(x_t, t, **c_f**) on G(z′, c_f).
   Gradients reach θ through the inputs x_t of f_φ and f_ψ (their parameters are frozen, not no_grad).
Nothing real is read: retained labels are a uniform draw over the retained classes; ``data`` is ignored.

Loop integration: two objectives of the shared loop, the fake score f_ψ then the generator G (both
Adam β1 = 0, clip by value, fused; EMA on G), so both are prepared by accelerate, checkpointed and
resumed. Under several processes each is averaged across ranks in its own update; inside G's
update f_ψ is the plain frozen module (never its data-parallel wrapper).
The package, one idea per module: ``config`` (the options), ``loss`` (SiD's generator loss),
``overrides`` (the class c_o the teacher is asked for in place of a forgotten one), ``distillation``
(one run's three networks and two losses) and ``method`` (the lifecycle).
Spec: ../shared/methods/sfd.md; user doc: docs/methods/sfd.md.
"""

from genunlearn.methods.sfd.config import SFDConfig
from genunlearn.methods.sfd.loss import sid_loss, sid_terms
from genunlearn.methods.sfd.method import SFD
from genunlearn.methods.sfd.overrides import DEFAULT_OVERRIDE, Overrides

__all__ = ["DEFAULT_OVERRIDE", "SFD", "Overrides", "SFDConfig", "sid_loss", "sid_terms"]
