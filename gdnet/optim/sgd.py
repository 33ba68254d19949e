"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import Any, Iterable

from .._backend import get_backend
from ..autograd import no_grad
from .optimizer import Optimizer


class SGD(Optimizer):
    """Gradient descent on whatever batch the loss was computed from (batch, mini-batch or
    stochastic GD is the DataLoader's batch size), with PyTorch's update rule::

        g = grad + weight_decay * p
        b = g                                  (first step)
        b = momentum * b + (1 - dampening) * g (later steps)
        g = g + momentum * b if nesterov else b
        p = p - lr * g

    Nesterov momentum follows Sutskever et al. (2013), "On the importance of initialization and
    momentum in deep learning".

    Args:
        params: parameters or parameter groups.
        lr: learning rate (> 0).
        momentum: momentum factor in [0, 1).
        dampening: dampening for momentum.
        weight_decay: L2 penalty coefficient (>= 0).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening 0).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))
        # a backend may register one fused kernel for the whole momentum update
        self._fused = get_backend().fast_path("sgd_momentum")

    def _validate(self, group):
        super()._validate(group)
        if group["momentum"] < 0.0:
            raise ValueError(f"Invalid momentum value: {group['momentum']} (expected >= 0)")
        if group["weight_decay"] < 0.0:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']} (expected >= 0)")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening")

    def step(self) -> None:
        """Update every parameter that has a gradient, in place, on its device."""
        with no_grad():
            for group in self.param_groups:
                lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
                decay, nesterov = group["weight_decay"], group["nesterov"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state.setdefault(id(p), {})
                    buffer = state.get("momentum_buffer")
                    if self._fused is not None and momentum and buffer is not None:
                        self._fused(p.data, p.grad.data, buffer, lr, momentum, dampening, decay, nesterov)
                        continue
                    grad = p.grad.data
                    if decay:
                        grad = grad + decay * p.data
                    if momentum:
                        xp = p.xp
                        if buffer is None:
                            buffer = state["momentum_buffer"] = xp.asarray(grad, copy=True)
                        else:
                            buffer *= momentum
                            buffer += grad if dampening == 0.0 else (1.0 - dampening) * grad
                        grad = grad + momentum * buffer if nesterov else buffer
                    p.data -= lr * grad
