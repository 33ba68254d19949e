"""RAdam: Adam with the variance of its adaptive step rectified."""

from __future__ import annotations

import math
from typing import Any, Iterable

from ..autograd import namespace_of
from .adam import check_moments, init_moments, update_moments
from .optimizer import Optimizer
from .transform import Transform, add_decayed_weights, chain, scale_by_learning_rate


def scale_by_radam() -> Transform:
    """u <- m_hat * r_t * sqrt(1 - beta2**t) / (sqrt(v) + eps) while rho_t > 5, else m_hat, with
    m_hat = m / (1 - beta1**t), rho_inf = 2 / (1 - beta2) - 1,
    rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t) and
    r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)). The branch
    depends on the step count only, a Python int."""

    def update(u, state, param, group):
        beta1, beta2 = group["betas"]
        step = state["step"]
        exp_avg, exp_avg_sq = update_moments(u, state, beta1, beta2)
        correction1 = 1.0 - beta1**step
        correction2 = 1.0 - beta2**step
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        rho_t = rho_inf - 2.0 * step * beta2**step / correction2
        if rho_t <= 5.0:
            return exp_avg / correction1
        rect = math.sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
        xp = namespace_of(exp_avg_sq)
        denom = xp.sqrt(exp_avg_sq)
        denom += group["eps"]
        out = exp_avg / denom
        out *= rect * math.sqrt(correction2) / correction1
        return out

    return Transform(init_moments, update, check_moments)


class RAdam(Optimizer):
    """RAdam (Liu et al., 2020, "On the Variance of the Adaptive Learning Rate and Beyond"),
    PyTorch's form::

        g = grad + weight_decay * p              (L2; decoupled_weight_decay moves it below)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        rho_inf = 2 / (1 - beta2) - 1,  rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)
        d = m_hat * r_t * sqrt(1 - beta2**t) / (sqrt(v) + eps)   if rho_t > 5
        d = m_hat                                                 otherwise
        d = d + weight_decay * p                 (decoupled_weight_decay only)
        p = p - lr * d

    with r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)).
    ``chain(add_decayed_weights(), scale_by_radam(), add_decayed_weights(decoupled=True),
    scale_by_learning_rate())``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (>= 0).
        betas: decay rates (beta1, beta2) of the moment estimates, each in [0, 1).
        eps: added to the denominator (>= 0).
        weight_decay: weight decay coefficient (>= 0).
        decoupled_weight_decay: decay the weights directly (as AdamW) instead of an L2 term.
    """

    transform = chain(add_decayed_weights(), scale_by_radam(), add_decayed_weights(decoupled=True),
                      scale_by_learning_rate())

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay))
