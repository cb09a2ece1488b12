"""Two velocity networks in one module: a frozen base flow and a transport flow after it.

Used by ``ComposedFlow`` (ContinualFlow's composed mode): the base network maps noise to the
pretrained distribution q0, the transport network maps q0 to the reweighted target. Both are
rebuilt from their own configs, so a composed model saves and loads like any other network
(and can itself be the base of a further composition).
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin


class ComposedNet(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, base_config: dict | None = None, flow_config: dict | None = None, cond_vocab: tuple = ()):
        from genunlearn.models import build_network

        super().__init__()
        self.base = build_network(base_config)
        self.flow = build_network(flow_config)

    @classmethod
    def of(cls, base_net, flow_net) -> "ComposedNet":
        """Wrap two built networks (their weights are copied in)."""
        from genunlearn.models import network_config

        net = cls(network_config(base_net), network_config(flow_net), tuple(base_net.config.cond_vocab))
        net.base.load_state_dict(base_net.state_dict())
        net.flow.load_state_dict(flow_net.state_dict())
        return net

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The transport stage's velocity (the base stage is reached through ``ComposedFlow``)."""
        return self.flow(x, t, None)
