"""Activation layers beyond those in ``layers.py``: ELU, GELU, SiLU, Softplus, Hardtanh.

Each is its functional spelling in ``functional.py`` with the hyperparameters kept; names,
defaults and gradients at the kinks follow PyTorch.
"""

from __future__ import annotations

from ..autograd import Tensor
from . import functional as F
from .module import Module


class ELU(Module):
    """x where x > 0, else alpha * (exp(x) - 1) (Clevert et al., 2015).

    Args:
        alpha: the value the negative side approaches (default 1.0).

    Shape:
        input (*) -> output (*), the same shape.

    Example:
        >>> gd.nn.ELU()(gd.tensor([-1.0, 2.0])).tolist()
        [-0.6321206092834473, 2.0]
    """

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        F.check_finite("ELU", "alpha", alpha)
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class GELU(Module):
    """x * Phi(x), Phi the standard normal CDF (Hendrycks & Gimpel, 2016).

    Args:
        approximate: "none" (exact, through erf; default) or "tanh" (the tanh approximation).

    Shape:
        input (*) -> output (*), the same shape.

    Example:
        >>> gd.nn.GELU()(gd.tensor([0.0, 1.0])).tolist()
        [0.0, 0.8413447141647339]
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        F.check_approximate("GELU", approximate)
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x * sigmoid(x) (Elfwing et al., 2017; also called swish).

    Shape:
        input (*) -> output (*), the same shape.

    Example:
        >>> gd.nn.SiLU()(gd.tensor([0.0, 1.0])).tolist()
        [0.0, 0.7310585975646973]
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta, a smooth ReLU; x itself where beta * x > threshold.

    Args:
        beta: sharpness (default 1.0).
        threshold: above this, beta * x counts as linear (default 20.0).

    Shape:
        input (*) -> output (*), the same shape.

    Example:
        >>> gd.nn.Softplus()(gd.tensor([0.0, 30.0])).tolist()
        [0.6931471824645996, 30.0]
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        F.check_beta("Softplus", beta)
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    """x clipped to [min_val, max_val]; the gradient is 1 strictly inside, else 0.

    Args:
        min_val: lower end (default -1.0).
        max_val: upper end (default 1.0); ``Hardtanh(0.0, 6.0)`` is ReLU6.

    Shape:
        input (*) -> output (*), the same shape.

    Example:
        >>> gd.nn.Hardtanh()(gd.tensor([-3.0, 0.5, 3.0])).tolist()
        [-1.0, 0.5, 1.0]
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0):
        super().__init__()
        F.check_bounds("Hardtanh", min_val, max_val)
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x: Tensor) -> Tensor:
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"
