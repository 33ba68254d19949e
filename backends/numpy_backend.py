"""NumPy on the CPU, through array-api-compat's NumPy namespace."""

from __future__ import annotations

import array_api_compat.numpy as xp_numpy
import numpy as np

from ._base import Backend

FAST_PATHS: dict = {}


class NumpyBackend(Backend):
    name = "numpy"
    sync_is_free = True
    fast_paths = FAST_PATHS

    def __init__(self, device: str | None = None):
        if device not in (None, "cpu"):
            raise ValueError(f"numpy backend has one device, 'cpu'; got {device!r}")
        super().__init__(xp_numpy, "cpu")

    def asarray(self, obj, dtype=None):
        return np.asarray(obj, dtype=dtype)

    def to_host(self, array) -> np.ndarray:
        return np.asarray(array)


class _SoftmaxCrossEntropy:
    """Fused softmax cross-entropy against class indices, in place where NumPy allows: the
    same numbers as gdnet.ops.SoftmaxCrossEntropy's portable code (a test asserts it), in
    fewer passes (integer-array assignment instead of a one-hot matrix in the backward)."""

    @staticmethod
    def forward(logits: np.ndarray, labels: np.ndarray, reduction: str):
        """-> (loss, softmax probabilities); the caller owns the probabilities."""
        shifted = logits - logits.max(axis=1, keepdims=True)
        rows = np.arange(logits.shape[0])
        picked = shifted[rows, labels]
        probs = np.exp(shifted, out=shifted)
        total = probs.sum(axis=1, keepdims=True)
        per_sample = np.log(total[:, 0])
        per_sample -= picked
        probs /= total
        if reduction == "none":
            return per_sample, probs
        loss = per_sample.sum()
        return (loss / float(logits.shape[0]) if reduction == "mean" else loss), probs

    @staticmethod
    def backward(probs: np.ndarray, labels: np.ndarray, grad: np.ndarray, reduction: str) -> np.ndarray:
        """d loss / d logits, computed in ``probs`` (consumed)."""
        n = probs.shape[0]
        probs[np.arange(n), labels] -= 1.0
        if reduction == "none":
            probs *= grad[:, None]
        else:
            probs *= grad / float(n) if reduction == "mean" else grad
        return probs


FAST_PATHS["softmax_cross_entropy"] = _SoftmaxCrossEntropy

BACKEND = NumpyBackend
