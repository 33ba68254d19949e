"""Fast paths: a backend's own implementation of a rule whose portable reference lives in core.

The reference is the documentation and runs everywhere; a fast path (a fused CUDA kernel,
torch's fused or multi-tensor ops, a NumPy shortcut) does the same in fewer array operations.
Each name below says where its reference is and what its implementations take. A backend
registers implementations in its class's ``fast_paths`` dict (``backends/<name>_backend.py``,
``backends/cupy_kernels.py``, ``backends/torch_kernels.py``); dispatch picks one from the
backend that owns the ARRAYS (``lookup``), never from the active backend, so arrays of another
library or device get the reference. ``tests/test_fast_paths.py`` generates, for every name
here and every backend row that registers it, a test that the fast path equals the reference.
"""

from __future__ import annotations

from typing import Any, Callable

from . import backends

# name -> where its reference lives, and the implementation's contract
REFERENCES: dict[str, str] = {
    "softmax_cross_entropy": (
        "gdnet.ops.SoftmaxCrossEntropy with class-index targets: an object with "
        "forward(logits, labels, reduction) -> (loss, saved) and "
        "backward(saved, labels, grad, reduction) -> grad of the logits"
    ),
    "linear": (
        "gdnet.ops.Linear.forward for a 2-D input and a bias: fn(x, weight, bias) -> x @ weight.mT + bias"
    ),
    "relu": "gdnet.ops.Relu.forward: fn(a) -> max(a, 0), NaN where a is NaN",
    "relu_backward": "gdnet.ops.Relu.backward: fn(grad, out) -> grad where out > 0, else 0",
    "sigmoid": (
        "gdnet.ops.Sigmoid: an object with forward(a) -> sigmoid(a) and backward(grad, out) -> "
        "grad * out * (1 - out)"
    ),
    "tanh_backward": "gdnet.ops.Tanh.backward: fn(grad, out) -> grad * (1 - out**2)",
    "take_rows": (
        "gdnet.data.DataLoader's batch gather: fn(x, indices) -> xp.take(x, indices, axis=0) for indices "
        "known to lie in [0, len(x)) (the standard's take also wraps negative ones, which costs operations)"
    ),
    "conv2d": (
        "gdnet.nn.conv.Conv2dFunction: an object with forward(x, weight, bias or None, geometry) -> (y, saved) "
        "(geometry: the gdnet.nn.conv._Windows of the call) and backward(saved, grad, (wants x, wants weight, "
        "wants bias)) -> their grads (None where not wanted)"
    ),
    "max_pool2d": (
        "gdnet.nn.conv.MaxPool2dFunction for windows that tile the input (stride = kernel, no padding or "
        "dilation): an object with forward(x, (kh, kw), with_index) -> (out, saved; saved is None unless "
        "with_index) and backward(saved, grad) -> grad of x"
    ),
    "batch_norm": (
        "gdnet.nn.normalization.Normalize with batch statistics over every axis but the channel axis 1 "
        "(BatchNorm in training): an object with forward(x, weight or None, bias or None, eps) -> (y, mean (C,), "
        "biased variance (C,), saved) and backward(saved, grad, (wants x, wants weight, wants bias)) -> their "
        "grads (None where not wanted)"
    ),
    "sgd_momentum": (
        "gdnet.optim.SGD's chain for the steps after the first, all parameters of a group in one "
        "call: fn(params, grads, buffers, lr, momentum, dampening, weight_decay, nesterov), in place"
    ),
    "adam": (
        "gdnet.optim.Adam's chain (AdamW's too), all parameters of a group that share a step count "
        "in one call: fn(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs or None, *, step, lr, "
        "beta1, beta2, eps, scale, eps_hat, l2, decoupled), in place (scale and eps_hat: "
        "gdnet.optim.transform.adam_scalars)"
    ),
}


def lookup(name: str, array: Any) -> Callable[..., Any] | None:
    """The fast path ``name`` of the backend that owns ``array``, or None (use the reference)."""
    registry = _REGISTRIES.get(type(array))
    if registry is None:
        owner = backends.find(type(array))
        if owner is None:
            return None
        registry = _REGISTRIES[type(array)] = owner.fast_paths
    return registry.get(name)


# array type -> its backend's fast-path dict (the live dict: registering later still counts)
_REGISTRIES: dict[type, dict[str, Callable[..., Any]]] = {}
