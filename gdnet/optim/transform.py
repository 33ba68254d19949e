"""Update rules as chains of small transforms (after optax), read per parameter group.

A ``Transform`` is three functions over one parameter's raw arrays::

    init(param, group) -> dict               the state it keeps for this parameter
    update(u, state, param, group) -> array  the next update direction
    check(group) -> None                     validate (and normalise) its hyperparameters

``update`` reads its hyperparameters from the parameter group on every call, so per-group
values, learning-rate schedules and ``load_state_dict`` take effect at once. It may change its
own state arrays in place but never ``u`` (the first ``u`` is the gradient, which may be shared
or read-only) nor ``param``. ``chain`` runs transforms in order; the optimizer adds the final
direction to the parameter in place, so a chain ends with ``scale_by_learning_rate``, which
turns it into ``-lr * u``. ``state["step"]`` (a Python int, 1 on the first update) is kept by
the optimizer, so step-dependent terms cost no device work.

Named optimizers are chains, e.g. Adam is
``chain(add_decayed_weights(), scale_by_adam(), scale_by_learning_rate())``, and a new rule is
one new link in a chain::

    def scale_by_sign():  # signSGD (Bernstein et al., 2018)
        return Transform(no_state, lambda u, state, param, group: namespace_of(u).sign(u), lambda group: None)

    class SignSGD(Optimizer):
        transform = chain(add_decayed_weights(), scale_by_sign(), trace(), scale_by_learning_rate())

        def __init__(self, params, lr=1e-3, momentum=0.0, weight_decay=0.0):
            super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

from .._checks import checked_number
from ..autograd import namespace_of

Array = Any
Group = dict  # a parameter group: {"params": [...], "lr": ..., ...}


class Transform(NamedTuple):
    """One link of an update rule: ``init``, ``update`` and ``check`` (see the module doc)."""

    init: Callable[[Array, Group], dict]
    update: Callable[[Array, dict, Array, Group], Array]
    check: Callable[[Group], None]


def no_state(param: Array, group: Group) -> dict:
    """The ``init`` of a transform that starts with no state (it may add entries as it goes)."""
    return {}


def chain(*links: Transform) -> Transform:
    """The transforms applied one after another (optax.chain)."""
    updates = tuple(link.update for link in links)

    def init(param, group):
        state: dict = {}
        for link in links:
            entries = link.init(param, group)
            clash = state.keys() & entries.keys()
            if clash:
                raise ValueError(f"two transforms of one chain keep the same state {sorted(clash)}")
            state.update(entries)
        return state

    def update(u, state, param, group):
        for step in updates:
            u = step(u, state, param, group)
        return u

    def check(group):
        for link in links:
            link.check(group)

    return Transform(init, update, check)


# -- arrays ----------------------------------------------------------------------------------
def full_like(like: Array, fill: float) -> Array:
    """A new array of ``like``'s shape, dtype and device, filled with ``fill``."""
    xp = namespace_of(like)
    return xp.full(like.shape, fill, dtype=like.dtype, device=like.device)


def zeros_like(like: Array) -> Array:
    """A new array of zeros of ``like``'s shape, dtype and device (a state's starting value)."""
    return full_like(like, 0.0)


def buffer(state: dict, key: str, like: Array) -> Array:
    """``state[key]``, created as zeros the first time (buffers a group setting switches on)."""
    array = state.get(key)
    if array is None:
        array = state[key] = zeros_like(like)
    return array


def ema_(average: Array, value: Array, decay: float) -> None:
    """In place: average <- decay * average + (1 - decay) * value (PyTorch's ``lerp_``)."""
    change = value - average
    change *= 1.0 - decay
    average += change


def ema_square_(average: Array, value: Array, decay: float) -> None:
    """In place: average <- decay * average + (1 - decay) * value**2."""
    square = value * value
    square *= 1.0 - decay
    average *= decay
    average += square


# -- hyperparameter checks -------------------------------------------------------------------
def check_number(group: Group, key: str, label: str, low: float = 0.0, high: float | None = None,
                 high_open: bool = False) -> None:
    """``group[key]`` checked by ``checked_number`` and stored back as a float."""
    group[key] = checked_number(group[key], label, low, high, high_open)


def check_flag(group: Group, key: str) -> None:
    """``group[key]`` stored as a bool."""
    group[key] = bool(group.get(key, False))


def check_betas(group: Group) -> None:
    """``group["betas"]`` must be a pair of numbers in [0, 1)."""
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"Invalid betas: {betas!r} (expected a pair (beta1, beta2))")
    group["betas"] = tuple(
        checked_number(beta, f"beta parameter at index {i}", 0.0, 1.0, high_open=True) for i, beta in enumerate(betas)
    )


def _check_lr(group: Group) -> None:
    check_number(group, "lr", "learning rate")


def _check_weight_decay(group: Group) -> None:
    check_number(group, "weight_decay", "weight_decay value")
    if "decoupled_weight_decay" in group:
        check_flag(group, "decoupled_weight_decay")


# -- links shared by several optimizers ------------------------------------------------------
def add_decayed_weights(decoupled: bool = False) -> Transform:
    """u <- u + weight_decay * param.

    Placed before a rule's scaling it is an L2 penalty added to the gradient; placed after it,
    it is decoupled weight decay (Loshchilov & Hutter, 2019, "Decoupled Weight Decay
    Regularization"): p <- p - lr * (u + weight_decay * p). The link acts only in groups whose
    ``decoupled_weight_decay`` equals ``decoupled``, so one chain with a link in each place
    serves both settings.
    """

    def update(u, state, param, group):
        decay = group["weight_decay"]
        if decay == 0.0 or group.get("decoupled_weight_decay", False) != decoupled:
            return u
        return u + decay * param

    return Transform(no_state, update, _check_weight_decay)


def _check_momentum(group: Group) -> None:
    check_number(group, "momentum", "momentum value")
    if "dampening" in group:
        check_number(group, "dampening", "dampening value", 0.0, 1.0)
    if "nesterov" in group:
        check_flag(group, "nesterov")
        dampening = group.get("dampening", 0.0)
        if group["nesterov"] and (group["momentum"] <= 0.0 or dampening != 0.0):
            raise ValueError(
                "Nesterov momentum requires a momentum > 0 and zero dampening; got momentum "
                f"{group['momentum']}, dampening {dampening}"
            )


def trace() -> Transform:
    """Heavy-ball momentum, PyTorch's form (Polyak, 1964; Nesterov's variant after Sutskever et
    al., 2013, "On the importance of initialization and momentum in deep learning")::

        b = u                                    first step
        b = momentum * b + (1 - dampening) * u   later steps
        u = u + momentum * b   if nesterov, else   u = b

    Reads ``momentum`` and, where the group has them, ``dampening`` and ``nesterov``; does
    nothing while momentum is 0. The buffer is ``state["momentum_buffer"]``.
    """

    def update(u, state, param, group):
        momentum = group["momentum"]
        if momentum == 0.0:
            return u
        buf = state.get("momentum_buffer")
        if buf is None:
            xp = namespace_of(u)
            buf = state["momentum_buffer"] = xp.asarray(u, dtype=u.dtype, device=u.device, copy=True)
        else:
            dampening = group.get("dampening", 0.0)
            buf *= momentum
            buf += u if dampening == 0.0 else (1.0 - dampening) * u
        return u + momentum * buf if group.get("nesterov", False) else buf

    return Transform(no_state, update, _check_momentum)


def scale_by_learning_rate() -> Transform:
    """u <- -lr * u, the last link of a chain (the optimizer then adds u to the parameter)."""

    def update(u, state, param, group):
        return u * -group["lr"]

    return Transform(no_state, update, _check_lr)


def adam_scalars(step: int, beta1: float, beta2: float, eps: float) -> tuple[float, float]:
    """(scale, eps') with m_hat / (sqrt(v_hat) + eps) == m / (sqrt(v) * scale + eps'), where
    m_hat = m / (1 - beta1**step) and v_hat = v / (1 - beta2**step): both bias corrections
    folded into two Python numbers. Shared by Adam's reference and its fused kernels."""
    correction1 = 1.0 - beta1**step
    return correction1 / math.sqrt(1.0 - beta2**step), eps * correction1
