"""The validation split: for tuning, never overlapping what is reported on."""

import pytest
import torch

from genunlearn.data import fit_split, load_dataset
from genunlearn.errors import GenUnlearnError


def _rows(d):
    return {tuple(r) for r in d.x.flatten(1).tolist()}


def test_digits_val_is_carved_out_of_train_stratified_and_apart_from_test():
    train, val, test, fit = (
        load_dataset("digits", "train"),
        load_dataset("digits", "val"),
        load_dataset("digits", "test"),
        fit_split("digits"),
    )
    assert len(fit) + len(val) == len(train)
    assert _rows(val) <= _rows(train) and not (_rows(val) & _rows(fit)) and not (_rows(val) & _rows(test))
    share = torch.bincount(val.labels, minlength=10) / torch.bincount(train.labels, minlength=10)
    assert share.min() > 0.15 and share.max() < 0.25  # every class about VAL_FRACTION
    again = load_dataset("digits", "val")
    assert torch.equal(again.x, val.x)


@pytest.mark.parametrize("name", ["shapes", "ring8"])
def test_procedural_val_is_drawn_fresh(name):
    val, test = load_dataset(name, "val"), load_dataset(name, "test")
    assert len(val) == len(test) and not torch.equal(val.x, test.x)
    assert len(fit_split(name)) == len(load_dataset(name, "train"))


def test_unknown_split_is_one_line():
    with pytest.raises(GenUnlearnError, match="unknown split 'dev': expected one of train, val, test"):
        load_dataset("digits", "dev")
