"""Gradient clipping by total norm or by value, on the device, without reading values back."""

from __future__ import annotations

from typing import Any, Iterable

from .._creation import filled
from ..autograd import Tensor, check_same_device, namespace_of
from .transform import checked_number


def _gradients(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    """The parameters that hold a gradient (a single Tensor counts as a list of one)."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"gradient clipping takes Tensors (parameters); got {type(p).__name__}")
    return [p for p in params if p.grad is not None]


def _constant(value: float, like: Any) -> Any:
    """A 0-d array holding ``value`` in ``like``'s dtype, on its device."""
    return namespace_of(like).asarray(value, dtype=like.dtype, device=like.device)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale every gradient by one factor so that their joint norm is at most ``max_norm``
    (Pascanu, Mikolov & Bengio, 2013, "On the difficulty of training recurrent neural
    networks"), as ``torch.nn.utils.clip_grad_norm_``::

        total = || (||g_1||_p, ..., ||g_n||_p) ||_p
        g_i = g_i * min(1, max_norm / (total + 1e-6))

    Everything stays on the device: the factor is applied whether or not it is 1, so no value
    is read back, and the gradients are replaced by scaled copies (never changed in place).

    Args:
        parameters: a Tensor or an iterable of Tensors; those without a gradient are skipped.
        max_norm: the largest total norm allowed (>= 0).
        norm_type: p of the p-norm (> 0; ``math.inf`` for the largest absolute value).
        error_if_nonfinite: raise RuntimeError when the total norm is NaN or infinite. This
            reads the norm back to the host (a synchronisation on a GPU), so it is off by default.
    Returns:
        the total norm of the gradients before clipping, a 0-d Tensor on their device.
    """
    max_norm = checked_number(max_norm, "max_norm", allow_inf=True)  # inf: measure, never clip
    norm_type = checked_number(norm_type, "norm_type", allow_inf=True)  # inf: the largest |value|
    if norm_type == 0.0:
        raise ValueError("Invalid norm_type: 0.0 (expected p > 0, or math.inf)")
    params = _gradients(parameters)
    if not params:
        return Tensor(filled((), 0))
    grads = [p.grad.data for p in params]
    check_same_device(grads)
    xp = namespace_of(grads[0])
    norms = [xp.linalg.vector_norm(g, ord=norm_type) for g in grads]
    dtype = xp.result_type(*norms)
    norms = [n if n.dtype == dtype else xp.astype(n, dtype) for n in norms]
    total = xp.linalg.vector_norm(xp.stack(norms), ord=norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"the total norm of order {norm_type} of the gradients is {float(total)}, so they cannot be "
            "clipped; pass error_if_nonfinite=False to scale them by it anyway"
        )
    factor = xp.minimum(max_norm / (total + 1e-6), _constant(1.0, total))
    factors: dict[Any, Any] = {dtype: factor}
    for p, g in zip(params, grads):
        if g.dtype not in factors:
            factors[g.dtype] = xp.astype(factor, g.dtype)
        p.grad = Tensor(g * factors[g.dtype])
    return Tensor(total)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element to [-clip_value, clip_value], as
    ``torch.nn.utils.clip_grad_value_``. The gradients are replaced by clamped copies (never
    changed in place); nothing is read back from the device.

    Args:
        parameters: a Tensor or an iterable of Tensors; those without a gradient are skipped.
        clip_value: the largest absolute value allowed (>= 0).
    """
    clip_value = checked_number(clip_value, "clip_value", allow_inf=True)
    for p in _gradients(parameters):
        g = p.grad.data
        xp = namespace_of(g)
        p.grad = Tensor(xp.minimum(xp.maximum(g, _constant(-clip_value, g)), _constant(clip_value, g)))

