"""Weight initialisation, drawn on the host from the seeded generator and moved to the device.

Drawing on the host gives the same initial weights on every backend for the same seed.
Functions end in ``_`` (they overwrite the tensor), as in ``torch.nn.init``.
"""

from __future__ import annotations

import math
from typing import Callable

from .._backend import host_rng
from .._checks import checked_number
from .._creation import as_array_like
from ..autograd import Tensor, increment_version


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) as PyTorch computes them: (out, in, *kernel) layouts."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need at least 2 dimensions; got shape {shape}")
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fill(tensor: Tensor, host_values) -> Tensor:
    tensor.data = as_array_like(host_values, tensor.data)
    increment_version(tensor)  # an in-place change, as in PyTorch: graphs recorded before refuse backward
    return tensor


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Draws from N(mean, std^2); std finite and >= 0."""
    checked_number(mean, "mean", -math.inf)
    checked_number(std, "std")
    return _fill(tensor, host_rng().normal(tensor.shape, mean, std))


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Draws from U(a, b); a <= b, both finite."""
    if checked_number(a, "a", -math.inf) > checked_number(b, "b", -math.inf):
        raise ValueError(f"uniform_: a ({a}) must not be greater than b ({b})")
    return _fill(tensor, host_rng().uniform(tensor.shape, a, b))


def constant_(tensor: Tensor, value: float) -> Tensor:
    xp = tensor.xp
    tensor.data = xp.full(tensor.shape, value, dtype=tensor.dtype, device=tensor.device)
    increment_version(tensor)
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps activations' variance through ``nonlinearity`` (PyTorch's table)."""
    if nonlinearity in ("linear", "sigmoid", "identity", "conv2d", "conv1d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}; expected linear, sigmoid, tanh, relu, leaky_relu, selu")


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot & Bengio (2010): U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot & Bengio (2010): N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(tensor.shape)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out'; got {mode!r}")
    fan_in, fan_out = fans(tensor.shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """He et al. (2015): U(-b, b), b = gain * sqrt(3 / fan)."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """He et al. (2015): N(0, std^2), std = gain / sqrt(fan)."""
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity))


def default_(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's Linear/Conv default: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1.0 / math.sqrt(fans(weight.shape)[0])
        uniform_(bias, -bound, bound)


# name given to a layer's ``init=`` -> weight initialiser (biases start at zero)
SCHEMES: dict[str, Callable[[Tensor], Tensor]] = {
    "normal": lambda w: normal_(w, 0.0, 0.01),
    "uniform": lambda w: uniform_(w, -0.05, 0.05),
    "xavier": xavier_uniform_,
    "glorot": xavier_uniform_,
    "xavier_uniform": xavier_uniform_,
    "glorot_uniform": xavier_uniform_,
    "xavier_normal": xavier_normal_,
    "glorot_normal": xavier_normal_,
    "he": kaiming_normal_,
    "kaiming": kaiming_normal_,
    "he_normal": kaiming_normal_,
    "kaiming_normal": kaiming_normal_,
    "he_uniform": kaiming_uniform_,
    "kaiming_uniform": kaiming_uniform_,
    "zeros": zeros_,
}


def initialise(weight: Tensor, bias: Tensor | None, scheme: str | Callable[[Tensor], Tensor] = "default") -> None:
    """Initialise a layer's weight and bias by scheme name (see SCHEMES) or a callable.

    "default" is PyTorch's layer default; every other scheme sets the bias to zero.
    """
    if scheme == "default":
        default_(weight, bias)
        return
    if callable(scheme):
        scheme(weight)
    elif scheme in SCHEMES:
        SCHEMES[scheme](weight)
    else:
        raise ValueError(f"unknown init {scheme!r}; expected 'default' or one of: {', '.join(SCHEMES)}")
    if bias is not None:
        zeros_(bias)
