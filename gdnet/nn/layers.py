"""Layers: Linear, Flatten, Unflatten, Identity, Sequential (activations are in activations.py)."""

from __future__ import annotations

from typing import Any, Callable, Iterator

from ..autograd import Tensor, as_tensor, spelling
from . import functional as F
from .init import initialise
from .module import Module, check_sizes, new_parameter


class Linear(Module):
    """y = x @ weight.mT + bias.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: learn an additive bias (default True).
        init: "default" (PyTorch's), "he", "xavier", "normal", "uniform", ... (see nn.init.SCHEMES)
            or a callable that fills the weight.

    Shape:
        input (..., in_features) -> output (..., out_features).
        weight (out_features, in_features), bias (out_features,): PyTorch's layout and names.

    Example:
        >>> layer = gd.nn.Linear(784, 100, init="he")
        >>> layer(gd.zeros((128, 784))).shape
        (128, 100)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str | Callable = "default"):
        super().__init__()
        check_sizes("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features, self.init = in_features, out_features, init
        self.weight = new_parameter((out_features, in_features))
        self.bias = new_parameter((out_features,)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        initialise(self.weight, self.bias, self.init)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Merge dimensions start_dim..end_dim: (N, 28, 28) -> (N, 784) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return F.flatten(x, self.start_dim, self.end_dim)


class Unflatten(Module):
    """Split dimension ``dim`` (or ``axis``) into ``sizes``: (N, 784) -> (N, 1, 28, 28) with
    Unflatten(1, (1, 28, 28)).

    Shape:
        input (..., prod(sizes), ...) -> output (..., *sizes, ...).
    """

    def __init__(self, dim: int | None = None, sizes: tuple[int, ...] = (), *, axis: int | None = None):
        super().__init__()
        dim = spelling("Unflatten", dim, axis, names=("dim", "axis"))
        if dim is None:
            raise TypeError("Unflatten needs the dimension to split: Unflatten(dim, sizes)")
        self.dim, self.sizes = dim, tuple(sizes)

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"Unflatten: dim {self.dim} is out of range for input of shape {x.shape}")
        dim = self.dim % x.ndim
        expected = 1
        for n in self.sizes:
            expected *= n
        if x.shape[dim] != expected:
            raise ValueError(f"Unflatten: dimension {dim} of input {x.shape} has size {x.shape[dim]}; "
                             f"expected {expected} to split into {self.sizes}")
        return x.reshape(x.shape[:dim] + self.sizes + x.shape[dim + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, sizes={self.sizes}"


class Identity(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class Sequential(Module):
    """Modules applied in order; indexable like a list. ``Sequential(Flatten(), Linear(784, 10))``."""

    def __init__(self, *modules: Module):
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential takes Modules; argument {index} is {type(module).__name__}")
            setattr(self, str(index), module)

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())
