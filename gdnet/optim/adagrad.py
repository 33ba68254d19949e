"""Adagrad: per-coordinate step sizes from the running sum of squared gradients."""

from __future__ import annotations

from typing import Any, Iterable

from ..autograd import namespace_of
from .optimizer import Optimizer
from .transform import Transform, add_decayed_weights, chain, check_number, full_like, no_state


def scale_by_rss() -> Transform:
    """u <- u / (sqrt(s) + eps) with s <- s + u**2, the root of the sum of squares so far
    (``state["sum"]``, starting at ``initial_accumulator_value``)."""

    def init(param, group):
        return {"sum": full_like(param, group["initial_accumulator_value"])}

    def update(u, state, param, group):
        total = state["sum"]
        total += u * u
        std = namespace_of(total).sqrt(total)
        std += group["eps"]
        return u / std

    def check(group):
        check_number(group, "initial_accumulator_value", "initial_accumulator_value value")
        check_number(group, "eps", "epsilon value")

    return Transform(init, update, check)


def scale_by_decayed_learning_rate() -> Transform:
    """u <- -lr / (1 + (t - 1) * lr_decay) * u, t = state["step"]: Adagrad's learning rate."""

    def update(u, state, param, group):
        return u * -(group["lr"] / (1.0 + (state["step"] - 1) * group["lr_decay"]))

    def check(group):
        check_number(group, "lr", "learning rate")
        check_number(group, "lr_decay", "lr_decay value")

    return Transform(no_state, update, check)


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer, 2011, "Adaptive Subgradient Methods for Online Learning
    and Stochastic Optimization"), PyTorch's form::

        g = grad + weight_decay * p
        s = s + g**2                       (s starts at initial_accumulator_value)
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)

    ``chain(add_decayed_weights(), scale_by_rss(), scale_by_decayed_learning_rate())``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (>= 0).
        lr_decay: learning-rate decay per step (>= 0).
        weight_decay: L2 penalty coefficient (>= 0).
        initial_accumulator_value: starting value of the sum of squares (>= 0).
        eps: added to the denominator (>= 0).
    """

    transform = chain(add_decayed_weights(), scale_by_rss(), scale_by_decayed_learning_rate())

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))
