"""Training helpers: one epoch of gradient descent and an evaluation pass, both reading the
device once at the end (metrics accumulate on the device)."""

from .loop import evaluate, train_epoch

__all__ = ["evaluate", "train_epoch"]
