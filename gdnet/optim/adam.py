"""Adam and AdamW, and the moment estimates the Adam family shares."""

from __future__ import annotations

from typing import Any, Iterable

from ..autograd import namespace_of
from .optimizer import Optimizer
from .transform import (
    Transform,
    adam_scalars,
    add_decayed_weights,
    buffer,
    chain,
    check_betas,
    check_flag,
    check_number,
    ema_,
    ema_square_,
    scale_by_learning_rate,
    zeros_like,
)


def init_moments(param: Any, group: dict) -> dict:
    """Zero first and second moment estimates (``exp_avg``, ``exp_avg_sq``)."""
    return {"exp_avg": zeros_like(param), "exp_avg_sq": zeros_like(param)}


def update_moments(u: Any, state: dict, beta1: float, beta2: float) -> tuple[Any, Any]:
    """In place: m <- beta1 * m + (1 - beta1) * u and v <- beta2 * v + (1 - beta2) * u**2; returns (m, v)."""
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    ema_(exp_avg, u, beta1)
    ema_square_(exp_avg_sq, u, beta2)
    return exp_avg, exp_avg_sq


def check_moments(group: dict) -> None:
    check_betas(group)
    check_number(group, "eps", "epsilon value")


def scale_by_adam() -> Transform:
    """u <- m_hat / (sqrt(v_hat) + eps): bias-corrected moment estimates, m_hat = m / (1 - beta1**t),
    v_hat = v / (1 - beta2**t); with ``amsgrad`` v is the running maximum of the second moment
    (``max_exp_avg_sq``)."""

    def init(param, group):
        state = init_moments(param, group)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = zeros_like(param)
        return state

    def update(u, state, param, group):
        beta1, beta2 = group["betas"]
        exp_avg, second = update_moments(u, state, beta1, beta2)
        xp = namespace_of(second)
        if group["amsgrad"]:
            second = state["max_exp_avg_sq"] = xp.maximum(buffer(state, "max_exp_avg_sq", param), second)
        scale, eps = adam_scalars(state["step"], beta1, beta2, group["eps"])
        denom = xp.sqrt(second)
        denom *= scale
        denom += eps
        return exp_avg / denom

    def check(group):
        check_moments(group)
        check_flag(group, "amsgrad")

    return Transform(init, update, check)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization"; ``amsgrad`` from
    Reddi, Kale & Kumar, 2018, "On the Convergence of Adam and Beyond"), PyTorch's form::

        g = grad + weight_decay * p              (L2; decoupled_weight_decay moves it below)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        v' = max(v', v) if amsgrad else v
        d = (m / (1 - beta1**t)) / (sqrt(v' / (1 - beta2**t)) + eps)
        d = d + weight_decay * p                 (decoupled_weight_decay only)
        p = p - lr * d

    ``chain(add_decayed_weights(), scale_by_adam(), add_decayed_weights(decoupled=True),
    scale_by_learning_rate())``; a backend may register the fast path ``adam`` (gdnet.fast_paths).

    Args:
        params: parameters or parameter groups.
        lr: learning rate (>= 0).
        betas: decay rates (beta1, beta2) of the moment estimates, each in [0, 1).
        eps: added to the denominator (>= 0).
        weight_decay: weight decay coefficient (>= 0).
        amsgrad: divide by the largest second moment seen so far.
        decoupled_weight_decay: decay the weights directly (AdamW) instead of adding an L2 term
            to the gradient.
    """

    transform = chain(add_decayed_weights(), scale_by_adam(), add_decayed_weights(decoupled=True),
                      scale_by_learning_rate())
    fast_path = "adam"

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 decoupled_weight_decay: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _fast_step(self, kernel, params, grads, states, group) -> bool:
        beta1, beta2 = group["betas"]
        decay, decoupled = group["weight_decay"], group["decoupled_weight_decay"]
        # one call per step count (parameters added to the group later, or without a gradient
        # on some steps, count fewer); usually all share one
        by_step: dict[int, list[int]] = {}
        for i, state in enumerate(states):
            by_step.setdefault(state["step"], []).append(i)
        for step, members in by_step.items():
            picked = params if len(members) == len(params) else [params[i] for i in members]
            chosen = states if len(members) == len(params) else [states[i] for i in members]
            scale, eps_hat = adam_scalars(step, beta1, beta2, group["eps"])
            peaks = [buffer(s, "max_exp_avg_sq", p) for s, p in zip(chosen, picked)] if group["amsgrad"] else None
            kernel(picked, [grads[i] for i in members], [s["exp_avg"] for s in chosen],
                   [s["exp_avg_sq"] for s in chosen], peaks, step=step, lr=group["lr"], beta1=beta1, beta2=beta2,
                   eps=group["eps"], scale=scale, eps_hat=eps_hat, l2=0.0 if decoupled else decay,
                   decoupled=decay if decoupled else 0.0)
        return True


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019, "Decoupled Weight
    Decay Regularization"), PyTorch's form::

        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad**2
        v' = max(v', v) if amsgrad else v
        p = p - lr * ((m / (1 - beta1**t)) / (sqrt(v' / (1 - beta2**t)) + eps) + weight_decay * p)

    (PyTorch writes the decay as p = p * (1 - lr * weight_decay) first: the same update.)
    ``chain(scale_by_adam(), add_decayed_weights(), scale_by_learning_rate())``, sharing Adam's
    chain and its ``adam`` fused kernel.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (>= 0).
        betas: decay rates (beta1, beta2) of the moment estimates, each in [0, 1).
        eps: added to the denominator (>= 0).
        weight_decay: decoupled weight decay coefficient (>= 0).
        amsgrad: divide by the largest second moment seen so far.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         decoupled_weight_decay=True)
