"""Classification unlearning metrics (SalUn line of work), all in %.

UA = 100 − accuracy on the forget set; RA = accuracy on the retain set; TA = accuracy on the test
set (for class-wise forgetting the caller passes the test set without the forgotten classes);
MIA-Efficacy = share of forget samples an SVM on true-label confidence calls non-members (members:
the first |test| retain samples; non-members: the test set); Avg. Gap = mean |Δ| to Retrain over
UA, RA, TA, MIA.
"""

from __future__ import annotations

import numpy as np
import torch

from genunlearn.device import batched

METRICS = ("UA", "RA", "TA", "MIA")


@torch.no_grad()
def predict_proba(net, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    net.eval()
    return batched(net, lambda xb: net(xb).softmax(1), x, batch_size=batch_size)


def accuracy(net, data) -> float:
    """Top-1 accuracy in % on a dataset's class labels."""
    return 100 * float((predict_proba(net, data.x).argmax(1) == data.labels).float().mean())


def confidence(net, data) -> np.ndarray:
    """Softmax probability of the true label, one per sample."""
    return predict_proba(net, data.x).gather(1, data.labels[:, None]).squeeze(1).numpy()


def mia_efficacy(net, forget, retain, test) -> float:
    """SVC(C=3, rbf, gamma="auto") on confidence; % of the forget set predicted non-member."""
    from sklearn.svm import SVC

    n = min(len(test), len(retain))
    members, non_members = confidence(net, retain)[:n], confidence(net, test)
    feats = np.concatenate([members, non_members])[:, None]
    labels = np.concatenate([np.ones(len(members)), np.zeros(len(non_members))])
    svc = SVC(C=3, gamma="auto", kernel="rbf").fit(feats, labels)
    return 100 * float((svc.predict(confidence(net, forget)[:, None]) == 0).mean())


def classification_metrics(net, forget, retain, test) -> dict[str, float]:
    """UA, RA, TA, MIA (in %) of ``net`` on the three splits."""
    return {
        "UA": 100 - accuracy(net, forget),
        "RA": accuracy(net, retain),
        "TA": accuracy(net, test),
        "MIA": mia_efficacy(net, forget, retain, test),
    }


def avg_gap(metrics: dict, reference: dict) -> float:
    """Mean absolute difference to the reference (Retrain) over UA, RA, TA, MIA."""
    return float(np.mean([abs(metrics[k] - reference[k]) for k in METRICS]))
