"""Shared training machinery: the loop of objectives, its configs and the gradient mask."""

from genunlearn.training.loop import (
    GradientMask,
    Objective,
    Optim,
    TrainConfig,
    TrainResult,
    check_schedule,
    train,
    train_from_scratch,
    train_objectives,
)

__all__ = [
    "GradientMask",
    "Objective",
    "Optim",
    "TrainConfig",
    "TrainResult",
    "check_schedule",
    "train",
    "train_from_scratch",
    "train_objectives",
]
