import torch

from genunlearn.eval import metrics
from genunlearn.eval.judge import ImageJudge
from genunlearn.models import build_network


def random_judge():
    torch.manual_seed(0)
    net = build_network(
        {"_class_name": "ConvClassifier", "in_channels": 1, "channels": [8, 8], "heads": [10], "feature_dim": 16}
    ).eval()
    return ImageJudge(net, (), {"digit": 1.0})


def test_fd_and_kid_separate_distributions(gen):
    from genunlearn.data import load_dataset

    judge = random_judge()
    real = load_dataset("digits").x
    a, b = metrics.halves(real)
    noise = torch.rand(a.shape, generator=gen) * 2 - 1
    same = metrics.frechet_distance(judge, a, b)
    diff = metrics.frechet_distance(judge, a, noise)
    assert 0 <= same < 0.2 * diff
    kid_same, _ = metrics.kernel_distance(judge, a, b)
    kid_diff, _ = metrics.kernel_distance(judge, a, noise)
    assert kid_same < 0.2 * kid_diff
    assert metrics.kernel_distance(judge, a, noise, seed=1) == metrics.kernel_distance(judge, a, noise, seed=1)


def test_mmd_and_masses(gen):
    x = torch.randn(1000, 2, generator=gen)
    y = torch.randn(1000, 2, generator=gen)
    assert abs(metrics.mmd2(x, y, 1.0)) < 0.01 < metrics.mmd2(x, y + 1.0, 1.0)
    comp = torch.tensor([0, 0, 1, 2, 2, 2])
    on = torch.tensor([True, False, True, True, True, True])
    assert metrics.component_mass(comp, on, 3) == [1 / 6, 1 / 6, 3 / 6]


def test_prompt_accuracy_ignores_unspecified():
    pred = torch.tensor([[0, 1], [0, 2], [3, 1]])
    cond = torch.tensor([[0, 1], [0, 4], [0, 4]])
    assert metrics.prompt_accuracy(pred, cond, (4, 4)).tolist() == [1.0, 1.0, 0.0]
    assert abs(metrics.class_rate(pred, [0]) - 2 / 3) < 1e-6
