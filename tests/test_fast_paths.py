"""Every fast path equals its portable reference, on every backend row that registers it.

The tests are generated from the registry: for each name in ``gdnet.fast_paths.REFERENCES``
and each row of the backend matrix, the row's backend either registers no implementation (the
test skips) or the case below runs twice, through its fast path (which must be called) and
through the reference (the fast path removed), and the results must agree. A coverage test
keeps the names, the cases and what the backends register in step.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import host_normal, make

import gdnet as gd
from gdnet import backends, fast_paths, optim
from gdnet.nn import functional as F


def _weights_for(tensor, dtype):
    """Fixed, unequal weights, so a backward that mixes up elements shows."""
    return make(np.linspace(0.5, 1.5, tensor.size).reshape(tensor.shape), dtype)


def _cross_entropy(reduction):
    def run(dtype):
        logits = make(host_normal(16, 7, scale=3.0), dtype, requires_grad=True)
        labels = gd.tensor(np.random.default_rng(1).integers(0, 7, size=16), dtype="int64")
        loss = F.cross_entropy(logits, labels, reduction=reduction)
        (loss * _weights_for(loss, dtype)).sum().backward()
        return {"loss": loss, "grad": logits.grad}

    return run


def _linear(dtype):
    x = make(host_normal(5, 4), dtype, requires_grad=True)
    weight = make(host_normal(3, 4, seed=1), dtype, requires_grad=True)
    bias = make(host_normal(3, seed=2), dtype, requires_grad=True)
    out = F.linear(x, weight, bias)
    (out * _weights_for(out, dtype)).sum().backward()
    return {"out": out, "x": x.grad, "weight": weight.grad, "bias": bias.grad}


def _elementwise(function, scale=1.0):
    def run(dtype):
        values = host_normal(6, 5, scale=scale)
        values[0, :2] = 0.0  # ReLU's kink: its derivative is taken as 0
        values[1, :2] = (-40.0, 40.0)  # where the portable sigmoid guards against overflow
        x = make(values, dtype, requires_grad=True)
        out = function(x)
        (out * _weights_for(out, dtype)).sum().backward()
        return {"out": out, "grad": x.grad}

    return run


def _optimizer(name, kwargs, groups=None, steps=6, infinite=False):
    """``infinite``: one weight is inf, which must stay inf where a weight-decay coefficient is
    0 (the reference skips the term; multiplying by it would give 0 * inf = NaN)."""
    shapes = {"weight": (3, 4), "bias": (3,)}

    def run(dtype):
        rng = np.random.default_rng(0)
        values = {n: rng.normal(size=s) for n, s in shapes.items()}
        if infinite:
            values["weight"][0, 0] = np.inf
        params = {n: make(v, dtype, requires_grad=True) for n, v in values.items()}
        listed = list(params.values()) if groups is None else [
            {"params": [params[n] for n in names], **extra} for names, extra in groups]
        opt = getattr(optim, name)(listed, **kwargs)
        for step in range(steps):
            for n, shape in shapes.items():
                params[n].grad = make(np.random.default_rng(100 + step).normal(size=shape), dtype)
            opt.step()
        results = dict(params)
        for n, p in params.items():
            results.update({f"{n}.{key}": value for key, value in opt.state[id(p)].items() if hasattr(value, "shape")})
        return results

    return run


def _loader_batches(dtype):
    rng = np.random.default_rng(0)
    dataset = gd.data.ArrayDataset(rng.integers(0, 256, size=(10, 3), dtype=np.uint8), rng.integers(0, 4, size=10))
    loader = gd.data.DataLoader(dataset, batch_size=4, shuffle=True, seed=2)
    return {f"{kind}{i}": batch for i, pair in enumerate(loader) for kind, batch in zip("xy", pair)}


def _channel_major(host, dtype, requires_grad=False):
    """An NCHW tensor whose memory is (C, H, W, N), the layout gdnet's convolution hands on."""
    x = make(np.ascontiguousarray(np.transpose(host, (1, 2, 3, 0))), dtype, requires_grad=requires_grad)
    return x, gd.ops.permute_dims(x, (3, 0, 1, 2))


def _threads(count, run):
    """``run`` with the numpy kernels splitting their passes over ``count`` threads, whatever
    this machine's CPUs (the other rows ignore it)."""
    from gdnet.backends import numpy_threads

    def threaded(dtype):
        saved, numpy_threads._count = numpy_threads._count, count
        try:
            return run(dtype)
        finally:
            numpy_threads._count = saved

    return threaded


def _conv(shape, out_channels, kernel, layout="nchw", bias=True, **options):
    def run(dtype):
        if layout == "nchw":
            leaf = x = make(host_normal(*shape), dtype, requires_grad=True)
        else:
            leaf, x = _channel_major(host_normal(*shape), dtype, requires_grad=True)
        gd.manual_seed(0)  # the same weights in both runs
        layer = gd.nn.Conv2d(shape[1], out_channels, kernel, bias=bias, **options).to(dtype)
        out = layer(x)
        (out * _weights_for(out, dtype)).sum().backward()
        results = {"out": out, "grad": leaf.grad, "weight": layer.weight.grad}
        if bias:
            results["bias"] = layer.bias.grad
        return results

    return run


def _relu_large(dtype):
    """Above the size where the numpy kernels split a pass, in channel-major memory."""
    host = host_normal(8, 16, 32, 33)
    host[0, 0, 0, :2] = 0.0
    leaf, x = _channel_major(host, dtype, requires_grad=True)
    out = F.relu(x)
    (out * _weights_for(out, dtype)).sum().backward()
    return {"out": out, "grad": leaf.grad}


def _max_pool(shape, kernel, layout="nchw", special=None):
    """``special``: "ties" (ReLU-like zeros and repeats) or "nan" (NaN in some windows)."""

    def run(dtype):
        host = host_normal(*shape)
        if special == "ties":
            host = np.maximum(np.round(host), 0.0)
        if special == "nan":
            host[0, 0, 0, :2] = np.nan  # two NaN in one window: the last one takes the gradient
            host[-1, -1, 1, 1] = np.nan
        if layout == "nchw":
            leaf = x = make(host, dtype, requires_grad=True)
        else:
            leaf, x = _channel_major(host, dtype, requires_grad=True)
        out = F.max_pool2d(x, kernel)
        (out * _weights_for(out, dtype)).sum().backward()
        return {"out": out, "grad": leaf.grad}

    return run


def _batch_norm(shape, layout="nchw", affine=True):
    def run(dtype):
        host = host_normal(*shape, scale=2.0) + 3.0
        if layout == "nchw":
            leaf = x = make(host, dtype, requires_grad=True)
        else:
            leaf, x = _channel_major(host, dtype, requires_grad=True)
        layer = (gd.nn.BatchNorm1d if len(shape) < 4 else gd.nn.BatchNorm2d)(shape[1], affine=affine).to(dtype)
        if affine:
            layer.weight.data = make(np.linspace(0.5, 1.5, shape[1]), dtype).data
            layer.bias.data = make(np.linspace(-1.0, 1.0, shape[1]), dtype).data
        out = layer(x)
        (out * _weights_for(out, dtype)).sum().backward()
        results = {"out": out, "grad": leaf.grad, "running_mean": layer.running_mean, "running_var": layer.running_var}
        if affine:
            results.update(weight=layer.weight.grad, bias=layer.bias.grad)
        return results

    return run


TWO_GROUPS = [(["weight"], {"lr": 0.1}), (["bias"], {"weight_decay": 0.1})]
# fast path name -> {case id: run(dtype) -> {name: Tensor or array}}
CASES = {
    "softmax_cross_entropy": {r: _cross_entropy(r) for r in ("mean", "sum", "none")},
    "linear": {"2d": _linear},
    "relu": {"kink": _elementwise(F.relu), "threads": _threads(2, _relu_large)},
    "relu_backward": {"kink": _elementwise(F.relu), "threads": _threads(2, _relu_large)},
    "conv2d": {
        "3x3": _conv((2, 2, 5, 4), 3, 3),
        "stride2-pad1-channel-major": _conv((2, 2, 5, 4), 3, 3, "chwn", stride=2, padding=1),
        "dilation-batch1": _conv((1, 2, 4, 4), 2, (2, 3), padding=(1, 2), dilation=(2, 1)),
        "stride21-no-bias": _conv((2, 2, 5, 3), 2, 2, bias=False, stride=(2, 1)),
        "same-even-kernel": _conv((1, 1, 4, 5), 2, (4, 3), padding="same"),
        "1x1": _conv((2, 3, 2, 3), 2, 1, "chwn"),
        "pad-beyond-windows": _conv((2, 1, 3, 3), 2, 2, padding=2, stride=3),
        "threads-by-channel": _threads(2, _conv((8, 6, 24, 20), 5, 3, "chwn", padding=1)),
        "threads-by-sample": _threads(2, _conv((40, 1, 28, 28), 4, 3, padding=1)),
    },
    "sigmoid": {"wide": _elementwise(gd.ops.sigmoid, scale=5.0)},
    "tanh_backward": {"wide": _elementwise(gd.ops.tanh, scale=3.0)},
    "take_rows": {"loader": _loader_batches},
    "max_pool2d": {
        "2x2": _max_pool((2, 3, 4, 6), 2),
        "2x2-channel-major": _max_pool((3, 2, 6, 4), 2, "chwn"),
        "2x2-ties": _max_pool((2, 3, 4, 4), 2, "chwn", "ties"),
        "2x2-nan": _max_pool((2, 2, 4, 4), 2, special="nan"),
        "3x2-floor": _max_pool((2, 2, 7, 5), (3, 2)),
        "1x1": _max_pool((2, 2, 3, 3), 1, "chwn"),
        "threads": _threads(2, _max_pool((16, 8, 32, 34), 2, "chwn", "ties")),
    },
    "batch_norm": {
        "2d-images": _batch_norm((4, 3, 5, 6)),
        "2d-channel-major": _batch_norm((4, 3, 5, 6), "chwn"),
        "2d-no-affine": _batch_norm((3, 2, 4, 4), "chwn", affine=False),
        "1d-features": _batch_norm((8, 5)),
        "1d-sequences": _batch_norm((4, 3, 7)),
        "threads": _threads(2, _batch_norm((16, 6, 40, 40), "chwn")),
    },
    "sgd_momentum": {
        "momentum": _optimizer("SGD", dict(lr=0.05, momentum=0.9)),
        "dampening-decay": _optimizer("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.05)),
        "nesterov-decay": _optimizer("SGD", dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.1)),
        "two-groups": _optimizer("SGD", dict(lr=0.01, momentum=0.9), TWO_GROUPS),
        "inf-weight-no-decay": _optimizer("SGD", dict(lr=0.05, momentum=0.9), infinite=True),
    },
    "adam": {
        "adam": _optimizer("Adam", {}),
        "adam-amsgrad-decay": _optimizer("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1,
                                                       amsgrad=True)),
        "adamw": _optimizer("AdamW", dict(lr=0.01, weight_decay=0.2)),
        "adamw-amsgrad": _optimizer("AdamW", dict(lr=0.01, amsgrad=True)),
        "two-groups": _optimizer("Adam", dict(lr=0.01), [(["weight"], {"amsgrad": True}),
                                                          (["bias"], {"weight_decay": 0.2})]),
        "inf-weight-no-decay": _optimizer("Adam", dict(lr=0.01), infinite=True),
        "adamw-inf-weight-no-decay": _optimizer("AdamW", dict(lr=0.01, weight_decay=0.0), infinite=True),
    },
}
GENERATED = [(name, case) for name in fast_paths.REFERENCES for case in CASES.get(name, {})]


class _Spy:
    """A registered fast path that counts its calls (and passes them on)."""

    def __init__(self, implementation, calls):
        self._implementation, self._calls = implementation, calls

    def __call__(self, *args, **kwargs):
        self._calls.append("call")
        return self._implementation(*args, **kwargs)

    def __getattr__(self, attribute):  # the forward/backward pairs
        inner = getattr(self._implementation, attribute)
        if not callable(inner):
            return inner

        def counted(*args, **kwargs):
            self._calls.append(attribute)
            return inner(*args, **kwargs)

        return counted


def _host(results):
    return {k: (v.numpy() if isinstance(v, gd.Tensor) else gd.Tensor(v).numpy()) for k, v in results.items()}


@pytest.mark.parametrize("name, case", GENERATED, ids=[f"{n}-{c}" for n, c in GENERATED])
def test_fast_path_equals_its_reference(backend, float_dtype, monkeypatch, name, case):
    registry = type(backend).fast_paths
    implementation = registry.get(name)
    if implementation is None:
        pytest.skip(f"{backend.describe()} registers no {name} fast path")
    calls = []
    monkeypatch.setitem(registry, name, _Spy(implementation, calls))
    run = CASES[name][case]
    fast = _host(run(float_dtype))
    assert calls, f"the {name} fast path was not used"
    monkeypatch.delitem(registry, name)
    reference = _host(run(float_dtype))
    tolerance = 1e-10 if float_dtype == "float64" else 2e-5
    assert fast.keys() == reference.keys()
    for key in reference:
        assert fast[key].dtype == reference[key].dtype, key
        np.testing.assert_allclose(fast[key], reference[key], rtol=tolerance, atol=tolerance, err_msg=key)


def _registered_names():
    names = {}
    for cls in backends.classes():
        if cls.unavailable_reason() is None:
            cls.load_fast_paths()
        names[cls.name] = set(cls.fast_paths)
    return names


def test_every_fast_path_has_a_reference_and_cases():
    for backend_name, registered in _registered_names().items():
        assert registered <= set(fast_paths.REFERENCES), (backend_name, registered - set(fast_paths.REFERENCES))
    assert set(CASES) == set(fast_paths.REFERENCES)
    for name in fast_paths.REFERENCES:
        assert CASES[name], name


def test_each_backend_registers_what_it_claims():
    registered = _registered_names()
    cnn = {"conv2d", "max_pool2d", "batch_norm", "relu"}  # the numpy backend's alone
    assert registered["numpy"] == {"softmax_cross_entropy", "sgd_momentum", "relu_backward"} | cnn
    assert registered["array_api_strict"] == set()
    if backends.backend_class("torch").is_available():
        assert registered["torch"] == set(fast_paths.REFERENCES) - cnn
    if backends.backend_class("cupy").is_available():
        assert registered["cupy"] == {"softmax_cross_entropy", "sgd_momentum", "adam"}


def test_each_backend_class_has_its_own_fast_path_registry():
    class Plain(backends.Backend):
        pass

    class Child(Plain):
        pass

    assert Plain.fast_paths == {} and Plain.fast_paths is not backends.Backend.fast_paths
    assert Child.fast_paths is not Plain.fast_paths
    Plain.fast_paths["x"] = len
    assert "x" not in Child.fast_paths and "x" not in backends.Backend.fast_paths


# -- dispatch: the arrays' backend, never the active one -----------------------------------------
def test_dispatch_follows_the_arrays_not_the_active_backend(monkeypatch):
    pytest.importorskip("array_api_strict")
    numpy_paths = backends.backend_class("numpy").fast_paths
    calls = []
    monkeypatch.setitem(numpy_paths, "softmax_cross_entropy", _Spy(numpy_paths["softmax_cross_entropy"], calls))
    with gd.use_backend("numpy"):
        logits = make(host_normal(4, 3), "float64", requires_grad=True)
        labels = gd.tensor(np.array([0, 2, 1, 0]), dtype="int64")
    with gd.use_backend("array_api_strict"):  # another backend active: NumPy arrays still get NumPy's
        F.cross_entropy(logits, labels).backward()
    assert calls == ["forward", "backward"]


def test_a_fast_path_is_not_used_for_arrays_of_another_library(monkeypatch):
    pytest.importorskip("array_api_strict")
    numpy_paths = backends.backend_class("numpy").fast_paths
    calls = []
    monkeypatch.setitem(numpy_paths, "softmax_cross_entropy", _Spy(numpy_paths["softmax_cross_entropy"], calls))
    monkeypatch.setitem(numpy_paths, "sgd_momentum", _Spy(numpy_paths["sgd_momentum"], calls))
    with gd.use_backend("array_api_strict"):
        logits = make(host_normal(4, 3), "float64", requires_grad=True)
        labels = gd.tensor(np.array([0, 2, 1, 0]), dtype="int64")
    with gd.use_backend("numpy"):
        opt = optim.SGD([logits], lr=0.1, momentum=0.9)
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(logits, labels).backward()
            opt.step()
    assert calls == []


def test_an_optimizer_kernel_serves_only_arrays_of_one_type_device_and_dtype(monkeypatch):
    numpy_paths = backends.backend_class("numpy").fast_paths
    calls = []
    monkeypatch.setitem(numpy_paths, "sgd_momentum", _Spy(numpy_paths["sgd_momentum"], calls))
    with gd.use_backend("numpy"):
        w = make([1.0, 2.0], "float32", requires_grad=True)
        opt = optim.SGD([w], lr=0.1, momentum=0.9)
        for _ in range(2):  # the first step makes the buffer on the reference path
            w.grad = make([1.0, 1.0], "float32")
            opt.step()
        assert calls == ["call"]
        w.grad = make([1.0, 1.0], "float64")  # a gradient of another dtype: the reference
        opt.step()
        assert calls == ["call"]
