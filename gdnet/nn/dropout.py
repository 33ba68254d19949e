"""Dropout (Srivastava et al., 2014): zero each element with probability p while training."""

from __future__ import annotations

from .._backend import backend_for, device_rng
from ..autograd import Tensor, as_tensor
from .module import Module


def _check_p(p: float) -> None:
    if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element of x with probability p and scale the rest by 1 / (1 - p), so the
    expected value is unchanged; the identity when not training or p == 0.

    The mask is drawn on x's device by that device's seeded generator (``gd.manual_seed`` makes
    it repeat), so nothing crosses between host and device. p == 1 zeroes everything, as PyTorch does.

    Shape: x (*) -> (*). Dtype: x's (floating).

    Raises:
        ValueError: p outside [0, 1]. TypeError: x is a list.
    """
    _check_p(p)
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = device_rng(backend_for(x.data)).bernoulli(1.0 - p, x.shape, x.dtype)
    keep *= 1.0 / (1.0 - p)  # keep is new: scaling in place saves an allocation
    return x * Tensor(keep)  # a Tensor, so its device is checked against x's


class Dropout(Module):
    """Zero elements with probability p in training (``train()``); the identity in ``eval()``.

    Kept elements are scaled by 1 / (1 - p), so evaluation needs no rescaling.

    Args:
        p: probability of zeroing an element, in [0, 1] (default 0.5).

    Shape:
        input of any shape -> output of the same shape.

    Example:
        >>> drop = gd.nn.Dropout(0.2)
        >>> drop(gd.ones((4, 10))).shape
        (4, 10)
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        _check_p(p)
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
