"""Functions on Tensors: activations and losses, composed from the primitives in ``ops``.

Shapes: N is the batch size, C the number of classes.
"""

from __future__ import annotations

from typing import Any

from .. import backends, ops
from ..autograd import Tensor, check_same_device, dtype_is
from ..ops import linear, relu, sigmoid, tanh  # noqa: F401  (re-exported spellings)

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {_REDUCTIONS}")


def _reduce(per_element: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_element.mean()
    if reduction == "sum":
        return per_element.sum()
    return per_element


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    return ops.where(x.data > 0, x, x * negative_slope)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, shifted by the (constant) max for stability."""
    shifted = x - ops.max(x, axis=axis, keepdims=True).detach()
    e = ops.exp(shifted)
    return e / ops.sum(e, axis=axis, keepdims=True)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x - log(sum(exp(x))) along ``axis``, shifted by the (constant) max for stability."""
    shifted = x - ops.max(x, axis=axis, keepdims=True).detach()
    return shifted - ops.log(ops.sum(ops.exp(shifted), axis=axis, keepdims=True))


def _labels(input: Tensor, target: Any, name: str):
    """Validate a class-index target for (N, C) scores; return it as an array on input's device."""
    if input.ndim != 2:
        raise ValueError(f"{name}: input must be (N, C) scores; got shape {input.shape}")
    labels = target.data if isinstance(target, Tensor) else target
    if hasattr(labels, "shape"):
        check_same_device([input.data, labels])  # host labels beside device scores: no silent copy
    else:
        labels = input.xp.asarray(labels, device=input.device)
    n, classes = input.shape
    if tuple(labels.shape) != (n,):
        raise ValueError(
            f"{name}: target has shape {tuple(labels.shape)}; expected ({n},) class indices for input {input.shape}"
        )
    if not dtype_is(input.xp, labels.dtype, "integral"):
        raise TypeError(f"{name}: class-index target must be integers; got {labels.dtype}")
    # values are checked only where reading them costs no device synchronisation; on a GPU
    # the DataLoader checks labels once, on the host
    if backends.sync_is_free(labels) and n:
        xp = input.xp
        low, high = int(xp.min(labels)), int(xp.max(labels))
        if low < 0 or high >= classes:
            raise ValueError(
                f"{name}: labels must lie in [0, {classes - 1}] for {classes} classes; got values from {low} to {high}"
            )
    return labels


def cross_entropy(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy, fused (one primitive, stable).

    Args:
        input: (N, C) unnormalised scores (logits).
        target: (N,) integer class indices in [0, C), or (N, C) class probabilities.
        reduction: "mean" (default), "sum" or "none" (per-sample losses, shape (N,)).
    """
    _check_reduction(reduction)
    target_array = target.data if isinstance(target, Tensor) else target
    if hasattr(target_array, "dtype"):
        check_same_device([input.data, target_array])
    # a 1-D float target is class indices in the wrong dtype, which _labels reports
    probabilities = hasattr(target_array, "dtype") and len(target_array.shape) != 1
    if probabilities and dtype_is(input.xp, target_array.dtype, "real floating"):
        if tuple(target_array.shape) != input.shape or input.ndim != 2:
            raise ValueError(
                f"cross_entropy: probability target has shape {tuple(target_array.shape)}; "
                f"expected {input.shape} with input (N, C)"
            )
        target = target if isinstance(target, Tensor) else Tensor(target_array)
    else:
        target = _labels(input, target, "cross_entropy")
    return ops.softmax_cross_entropy(input, target, reduction)


def nll_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices, given (N, C) log-probabilities."""
    _check_reduction(reduction)
    labels = _labels(input, target, "nll_loss")
    xp = input.xp
    one_hot = xp.astype(labels[:, None] == xp.arange(input.shape[1], device=input.device)[None, :], input.dtype)
    return _reduce(-ops.sum(input * Tensor(one_hot), axis=1), reduction)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error; input and target have the same shape."""
    _check_reduction(reduction)
    target_shape = tuple(getattr(target, "shape", ()))
    if target_shape != input.shape:
        raise ValueError(f"mse_loss: target has shape {target_shape}; expected the input's shape {input.shape}")
    diff = input - target
    return _reduce(diff * diff, reduction)


def flatten(x: Tensor, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """Merge dimensions start_dim..end_dim into one."""
    ndim = x.ndim
    start, end = start_dim % ndim, end_dim % ndim
    merged = 1
    for n in x.shape[start : end + 1]:
        merged *= n
    return ops.reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1 :])


def accuracy(scores: Tensor, labels: Any) -> Tensor:
    """Fraction of rows whose largest score is at the label (a 0-d array; no grad, no sync)."""
    xp = scores.xp
    labels = labels.data if isinstance(labels, Tensor) else labels
    hits = xp.astype(xp.argmax(scores.data, axis=1) == labels, scores.dtype)
    return Tensor(xp.mean(hits))


# spellings defined beside their layers
from .conv import adaptive_avg_pool2d, avg_pool2d, conv1d, conv2d, max_pool2d  # noqa: E402,F401,I001
from .dropout import dropout  # noqa: E402,F401
from .normalization import batch_norm, layer_norm  # noqa: E402,F401
