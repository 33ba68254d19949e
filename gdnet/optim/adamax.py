"""Adamax: Adam with the infinity norm in place of the second moment."""

from __future__ import annotations

from typing import Any, Iterable

from ..autograd import namespace_of
from .adam import check_moments
from .optimizer import Optimizer
from .transform import Transform, add_decayed_weights, chain, ema_, scale_by_learning_rate, zeros_like


def scale_by_adamax() -> Transform:
    """u <- m / ((1 - beta1**t) * n) with m <- beta1 * m + (1 - beta1) * u and
    n <- max(beta2 * n, |u| + eps) (``exp_avg``, ``exp_inf``)."""

    def init(param, group):
        return {"exp_avg": zeros_like(param), "exp_inf": zeros_like(param)}

    def update(u, state, param, group):
        beta1, beta2 = group["betas"]
        exp_avg = state["exp_avg"]
        ema_(exp_avg, u, beta1)
        xp = namespace_of(exp_avg)
        norm = xp.abs(u)
        norm += group["eps"]
        exp_inf = state["exp_inf"] = xp.maximum(state["exp_inf"] * beta2, norm)
        return exp_avg / (exp_inf * (1.0 - beta1 ** state["step"]))

    return Transform(init, update, check_moments)


class Adamax(Optimizer):
    """Adamax (Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization", section 7.1),
    PyTorch's form::

        g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        n = max(beta2 * n, |g| + eps)
        p = p - lr / (1 - beta1**t) * m / n

    ``chain(add_decayed_weights(), scale_by_adamax(), scale_by_learning_rate())``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (>= 0).
        betas: decay rates (beta1, beta2) of the moment and the norm, each in [0, 1).
        eps: added to |g| (>= 0).
        weight_decay: L2 penalty coefficient (>= 0).
    """

    transform = chain(add_decayed_weights(), scale_by_adamax(), scale_by_learning_rate())

    def __init__(self, params: Iterable[Any], lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
