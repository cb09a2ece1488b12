"""Evaluation: judges and metrics. Only this package judges how well a method did."""
