"""Functions on Tensors: activations and losses, composed from the primitives in ``ops``.

Shapes: N is the batch size, C the number of classes.
"""

from __future__ import annotations

import math
from typing import Any

from .. import backends, ops
from ..autograd import Tensor, as_tensor, check_same_device, dtype_is, dtype_name, spelling
from ..ops import linear, relu, sigmoid, tanh

# spellings defined beside their fused primitives and layers
from .conv import adaptive_avg_pool2d, avg_pool2d, conv1d, conv2d, max_pool2d
from .dropout import dropout
from .normalization import batch_norm, layer_norm

# the functional surface, as torch.nn.functional spells it (the check_* helpers and padding_row
# serve the layers that take the same settings)
__all__ = [
    "relu", "leaky_relu", "elu", "gelu", "silu", "softplus", "hardtanh", "sigmoid", "tanh", "softmax", "log_softmax",
    "linear", "embedding", "flatten", "dropout", "conv1d", "conv2d", "max_pool2d", "avg_pool2d",
    "adaptive_avg_pool2d", "batch_norm", "layer_norm", "normalize", "cross_entropy", "nll_loss", "mse_loss",
    "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
    "nt_xent", "info_nce", "accuracy",
]

_SQRT_HALF = math.sqrt(0.5)
_SQRT_TWO_OVER_PI = math.sqrt(2.0 / math.pi)

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
    """x where x > 0, else negative_slope * x.

    Shape: x (*) -> (*). Dtype: x's (floating).

    Raises:
        ValueError: negative_slope is not a finite number. TypeError: x is a list.
    """
    check_finite("leaky_relu", "negative_slope", negative_slope)
    x = as_tensor(x)
    return ops.where(x.data > 0, x, x * negative_slope)


# the checks of activation settings, shared by each function and its layer (which checks when built)
def check_finite(name: str, key: str, value: Any) -> None:
    """ValueError unless ``value``, the setting ``key`` of ``name``, is a finite real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}: {key} must be a finite number; got {value!r}")


def check_approximate(name: str, approximate: Any) -> None:
    """ValueError unless GELU's ``approximate`` is "none" or "tanh"."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"{name}: unknown approximate {approximate!r}; expected 'none' or 'tanh'")


def check_beta(name: str, beta: Any) -> None:
    """ValueError unless softplus's ``beta`` is finite and not 0 (it divides)."""
    check_finite(name, "beta", beta)
    if beta == 0:
        raise ValueError(f"{name}: beta must not be 0")


def check_bounds(name: str, min_val: Any, max_val: Any) -> None:
    """ValueError unless hardtanh's ``min_val`` and ``max_val`` are finite with min_val <= max_val."""
    check_finite(name, "min_val", min_val)
    check_finite(name, "max_val", max_val)
    if min_val > max_val:
        raise ValueError(f"{name}: min_val ({min_val}) must not be greater than max_val ({max_val})")


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1).

    Shape: x (*) -> (*). Dtype: x's (floating).

    Raises:
        ValueError: alpha is not a finite number. TypeError: x is a list.
    """
    check_finite("elu", "alpha", alpha)
    x = as_tensor(x)
    positive = x.data > 0
    # exp sees only the non-positive side, so large x never overflows into a NaN gradient
    negative = (ops.exp(ops.where(positive, 0.0, x)) - 1.0) * alpha
    return ops.where(positive, x, negative)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF (Hendrycks & Gimpel, 2016).

    Args:
        approximate: "none" (exact, through erf) or "tanh"
            (0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))), as PyTorch.

    Shape: x (*) -> (*). Dtype: x's (floating).

    Raises:
        ValueError: approximate is not "none" or "tanh". TypeError: x is a list.
    """
    check_approximate("gelu", approximate)
    x = as_tensor(x)
    if approximate == "none":
        return x * (ops.erf(x * _SQRT_HALF) + 1.0) * 0.5
    return x * (ops.tanh((x + x * x * x * 0.044715) * _SQRT_TWO_OVER_PI) + 1.0) * 0.5


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x) (also called swish).

    Shape: x (*) -> (*). Dtype: x's (floating).

    Raises:
        TypeError: x is a list (make Tensors with gd.tensor).
    """
    x = as_tensor(x)
    return x * ops.sigmoid(x)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold (as PyTorch).

    Shape: x (*) -> (*). Dtype: x's (floating).

    Raises:
        ValueError: beta is 0 or not finite. TypeError: x is a list.
    """
    check_beta("softplus", beta)
    x = as_tensor(x)
    scaled = x * beta if beta != 1.0 else x
    smooth = ops.softplus(scaled) / beta if beta != 1.0 else ops.softplus(scaled)
    return ops.where(scaled.data > threshold, x, smooth)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clipped to [min_val, max_val]; the gradient is 1 strictly inside, else 0 (as PyTorch).

    Shape: x (*) -> (*). Dtype: x's (floating).

    Raises:
        ValueError: min_val or max_val not finite, or min_val > max_val. TypeError: x is a list.
    """
    check_bounds("hardtanh", min_val, max_val)
    x = as_tensor(x)
    inside = (x.data > min_val) & (x.data < max_val)
    return ops.where(inside, x, Tensor(x.xp.clip(x.data, float(min_val), float(max_val))))


def _abs(x: Tensor) -> Tensor:
    # |x| = x * sign(x) with the sign held constant: the gradient is sign(x), 0 at 0 as in PyTorch
    return x * Tensor(x.xp.sign(x.data))


def softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis`` (or ``dim``; default the last), shifted by the
    (constant) max for stability.

    Shape: x (*) -> (*); each slice along the axis sums to 1. Dtype: x's (floating).

    Raises:
        ValueError: the axis is out of range. TypeError: both axis and dim, or x is a list.
    """
    x, axis = as_tensor(x), spelling("softmax", axis, dim, -1)
    shifted = x - ops.reduce_max(x, axis=axis, keepdims=True).detach()
    e = ops.exp(shifted)
    return e / ops.reduce_sum(e, axis=axis, keepdims=True)


def log_softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """x - log(sum(exp(x))) along ``axis`` (or ``dim``; default the last), shifted by the
    (constant) max for stability.

    Shape: x (*) -> (*). Dtype: x's (floating).

    Raises:
        ValueError: the axis is out of range. TypeError: both axis and dim, or x is a list.
    """
    x, axis = as_tensor(x), spelling("log_softmax", axis, dim, -1)
    shifted = x - ops.reduce_max(x, axis=axis, keepdims=True).detach()
    return shifted - ops.log(ops.reduce_sum(ops.exp(shifted), axis=axis, keepdims=True))


def _scores(name: str, input: Any, target: Any) -> Tensor:
    """``input`` as a Tensor of floating-point scores; an integer input beside a 2-D target is
    taken for swapped arguments, and the error says so."""
    input = as_tensor(input)
    if dtype_is(input.xp, input.dtype, "real floating"):
        return input
    hint = ""
    if input.ndim == 1 and len(getattr(target, "shape", ())) == 2:
        hint = (f"; the arguments look swapped: {name}(input, target) takes the (N, C) scores first and the (N,) "
                "class labels second")
    raise TypeError(
        f"{name}: input must be floating-point scores (N, C); got {dtype_name(input.dtype)} of shape {input.shape}"
        f"{hint}"
    )


def _labels(input: Tensor, target: Any, name: str):
    """Validate a class-index target for (N, C) scores; return it as an array on input's device."""
    scores = input.data
    if scores.ndim != 2:
        raise ValueError(f"{name}: input must be (N, C) scores; got shape {input.shape}")
    xp = input.xp
    # the tensor-argument rule: a Python list or number is refused, as by every other loss
    labels = as_tensor(target, f"{name}: target").data
    check_same_device([scores, labels])  # host labels beside device scores: no silent copy
    n, classes = scores.shape
    if tuple(labels.shape) != (n,):
        raise ValueError(
            f"{name}: target has shape {tuple(labels.shape)}; expected ({n},) class indices for input {input.shape}"
        )
    if not dtype_is(xp, labels.dtype, "integral"):
        raise TypeError(f"{name}: class-index target must be integers; got {labels.dtype}")
    # on a GPU the DataLoader checks labels once, on the host
    _check_index_range(name, "labels", labels, classes, "classes")
    return labels


def _check_index_range(name: str, what: str, indices: Any, count: int, unit: str) -> None:
    """Indices must lie in [0, count); read only where that costs no device synchronisation
    (the backend of the indices says; the DataLoader checks a dataset's labels on the host)."""
    if not math.prod(indices.shape):
        return
    bounds = backends.owner(indices).value_range(indices)
    if bounds is None:  # reading would synchronise the device, or it holds no values
        return
    low, high = bounds
    if low < 0 or high >= count:
        raise ValueError(
            f"{name}: {what} must lie in [0, {count - 1}] for {count} {unit}; got values from {low} to {high}"
        )


def padding_row(name: str, padding_idx: int | None, num_embeddings: int) -> int | None:
    """``padding_idx`` as a row in [0, num_embeddings) (negative ones count from the end), or None."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, int):
        raise ValueError(f"{name}: padding_idx must be an int or None; got {padding_idx!r}")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(
            f"{name}: padding_idx {padding_idx} is out of range for {num_embeddings} embeddings; expected "
            f"a value in [{-num_embeddings}, {num_embeddings - 1}]"
        )
    return padding_idx % num_embeddings


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """The rows of ``weight`` at integer indices: input (*) -> (*, embedding_dim).

    Args:
        input: integer indices in [0, num_embeddings), any shape (a Tensor, array or list).
        weight: (num_embeddings, embedding_dim).
        padding_idx: an index whose row receives no gradient (its output is the row as it is);
            negative values count from the end, as in PyTorch.

    Raises:
        ValueError: padding_idx outside [-num_embeddings, num_embeddings).

    Shape: input (*) -> (*, embedding_dim). Dtype: the weight's; input integer.

    Raises:
        ValueError: padding_idx outside [-num_embeddings, num_embeddings), or indices outside
            [0, num_embeddings) (checked where reading them is free: host memory).
        TypeError: indices that are not integers. DeviceMismatchError: indices on another device.
    """
    padding_idx = padding_row("embedding", padding_idx, weight.shape[0])
    indices = input.data if isinstance(input, Tensor) else input
    if hasattr(indices, "shape"):
        check_same_device([weight.data, indices])
    else:
        indices = weight.xp.asarray(indices, device=weight.device)
    xp = weight.xp
    if not dtype_is(xp, indices.dtype, "integral"):
        raise TypeError(f"embedding: indices must be integers; got {indices.dtype}")
    _check_index_range("embedding", "indices", indices, weight.shape[0], "embeddings")
    rows = ops.take(weight, xp.reshape(indices, (-1,)), axis=0)
    out = ops.reshape(rows, tuple(indices.shape) + (weight.shape[1],))
    if padding_idx is not None:
        out = ops.where((indices == padding_idx)[..., None], out.detach(), out)
    return out


def cross_entropy(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy, fused (one primitive, stable).

    Args:
        input: (N, C) unnormalised scores (logits).
        target: (N,) integer class indices in [0, C), or (N, C) class probabilities.
        reduction: "mean" (default), "sum" or "none" (per-sample losses, shape (N,)).

    Shape: () for "mean" and "sum", (N,) for "none". Dtype: the input's (floating).

    Raises:
        ValueError: an unknown reduction, an input that is not (N, C), a target of another
            shape, labels outside [0, C) (checked where reading is free; on a GPU the DataLoader
            checks a dataset's labels once, on the host).
        TypeError: integer scores (arguments swapped?), float labels for a 1-D target.
        DeviceMismatchError: the target on another device than the input.
    """
    _check_reduction(reduction)
    input = _scores("cross_entropy", input, target)
    target_array = target.data if isinstance(target, Tensor) else target
    # a 1-D target is class indices (in the wrong dtype if float, which _labels reports);
    # _labels checks the device of those
    if hasattr(target_array, "dtype") and len(target_array.shape) != 1:
        check_same_device([input.data, target_array])  # before reading a maybe foreign dtype
        if dtype_is(input.xp, target_array.dtype, "real floating"):
            if tuple(target_array.shape) != input.shape or input.ndim != 2:
                raise ValueError(
                    f"cross_entropy: probability target has shape {tuple(target_array.shape)}; "
                    f"expected {input.shape} with input (N, C)"
                )
            target = target if isinstance(target, Tensor) else Tensor(target_array)
            return ops.softmax_cross_entropy(input, target, reduction)
    return ops.softmax_cross_entropy(input, _labels(input, target, "cross_entropy"), reduction)


def nll_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices, given (N, C) log-probabilities.

    Args:
        input: (N, C) log-probabilities (log_softmax's output).
        target: (N,) integer class indices in [0, C).
        reduction: "mean" (default), "sum" or "none".

    Shape: () for "mean" and "sum", (N,) for "none". Dtype: the input's (floating).

    Raises:
        ValueError, TypeError, DeviceMismatchError: as ``cross_entropy`` for class indices.
    """
    _check_reduction(reduction)
    input = _scores("nll_loss", input, target)
    labels = _labels(input, target, "nll_loss")
    xp = input.xp
    is_target = labels[:, None] == xp.arange(input.shape[1], device=input.device)[None, :]
    # picked by where, not a one-hot product: a -inf of another class times 0 would be NaN
    return _reduce(-ops.reduce_sum(ops.where(is_target, input, 0.0), axis=1), reduction)


def _same_shape(name: str, input: Any, target: Any, what: str = "target") -> tuple[Tensor, Tensor]:
    """``input`` and ``target`` as Tensors, once the target is known to have the input's shape."""
    input, target = as_tensor(input), as_tensor(target, f"{name}: {what}")
    if target.shape != input.shape:
        raise ValueError(f"{name}: {what} has shape {target.shape}; expected the input's shape {input.shape}")
    return input, target


def _broadcastable(name: str, what: str, value: Any, shape: tuple[int, ...]) -> Tensor:
    """``value`` (a weight) as a Tensor, once it is known to broadcast to ``shape``."""
    got = tuple(getattr(value, "shape", ()))
    fits = len(got) <= len(shape) and all(g in (1, n) for g, n in zip(got[::-1], shape[::-1]))
    if not fits:
        raise ValueError(f"{name}: {what} has shape {got}; expected a shape that broadcasts to {shape}")
    return value if isinstance(value, Tensor) else Tensor(value)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error; input and target have the same shape.

    Shape: input (*), target (*) -> () for "mean" and "sum", (*) for "none". Dtype: the input's.

    Raises:
        ValueError: an unknown reduction, or a target of another shape. TypeError: a list.
    """
    _check_reduction(reduction)
    input, target = _same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean absolute error |input - target|; input and target have the same shape.

    Shape: as ``mse_loss``. Dtype: the input's. Gradient sign(d), 0 where d = 0 (PyTorch's).

    Raises:
        ValueError: an unknown reduction, or a target of another shape. TypeError: a list.
    """
    _check_reduction(reduction)
    input, target = _same_shape("l1_loss", input, target)
    return _reduce(_abs(input - target), reduction)


def smooth_l1_loss(input: Tensor, target: Any, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta, for d = input - target (Girshick, 2015).

    beta = 0 is l1_loss.

    Shape: as ``mse_loss``. Dtype: the input's.

    Raises:
        ValueError: an unknown reduction, a target of another shape, beta negative or infinite.
    """
    _check_reduction(reduction)
    if not 0 <= beta < math.inf:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative and finite; got {beta}")
    input, target = _same_shape("smooth_l1_loss", input, target)
    diff = input - target
    size = _abs(diff)
    if beta == 0:
        return _reduce(size, reduction)
    return _reduce(ops.where(size.data < beta, diff * diff * (0.5 / beta), size - 0.5 * beta), reduction)


def huber_loss(input: Tensor, target: Any, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), for d = input - target (Huber, 1964).

    Shape: as ``mse_loss``. Dtype: the input's.

    Raises:
        ValueError: an unknown reduction, a target of another shape, delta not positive and finite.
    """
    _check_reduction(reduction)
    if not 0 < delta < math.inf:
        raise ValueError(f"huber_loss: delta must be positive and finite; got {delta}")
    input, target = _same_shape("huber_loss", input, target)
    diff = input - target
    size = _abs(diff)
    return _reduce(ops.where(size.data < delta, diff * diff * 0.5, (size - 0.5 * delta) * delta), reduction)


def _clamped_log(p: Tensor) -> Tensor:
    """log(p), at least -100 (PyTorch's clamp in binary_cross_entropy); no warning or NaN at p = 0."""
    safe = ops.where(p.data > 0, p, 1.0)  # log(0) never runs, so its gradient is never 0 * inf
    log = ops.log(safe)
    return ops.where((log.data > -100.0) & (p.data > 0), log, -100.0)


def binary_cross_entropy(input: Tensor, target: Any, weight: Any = None, reduction: str = "mean") -> Tensor:
    """-(target log(input) + (1 - target) log(1 - input)), each log at least -100 (as PyTorch).

    Args:
        input: probabilities in [0, 1], any shape.
        target: the same shape, values in [0, 1].
        weight: optional rescaling, broadcast to the input's shape.
        reduction: "mean" (default), "sum" or "none".

    Shape: () for "mean" and "sum", the input's for "none". Dtype: the input's.

    Raises:
        ValueError: an unknown reduction, a target of another shape, a weight that does not
            broadcast, input values outside [0, 1] (checked where reading is free).
    """
    _check_reduction(reduction)
    input, target = _same_shape("binary_cross_entropy", input, target)
    bounds = backends.owner(input.data).value_range(input.data) if input.size else None
    if bounds is not None:  # only where reading is free
        low, high = bounds
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(
                f"binary_cross_entropy: input must be probabilities in [0, 1]; got values from {low} to {high} "
                "(for scores, use binary_cross_entropy_with_logits)"
            )
    loss = -(target * _clamped_log(input) + (1.0 - target) * _clamped_log(1.0 - input))
    if weight is not None:
        loss = loss * _broadcastable("binary_cross_entropy", "weight", weight, input.shape)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(
    input: Tensor, target: Any, weight: Any = None, reduction: str = "mean", pos_weight: Any = None
) -> Tensor:
    """binary_cross_entropy(sigmoid(input), target), computed stably from the scores.

    loss = (1 - target) input + (1 + (pos_weight - 1) target) softplus(-input).

    Args:
        input: scores (logits), any shape.
        target: the same shape, values in [0, 1].
        weight: optional rescaling, broadcast to the input's shape.
        reduction: "mean" (default), "sum" or "none".
        pos_weight: optional weight of the positive term, broadcast along the last axis
            (one per class): above 1 raises recall, below 1 precision.

    Shape: () for "mean" and "sum", the input's for "none". Dtype: the input's.

    Raises:
        ValueError: an unknown reduction, a target of another shape, a weight or pos_weight
            that does not broadcast to the input.
    """
    _check_reduction(reduction)
    name = "binary_cross_entropy_with_logits"
    input, target = _same_shape(name, input, target)
    log_term = ops.softplus(-input)  # -log(sigmoid(input))
    if pos_weight is not None:
        log_term = log_term * ((_broadcastable(name, "pos_weight", pos_weight, input.shape) - 1.0) * target + 1.0)
    loss = (1.0 - target) * input + log_term
    if weight is not None:
        loss = loss * _broadcastable(name, "weight", weight, input.shape)
    return _reduce(loss, reduction)


def kl_div(input: Tensor, target: Any, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Kullback-Leibler divergence KL(target || q), given ``input`` = log q (as PyTorch).

    Pointwise target * (log(target) - input), 0 where target is 0.

    Args:
        input: log-probabilities, any shape (typically (N, C) from log_softmax).
        target: probabilities of the same shape, or log-probabilities with ``log_target``.
        reduction: "mean" (over every element, as PyTorch), "batchmean" (the sum divided by
            N = input.shape[0]: the true KL divergence per sample), "sum" or "none".

    Shape: () except for "none" (the input's). Dtype: the input's.

    Raises:
        ValueError: an unknown reduction, or a target of another shape. TypeError: a list.
    """
    if reduction not in _REDUCTIONS + ("batchmean",):
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {_REDUCTIONS + ('batchmean',)}")
    input, target = _same_shape("kl_div", input, target)
    # where the target is 0 the term is 0 whatever the input: 0 stands in for both there, so a
    # log q of -inf (a masked class) or a log-target of -inf never meets a 0 (0 log 0 = 0)
    if log_target:
        present = target.data > -math.inf
        safe = ops.where(present, target, 0.0)
        loss = ops.exp(safe) * (safe - ops.where(present, input, 0.0))
    else:
        present = target.data > 0
        loss = target * (ops.log(ops.where(present, target, 1.0)) - ops.where(present, input, 0.0))
    if reduction == "batchmean":
        return loss.sum() / float(input.shape[0]) if input.ndim else loss.sum()
    return _reduce(loss, reduction)


def _vector_norm(x: Tensor, p: float, axis: int) -> Tensor:
    """||x||_p along ``axis`` (kept), with gradient 0 where the norm is 0, as torch's vector_norm:
    there the root's derivative is inf and |x|'s is 0, and their product would be NaN."""
    total = ops.reduce_sum(x * x if p == 2.0 else _abs(x) ** float(p), axis=axis, keepdims=True)
    nonzero = total.data > 0
    safe = ops.where(nonzero, total, 1.0)  # the root never sees a 0, so no inf reaches the VJP
    return ops.where(nonzero, ops.sqrt(safe) if p == 2.0 else safe ** (1.0 / p), 0.0)


def normalize(x: Tensor, p: float = 2.0, dim: int | None = None, eps: float = 1e-12, *, axis: int | None = None
              ) -> Tensor:
    """x / max(||x||_p, eps) along ``dim`` (or ``axis``; default 1): unit vectors (as
    torch.nn.functional.normalize).

    An all-zero vector stays zero, with the gradient 1 / eps (PyTorch's), not NaN.

    Shape: x (*) -> (*). Dtype: x's (floating).

    Raises:
        ValueError: p not positive, eps negative or infinite, the axis out of range.
        TypeError: both dim and axis, or x is a list.
    """
    x, axis = as_tensor(x), spelling("normalize", dim, axis, 1, ("dim", "axis"))
    if not p > 0 or not 0 <= eps < math.inf:
        raise ValueError(f"normalize: p must be positive (or math.inf) and eps non-negative and finite; got p={p}, "
                         f"eps={eps}")
    # the largest magnitude for p = inf, as torch's inf-norm
    norm = ops.reduce_max(_abs(x), axis=axis, keepdims=True) if p == math.inf else _vector_norm(x, p, axis)
    return x / ops.maximum(norm, float(eps))


def check_temperature(name: str, temperature: Any) -> None:
    """ValueError unless ``temperature`` (of the contrastive loss ``name``) is positive and finite."""
    if not 0 < temperature < math.inf:
        raise ValueError(f"{name}: temperature must be positive and finite; got {temperature}")


def _embeddings(name: str, **tensors: Tensor) -> tuple[int, int]:
    shapes = {key: t.shape for key, t in tensors.items()}
    first = next(iter(shapes.values()))
    if len(first) != 2 or any(s[-1:] != first[-1:] or len(s) != 2 for s in shapes.values()):
        raise ValueError(f"{name}: expected (N, D) embeddings with one D; got shapes {shapes}")
    return first


def _self_masked(scores: Tensor) -> Tensor:
    """Square scores with the diagonal pushed to the dtype's lowest value: softmax gives it 0."""
    xp, n = scores.xp, scores.shape[0]
    positions = xp.arange(n, device=scores.device)
    lowest = float(xp.finfo(scores.dtype).min)
    return ops.where(positions[:, None] == positions[None, :], lowest, scores)


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5, reduction: str = "mean") -> Tensor:
    """SimCLR's normalized temperature-scaled cross-entropy (Chen et al., 2020).

    The 2N embeddings of two views, z = [z1; z2], are L2-normalized; s_ij = z_i . z_j / temperature.
    Each z_i is scored against its positive (the same example's other view) among the other
    2N - 1 embeddings: loss_i = -log(exp(s_ip) / sum over k != i of exp(s_ik)), averaged over the 2N.

    Args:
        z1, z2: (N, D) embeddings of two views; row n of each comes from example n.
        temperature: divides the cosine similarities (smaller: sharper).
        reduction: "mean" (default), "sum" or "none" (the 2N per-embedding losses, z1's first).

    Shape: () for "mean" and "sum", (2N,) for "none". Dtype: the embeddings' (floating).

    Raises:
        ValueError: an unknown reduction, a temperature not positive and finite, z1 and z2 not
            of one (N, D) shape. TypeError: a list.
    """
    _check_reduction(reduction)
    check_temperature("nt_xent", temperature)
    z1, z2 = as_tensor(z1, "nt_xent: z1"), as_tensor(z2, "nt_xent: z2")
    n, _ = _embeddings("nt_xent", z1=z1, z2=z2)
    if z1.shape != z2.shape:
        raise ValueError(f"nt_xent: z1 and z2 must have one shape (N, D); got {z1.shape} and {z2.shape}")
    z = normalize(ops.concat([z1, z2]), axis=1)
    scores = _self_masked(ops.matmul(z, z.mT) * (1.0 / temperature))
    xp = z.xp
    first = xp.arange(n, dtype=xp.int64, device=z.device)
    positives = xp.concat([first + n, first])
    return cross_entropy(scores, positives, reduction)


def info_nce(
    query: Tensor, positive_key: Tensor, negative_keys: Tensor | None = None, temperature: float = 0.1,
    reduction: str = "mean",
) -> Tensor:
    """InfoNCE (van den Oord et al., 2018): pick each query's positive key by cosine similarity.

    Without ``negative_keys`` the other rows' positive keys are the negatives (in-batch, as
    in CLIP's one direction): logits = normalize(query) @ normalize(positive_key).T / temperature,
    and row n's answer is column n. With ``negative_keys`` (M, D), every query is scored against
    its own positive key and all M negatives, and the answer is the positive.

    Args:
        query, positive_key: (N, D); row n of each is a positive pair.
        negative_keys: optional (M, D) negatives shared by every query.
        temperature: divides the cosine similarities.
        reduction: "mean" (default), "sum" or "none" (N per-query losses).

    Shape: () for "mean" and "sum", (N,) for "none". Dtype: the embeddings' (floating).

    Raises:
        ValueError: an unknown reduction, a temperature not positive and finite, embeddings
            that are not (N, D) with one D, a positive_key of another shape than the query.
    """
    _check_reduction(reduction)
    check_temperature("info_nce", temperature)
    query, positive_key = as_tensor(query, "info_nce: query"), as_tensor(positive_key, "info_nce: positive_key")
    if negative_keys is not None:
        negative_keys = as_tensor(negative_keys, "info_nce: negative_keys")
    keys = {"query": query, "positive_key": positive_key}
    if negative_keys is not None:
        keys["negative_keys"] = negative_keys
    n, _ = _embeddings("info_nce", **keys)
    if positive_key.shape != query.shape:
        raise ValueError(f"info_nce: positive_key has shape {positive_key.shape}; expected the query's {query.shape}")
    xp = query.xp
    q, k = normalize(query, axis=1), normalize(positive_key, axis=1)
    if negative_keys is None:
        logits = ops.matmul(q, k.mT)
        answers = xp.arange(n, dtype=xp.int64, device=query.device)
    else:
        positive = ops.reduce_sum(q * k, axis=1, keepdims=True)
        logits = ops.concat([positive, ops.matmul(q, normalize(negative_keys, axis=1).mT)], axis=1)
        answers = xp.zeros((n,), dtype=xp.int64, device=query.device)
    return cross_entropy(logits * (1.0 / temperature), answers, reduction)


def flatten(x: Tensor, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """Merge dimensions start_dim..end_dim into one (a 0-d input becomes 1-D, as in PyTorch).

    Shape: (d0, ..., dn) -> (d0, ..., d[start] * ... * d[end], ..., dn). Dtype: x's.

    Raises:
        TypeError: x is a list (make Tensors with gd.tensor).
    """
    x = as_tensor(x)
    shape = tuple(x.data.shape)
    if not shape:
        return ops.reshape(x, (1,))
    start, end = start_dim % len(shape), end_dim % len(shape)
    return ops.reshape(x, shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :])


def accuracy(scores: Tensor, labels: Any) -> Tensor:
    """Fraction of rows whose largest score is at the label (a 0-d array; no grad, no sync).

    Args:
        scores: (N, C) class scores.
        labels: (N,) integer class indices.

    Shape: scores (N, C), labels (N,) -> (). Dtype: the scores'.

    Raises:
        ValueError: scores or labels of another shape or kind (regression targets, say), for
            which accuracy means nothing.
    """
    scores = as_tensor(scores, "accuracy: scores")
    xp = scores.xp
    labels = labels.data if isinstance(labels, Tensor) else labels
    shape = tuple(getattr(labels, "shape", ()))
    if scores.ndim != 2 or shape != scores.shape[:1] or not dtype_is(xp, labels.dtype, "integral"):
        kind = dtype_name(labels.dtype) if hasattr(labels, "dtype") else type(labels).__name__
        raise ValueError(
            f"accuracy applies to (N, C) class scores and (N,) integer class labels; got scores of shape "
            f"{scores.shape} and {kind} labels of shape {shape} (a regression has no accuracy: leave it out of "
            "the metrics)"
        )
    hits = xp.astype(xp.argmax(scores.data, axis=1) == labels, scores.dtype)
    return Tensor(xp.mean(hits))

