"""NAdam: Adam with Nesterov momentum and a momentum schedule."""

from __future__ import annotations

from typing import Any, Iterable

from ..autograd import namespace_of
from .adam import check_moments, init_moments, update_moments
from .optimizer import Optimizer
from .transform import Transform, add_decayed_weights, chain, check_number, scale_by_learning_rate


def scale_by_nadam() -> Transform:
    """u <- ((1 - mu_t) / (1 - P_t) * u + mu_{t+1} / (1 - P_{t+1}) * m) / (sqrt(v_hat) + eps) with
    mu_t = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay)), P_t = mu_1 ... mu_t (``mu_product``, a
    Python float) and v_hat = v / (1 - beta2**t)."""

    def init(param, group):
        return {**init_moments(param, group), "mu_product": 1.0}

    def update(u, state, param, group):
        beta1, beta2 = group["betas"]
        step, momentum_decay = state["step"], group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
        mu_product = state["mu_product"] = state["mu_product"] * mu
        exp_avg, exp_avg_sq = update_moments(u, state, beta1, beta2)
        xp = namespace_of(exp_avg_sq)
        denom = xp.sqrt(exp_avg_sq / (1.0 - beta2**step))
        denom += group["eps"]
        out = u * ((1.0 - mu) / (1.0 - mu_product))
        out += exp_avg * (mu_next / (1.0 - mu_product * mu_next))
        out /= denom
        return out

    def check(group):
        check_moments(group)
        check_number(group, "momentum_decay", "momentum_decay value")

    return Transform(init, update, check)


class NAdam(Optimizer):
    """NAdam (Dozat, 2016, "Incorporating Nesterov Momentum into Adam"), PyTorch's form::

        g = grad + weight_decay * p              (L2; decoupled_weight_decay moves it below)
        mu_t = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay)),   P_t = mu_1 * ... * mu_t
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        d = ((1 - mu_t) / (1 - P_t) * g + mu_{t+1} / (1 - P_{t+1}) * m) / (sqrt(v / (1 - beta2**t)) + eps)
        d = d + weight_decay * p                 (decoupled_weight_decay only)
        p = p - lr * d

    ``chain(add_decayed_weights(), scale_by_nadam(), add_decayed_weights(decoupled=True),
    scale_by_learning_rate())``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (>= 0).
        betas: decay rates (beta1, beta2) of the moment estimates, each in [0, 1).
        eps: added to the denominator (>= 0).
        weight_decay: weight decay coefficient (>= 0).
        momentum_decay: the momentum schedule's rate psi (>= 0).
        decoupled_weight_decay: decay the weights directly (as AdamW) instead of an L2 term.
    """

    transform = chain(add_decayed_weights(), scale_by_nadam(), add_decayed_weights(decoupled=True),
                      scale_by_learning_rate())

    def __init__(self, params: Iterable[Any], lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay))
