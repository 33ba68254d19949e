"""Activation layers: ReLU, LeakyReLU, Sigmoid, Tanh, ELU, GELU, SiLU, Softplus, Hardtanh, and
Softmax and LogSoftmax along a dimension.

Each is its functional spelling in ``functional.py`` with the hyperparameters kept; names,
defaults and gradients at the kinks follow PyTorch.
"""

from __future__ import annotations

from ..autograd import Tensor, spelling
from . import functional as F
from .module import Module


class ReLU(Module):
    """max(x, 0), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class LeakyReLU(Module):
    """x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        F.check_finite("LeakyReLU", "negative_slope", negative_slope)
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """1 / (1 + exp(-x)), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Softmax(Module):
    """Softmax along ``dim`` (or ``axis``; default the last)."""

    def __init__(self, dim: int | None = None, *, axis: int | None = None):
        super().__init__()
        self.dim = spelling(type(self).__name__, dim, axis, -1, ("dim", "axis"))

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along ``dim``, computed stably."""

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.dim)


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


# the elementwise activation layers by the name of their functional spelling: the gdnet command's
# --activation choices and the models' activation setting (Softmax and LogSoftmax act along a
# dimension, so they are not among them)
ACTIVATIONS: dict[str, type[Module]] = {
    "relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh, "elu": ELU, "gelu": GELU, "silu": SiLU,
    "softplus": Softplus, "hardtanh": Hardtanh,
}
