import pytest
import torch

from genunlearn.errors import GenUnlearnError
from genunlearn.models import build_network, network_config

NETS = [
    ({"_class_name": "MLPNet", "dim": 2, "hidden": 16, "depth": 2, "cond_vocab": [8]}, (2,)),
    ({"_class_name": "MLPNet", "dim": 64, "hidden": 16, "depth": 1, "cond_vocab": [10]}, (1, 8, 8)),
    (
        {
            "_class_name": "ConvUNet",
            "in_channels": 3,
            "base_channels": 8,
            "channel_mult": [1, 2, 2],
            "emb_dim": 16,
            "cond_vocab": [4, 4],
        },
        (3, 16, 16),
    ),
    (
        {
            "_class_name": "DiffusersUNet",
            "in_channels": 1,
            "sample_size": 8,
            "block_out_channels": [8, 16],
            "cond_vocab": [10],
        },
        (1, 8, 8),
    ),
]


@pytest.mark.parametrize("cfg,shape", NETS, ids=lambda v: v["_class_name"] if isinstance(v, dict) else None)
def test_one_call_signature_and_conditioning(cfg, shape):
    torch.manual_seed(0)
    net = build_network(cfg)
    x, t = torch.randn(3, *shape), torch.rand(3)
    vocab = cfg["cond_vocab"]
    cond = torch.stack([torch.tensor([i % v for v in vocab]) for i in range(3)])
    out = net(x, t, cond)
    assert out.shape == x.shape
    null = torch.tensor(vocab).expand(3, -1)
    assert torch.equal(net(x, t, None), net(x, t, null))  # None means the null condition
    assert not torch.allclose(out, net(x, t, null))  # the condition matters
    rebuilt = build_network(network_config(net))
    rebuilt.load_state_dict(net.state_dict())
    assert torch.equal(rebuilt(x, t, cond), out)


def test_classifier_heads_and_features():
    net = build_network(
        {"_class_name": "ConvClassifier", "in_channels": 3, "channels": [8, 8], "heads": [4, 4], "feature_dim": 12}
    )
    logits = net(torch.randn(5, 3, 16, 16))
    shape, colour = net.split_heads(logits)
    assert shape.shape == (5, 4) and colour.shape == (5, 4) and net.features(torch.randn(2, 3, 16, 16)).shape == (2, 12)


def test_unknown_network_and_bad_config():
    with pytest.raises(GenUnlearnError, match="unknown network class"):
        build_network({"_class_name": "Transformer9000"})
    with pytest.raises(GenUnlearnError, match="does not fit MLPNet"):
        build_network({"_class_name": "MLPNet", "wings": 2})
    with pytest.raises(GenUnlearnError, match="at most one conditioning attribute"):
        build_network({"_class_name": "DiffusersUNet", "cond_vocab": [4, 4]})
