"""Shared training machinery: the loop, its config and the gradient mask."""

from genunlearn.training.loop import GradientMask, TrainConfig, TrainResult, check_schedule, train

__all__ = ["GradientMask", "TrainConfig", "TrainResult", "check_schedule", "train"]
