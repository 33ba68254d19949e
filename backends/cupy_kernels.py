"""Fused CUDA kernels registered as the cupy backend's fast paths.

Each does, in one pass over a parameter, what its portable reference in gdnet.optim does with
several array operations; a cupy-row test asserts they agree.
"""

from __future__ import annotations

import cupy

from ._base import register_fast_path
from .cupy_backend import FAST_PATHS

# SGD with momentum (after the first step made the buffer), as gdnet.optim.SGD's chain
_sgd_momentum = cupy.ElementwiseKernel(
    "T grad, T lr, T momentum, T dampening, T decay, bool nesterov",
    "T param, T buffer",
    """
    T g = grad + decay * param;
    buffer = momentum * buffer + (1 - dampening) * g;
    param -= lr * (nesterov ? g + momentum * buffer : buffer);
    """,
    "gdnet_sgd_momentum",
)


@register_fast_path(FAST_PATHS, "sgd_momentum")
def sgd_momentum(param, grad, buffer, lr, momentum, dampening, decay, nesterov) -> None:
    """In place: the same update as gdnet.optim.SGD's reference chain."""
    dtype = param.dtype.type
    _sgd_momentum(grad, dtype(lr), dtype(momentum), dtype(dampening), dtype(decay), bool(nesterov), param, buffer)


# Adam / AdamW, line for line as gdnet.optim.adam's chain: add_decayed_weights (l2),
# scale_by_adam (bias corrections folded into scale and eps by transform.adam_scalars),
# add_decayed_weights(decoupled=True) (decoupled), scale_by_learning_rate
# rate1 = 1 - beta1 and rate2 = 1 - beta2 come from Python (double), as the reference's do
_ADAM_PARAMS = "T grad, T lr, T rate1, T beta2, T rate2, T scale, T eps, T l2, T decoupled"
_ADAM_MOMENTS = """
    T g = grad + l2 * param;
    exp_avg += (g - exp_avg) * rate1;
    exp_avg_sq = exp_avg_sq * beta2 + (g * g) * rate2;
"""
_ADAM_STEP = """
    T u = exp_avg / (sqrt(second) * scale + eps) + decoupled * param;
    param += u * -lr;
"""
_adam = cupy.ElementwiseKernel(
    _ADAM_PARAMS,
    "T param, T exp_avg, T exp_avg_sq",
    _ADAM_MOMENTS + "T second = exp_avg_sq;" + _ADAM_STEP,
    "gdnet_adam",
)
_adam_amsgrad = cupy.ElementwiseKernel(
    _ADAM_PARAMS,
    "T param, T exp_avg, T exp_avg_sq, T max_exp_avg_sq",
    _ADAM_MOMENTS
    # the running maximum, NaN-propagating like xp.maximum
    + "if (max_exp_avg_sq < exp_avg_sq || exp_avg_sq != exp_avg_sq) max_exp_avg_sq = exp_avg_sq;"
    + "T second = max_exp_avg_sq;"
    + _ADAM_STEP,
    "gdnet_adam_amsgrad",
)


@register_fast_path(FAST_PATHS, "adam")
def adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, scale, eps, l2, decoupled) -> None:
    """In place: the same update as gdnet.optim.Adam's reference chain (AdamW: ``l2`` 0 and
    ``decoupled`` the weight decay; Adam: the other way round). ``max_exp_avg_sq`` is None
    without amsgrad."""
    dtype = param.dtype.type
    scalars = (dtype(lr), dtype(1.0 - beta1), dtype(beta2), dtype(1.0 - beta2), dtype(scale), dtype(eps), dtype(l2),
               dtype(decoupled))
    if max_exp_avg_sq is None:
        _adam(grad, *scalars, param, exp_avg, exp_avg_sq)
    else:
        _adam_amsgrad(grad, *scalars, param, exp_avg, exp_avg_sq, max_exp_avg_sq)
