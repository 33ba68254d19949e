"""Fused CUDA kernels registered as the cupy backend's fast paths.

Each has a portable reference in core; a cupy-row test asserts they agree.
"""

from __future__ import annotations

import cupy

from ._base import register_fast_path
from .cupy_backend import FAST_PATHS

# one pass over each parameter for SGD with momentum (after the first step made the buffer)
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
    """In place: the same update as gdnet.optim.SGD's reference loop."""
    dtype = param.dtype.type
    _sgd_momentum(grad, dtype(lr), dtype(momentum), dtype(dampening), dtype(decay), bool(nesterov), param, buffer)
