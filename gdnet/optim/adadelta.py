"""Adadelta: step sizes from running averages of squared gradients and squared updates."""

from __future__ import annotations

from typing import Any, Iterable

from ..autograd import namespace_of
from .optimizer import Optimizer
from .transform import (
    Transform,
    add_decayed_weights,
    chain,
    check_number,
    ema_square_,
    scale_by_learning_rate,
    zeros_like,
)


def scale_by_adadelta() -> Transform:
    """u <- sqrt(a + eps) / sqrt(v + eps) * u with v <- rho * v + (1 - rho) * u**2 before and
    a <- rho * a + (1 - rho) * (new u)**2 after (``square_avg``, ``acc_delta``)."""

    def init(param, group):
        return {"square_avg": zeros_like(param), "acc_delta": zeros_like(param)}

    def update(u, state, param, group):
        rho, eps = group["rho"], group["eps"]
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        xp = namespace_of(square_avg)
        ema_square_(square_avg, u, rho)
        std = xp.sqrt(square_avg + eps)
        delta = xp.sqrt(acc_delta + eps)
        delta /= std
        delta *= u
        ema_square_(acc_delta, delta, rho)
        return delta

    def check(group):
        check_number(group, "rho", "rho value", 0.0, 1.0)
        check_number(group, "eps", "epsilon value")

    return Transform(init, update, check)


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012, "ADADELTA: An Adaptive Learning Rate Method"), PyTorch's form::

        g = grad + weight_decay * p
        v = rho * v + (1 - rho) * g**2
        d = sqrt(a + eps) / sqrt(v + eps) * g
        a = rho * a + (1 - rho) * d**2
        p = p - lr * d

    ``chain(add_decayed_weights(), scale_by_adadelta(), scale_by_learning_rate())``.

    Args:
        params: parameters or parameter groups.
        lr: scale applied to the update (>= 0; the paper has none, i.e. 1).
        rho: decay of the running averages, in [0, 1].
        eps: added inside both square roots (>= 0).
        weight_decay: L2 penalty coefficient (>= 0).
    """

    transform = chain(add_decayed_weights(), scale_by_adadelta(), scale_by_learning_rate())

    def __init__(self, params: Iterable[Any], lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))
