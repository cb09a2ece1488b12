"""ContinualFlow: energy-reweighted flow matching (Simone et al., arXiv:2506.18747).

Target q̃(x) ∝ q0(x)·σ(−λF(x)): the pretrained model's own distribution q0 with the forget region
(high energy F) subtracted. The loss is the flow process's per-sample loss on samples x1 of a pool
drawn once from the frozen pretrained model, weighted by w = σ(−λF(x1)) and normalised by Σw
(``loss``). Only the energy stage reads data (``classes`` requests train a retain-vs-forget proxy
first, see ``genunlearn.forget.energy``); the unlearning stage never does.

The package, one idea per module: ``config`` (the options), ``loss`` (the paper's equations),
``pool`` (the weighted pool and its Z-ratio test), ``history`` (the energies in force across
continual requests), ``conditions`` (where vanishing conditions take their targets from),
``finetune`` and ``transport`` (the two modes) and ``method`` (the lifecycle).
"""

from genunlearn.methods.continualflow.config import ContinualFlowConfig
from genunlearn.methods.continualflow.loss import erfm_loss, pool_weights, weighted_flow_loss
from genunlearn.methods.continualflow.method import ContinualFlow
from genunlearn.methods.continualflow.pool import Pool

__all__ = ["ContinualFlow", "ContinualFlowConfig", "Pool", "erfm_loss", "pool_weights", "weighted_flow_loss"]
