"""RMSprop: the gradient divided by a running root mean square, optionally centred, with momentum."""

from __future__ import annotations

from typing import Any, Iterable

from ..autograd import namespace_of
from .optimizer import Optimizer
from .transform import (
    Transform,
    add_decayed_weights,
    buffer,
    chain,
    check_flag,
    check_number,
    ema_,
    ema_square_,
    scale_by_learning_rate,
    trace,
    zeros_like,
)


def scale_by_rms() -> Transform:
    """u <- u / (sqrt(v - c * m**2) + eps) with v <- alpha * v + (1 - alpha) * u**2 and, when
    ``centered`` (c = 1), m <- alpha * m + (1 - alpha) * u (``square_avg``, ``grad_avg``)."""

    def init(param, group):
        return {"square_avg": zeros_like(param)}

    def update(u, state, param, group):
        alpha = group["alpha"]
        square_avg = state["square_avg"]
        ema_square_(square_avg, u, alpha)
        xp = namespace_of(square_avg)
        if group["centered"]:
            grad_avg = buffer(state, "grad_avg", u)
            ema_(grad_avg, u, alpha)
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += group["eps"]
        return u / avg

    def check(group):
        check_number(group, "alpha", "alpha value", 0.0, 1.0)
        check_number(group, "eps", "epsilon value")
        check_flag(group, "centered")

    return Transform(init, update, check)


class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012, Neural Networks for Machine Learning, lecture 6e; the centred form
    from Graves, 2013, "Generating Sequences With Recurrent Neural Networks"), PyTorch's form::

        g = grad + weight_decay * p
        v = alpha * v + (1 - alpha) * g**2
        m = alpha * m + (1 - alpha) * g              (centered only)
        d = g / (sqrt(v - m**2 if centered else v) + eps)
        b = momentum * b + d;  d = b                 (momentum > 0 only; b starts at 0)
        p = p - lr * d

    ``chain(add_decayed_weights(), scale_by_rms(), trace(), scale_by_learning_rate())``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (>= 0).
        alpha: smoothing constant, in [0, 1].
        eps: added to the denominator (>= 0).
        weight_decay: L2 penalty coefficient (>= 0).
        momentum: momentum factor (>= 0).
        centered: divide by an estimate of the gradient's variance instead of its second moment.
    """

    transform = chain(add_decayed_weights(), scale_by_rms(), trace(), scale_by_learning_rate())

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))
