"""scikit-learn's 8×8 handwritten digits (bundled with the package: nothing is downloaded)."""

from __future__ import annotations

import torch

from genunlearn.data.dataset import Attribute, Dataset

TEST_FRACTION = 0.25  # fixed, stratified, seed 0


def load_digits(split: str = "train") -> Dataset:
    from sklearn.datasets import load_digits as sk_load
    from sklearn.model_selection import train_test_split

    d = sk_load()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16 * 2 - 1
    y = torch.tensor(d.target, dtype=torch.long)
    idx_train, idx_test = train_test_split(
        torch.arange(len(y)).numpy(), test_size=TEST_FRACTION, stratify=y.numpy(), random_state=0
    )
    idx = torch.as_tensor(idx_train if split == "train" else idx_test)
    return Dataset("digits", x[idx], y[idx], (Attribute("digit", tuple(str(k) for k in range(10))),))
