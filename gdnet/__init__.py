"""gdnet: backpropagation and gradient descent on any array-API library.

    import gdnet as gd
    gd.set_backend("cupy")       # or "numpy", "torch", "array_api_strict", "auto"
    model = gd.nn.Sequential(gd.nn.Flatten(), gd.nn.Linear(784, 100), gd.nn.ReLU(), gd.nn.Linear(100, 10))
"""

from . import data, distributed, nn, ops, optim, train
from ._backend import (
    available_backends,
    default_float,
    device_rng,
    get_backend,
    manual_seed,
    set_backend,
    use_backend,
)
from ._creation import ones, rand, randn, tensor, zeros
from ._version import __version__
from .autograd import DeviceMismatchError, Tensor, enable_grad, is_grad_enabled, no_grad
from .backends import BackendUnavailableError
from .gradcheck import GradcheckError, gradcheck
from .ops import chunk, concat, erf, exp, log, matmul, maximum, sqrt, stack, take, unbind, where
from .train import load, load_into, save

datasets = data.datasets  # gd.datasets.fashion_mnist(), as DESIGN.md spells it

__all__ = [
    "__version__", "BackendUnavailableError", "DeviceMismatchError", "GradcheckError", "Tensor",
    "available_backends", "chunk", "concat", "data", "datasets", "default_float", "device_rng", "distributed",
    "enable_grad", "erf", "exp", "get_backend", "gradcheck", "is_grad_enabled", "load", "load_into", "log",
    "manual_seed",
    "matmul", "maximum", "nn", "no_grad", "ones", "ops", "optim", "rand", "randn", "save", "set_backend",
    "sqrt", "stack", "take", "tensor", "train", "unbind", "use_backend", "where", "zeros",
]
