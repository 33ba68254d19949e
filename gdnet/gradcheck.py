"""Finite-difference check of backward() against the forward pass."""

from __future__ import annotations

import warnings
from typing import Callable

from ._backend import get_backend
from .autograd import Tensor, dtype_is, dtype_name, no_grad


class GradcheckError(AssertionError):
    """backward() disagrees with central differences; the message says where and by how much."""


# (step, absolute tolerance, relative tolerance) by dtype
_SETTINGS = {"float64": (1e-6, 1e-6, 1e-4), "float32": (3e-3, 2e-2, 2e-2)}


def _dtype_name(xp, dtype) -> str:
    return "float64" if dtype == xp.float64 else "float32"


def gradcheck(
    fn: Callable[..., Tensor],
    *inputs: Tensor,
    eps: float | None = None,
    atol: float | None = None,
    rtol: float | None = None,
) -> bool:
    """Compare the gradients backward() gives with float central differences.

    Every input with ``requires_grad=True`` is checked, element by element. The output is
    reduced to a scalar by a fixed, non-uniform weighting, so every output element matters.

    Args:
        fn: maps the inputs to one Tensor of any shape.
        inputs: Tensors (float64 for a tight check; float32 on devices without float64).
        eps, atol, rtol: step and tolerances (defaults by dtype).
    Returns:
        True; raises GradcheckError with a per-input report on a mismatch.
    Raises:
        TypeError: ``fn`` is not callable or returns no Tensor, or an input to check is not
            floating-point.
    Warns:
        UserWarning: an input to check is float32 where float64 exists: float32's central
            differences are too coarse to catch a backward that is off by a few percent.
    """
    if not callable(fn):
        raise TypeError(f"gradcheck: fn must be a function of the inputs returning a Tensor; got {type(fn).__name__}")
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck needs at least one input with requires_grad=True")
    xp = checked[0].xp
    for t in checked:
        position = next(i for i, x in enumerate(inputs) if x is t)
        if not dtype_is(xp, t.dtype, "real floating"):
            raise TypeError(f"gradcheck: input {position} has dtype {dtype_name(t.dtype)}; expected a floating dtype "
                            "(float64 for a tight check)")
        backend = get_backend()
        has_float64 = backend.supports_dtype("float64") if backend.xp is xp else True
        if t.dtype != xp.float64 and has_float64:
            warnings.warn(
                f"gradcheck: input {position} is {dtype_name(t.dtype)}; its central differences are too coarse to "
                "catch a backward that is wrong by a few percent: check in float64 (dtype='float64')",
                stacklevel=2,
            )
    step, abs_tol, rel_tol = _SETTINGS[_dtype_name(xp, checked[0].dtype)]
    eps, atol, rtol = eps or step, atol if atol is not None else abs_tol, rtol if rtol is not None else rel_tol

    output = fn(*inputs)
    if not isinstance(output, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor; it returned a {type(output).__name__} (compute it from "
                        "the input Tensors so that backward() reaches them)")
    n_out = output.size
    weights = xp.reshape(
        1.5 + xp.cos(0.7 * xp.arange(n_out, dtype=output.dtype, device=output.device)), output.shape
    )

    def objective(args) -> float:
        with no_grad():
            return float(xp.sum(fn(*args).data * weights))

    for t in checked:
        t.grad = None
    (output * Tensor(weights)).sum().backward()
    analytic = [
        t.grad.data if t.grad is not None else xp.zeros(t.shape, dtype=t.dtype, device=t.device) for t in checked
    ]
    for t in checked:
        t.grad = None

    problems = []
    for t, grad in zip(checked, analytic):
        # by identity: Tensor's == is elementwise, so inputs.index(t) would compare values
        position = next(i for i, x in enumerate(inputs) if x is t)
        flat_grad = xp.reshape(grad, (-1,))
        worst = (0.0, -1, 0.0, 0.0)
        for i in range(t.size):
            bump = xp.zeros((t.size,), dtype=t.dtype, device=t.device)
            bump[i] = eps
            bump = xp.reshape(bump, t.shape)
            args = list(inputs)
            args[position] = Tensor(t.data + bump)
            plus = objective(args)
            args[position] = Tensor(t.data - bump)
            minus = objective(args)
            numeric = (plus - minus) / (2 * eps)
            got = float(flat_grad[i])
            excess = abs(got - numeric) - (atol + rtol * abs(numeric))
            if excess > worst[0] or (worst[1] < 0 and excess > 0):
                worst = (excess, i, got, numeric)
        if worst[1] >= 0:
            _, i, got, numeric = worst
            problems.append(
                f"input {position} (shape {t.shape}): element {i}: backward gives {got:.8g}, "
                f"central differences give {numeric:.8g} (atol {atol}, rtol {rtol})"
            )
    if problems:
        raise GradcheckError("gradient check failed:\n  " + "\n  ".join(problems))
    return True
