"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import Any, Iterable

from .optimizer import Optimizer
from .transform import add_decayed_weights, chain, scale_by_learning_rate, trace


class SGD(Optimizer):
    """Gradient descent on whatever batch the loss was computed from (batch, mini-batch or
    stochastic GD is the DataLoader's batch size), with PyTorch's update rule::

        g = grad + weight_decay * p
        b = g                                  (first step)
        b = momentum * b + (1 - dampening) * g (later steps)
        g = g + momentum * b if nesterov else b
        p = p - lr * g

    Momentum is Polyak's heavy ball (1964); Nesterov momentum follows Sutskever et al. (2013),
    "On the importance of initialization and momentum in deep learning".
    ``chain(add_decayed_weights(), trace(), scale_by_learning_rate())``; a backend may register
    the fast path ``sgd_momentum`` (gdnet.fast_paths) for the steps after the first.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (>= 0).
        momentum: momentum factor (>= 0).
        dampening: dampening for momentum, in [0, 1].
        weight_decay: L2 penalty coefficient (>= 0).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening 0).

    Example::

        opt = gd.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        opt.zero_grad(); loss.backward(); opt.step()
    """

    transform = chain(add_decayed_weights(), trace(), scale_by_learning_rate())
    fast_path = "sgd_momentum"

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _fast_step(self, kernel, params, grads, states, group) -> bool:
        # the first step makes the buffers on the reference path; the kernel does every later one
        if group["momentum"] == 0.0:
            return False
        buffers = [state.get("momentum_buffer") for state in states]
        for buffer in buffers:
            if buffer is None:
                return False
        kernel(params, grads, buffers, group["lr"], group["momentum"], group["dampening"], group["weight_decay"],
               group["nesterov"])
        return True
