"""SGD: PyTorch's update rule step for step, state round trips, validation, fast paths."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make

import gdnet as gd
from gdnet import backends
from gdnet.optim import SGD, Optimizer

STEPS = 20
SHAPES = {"weight": (3, 4), "bias": (3,)}


def _initial(seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=shape) for name, shape in SHAPES.items()}


def _gradients(step):
    """The same host gradients for every run: step k gets its own draw."""
    rng = np.random.default_rng(1000 + step)
    return {name: rng.normal(size=shape) for name, shape in SHAPES.items()}


def _param_groups(params, groups):
    """``groups`` None: one list of parameters; else a list of (names, hyperparameters)."""
    if groups is None:
        return list(params.values())
    return [{"params": [params[n] for n in names], **extra} for names, extra in groups]


CONFIGS = [
    # (id, SGD keyword arguments, parameter groups or None)
    ("plain", dict(lr=0.1), None),
    ("momentum", dict(lr=0.05, momentum=0.9), None),
    ("dampening", dict(lr=0.05, momentum=0.9, dampening=0.3), None),
    ("nesterov", dict(lr=0.05, momentum=0.8, nesterov=True), None),
    ("weight-decay", dict(lr=0.1, weight_decay=0.01), None),
    ("momentum-weight-decay", dict(lr=0.05, momentum=0.9, weight_decay=0.05), None),
    ("nesterov-weight-decay", dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.1), None),
    ("two-groups", dict(lr=0.01, momentum=0.9), [(["weight"], {"lr": 0.1}), (["bias"], {})]),
    (
        "two-groups-own-momentum",
        dict(lr=0.01),
        [(["weight"], {"lr": 0.2, "momentum": 0.5}), (["bias"], {"weight_decay": 0.1})],
    ),
]
CONFIG_PARAMS = [pytest.param(kwargs, groups, id=name) for name, kwargs, groups in CONFIGS]


def _run_gdnet(kwargs, groups, dtype, steps=STEPS, start=0, params=None, state=None):
    if params is None:
        params = {n: make(v, dtype, requires_grad=True) for n, v in _initial().items()}
    opt = SGD(_param_groups(params, groups), **kwargs)
    if state is not None:
        opt.load_state_dict(state)
    for step in range(start, start + steps):
        for name, grad in _gradients(step).items():
            params[name].grad = make(grad, dtype)
        opt.step()
    return params, opt


def _run_torch(kwargs, groups, steps=STEPS):
    torch = pytest.importorskip("torch")
    params = {n: torch.tensor(v, requires_grad=True) for n, v in _initial().items()}
    opt = torch.optim.SGD(_param_groups(params, groups), **kwargs)
    for step in range(steps):
        for name, grad in _gradients(step).items():
            params[name].grad = torch.from_numpy(grad)
        opt.step()
    return params, opt


def _tolerance(dtype):
    return 1e-12 if dtype == "float64" else 1e-5


@pytest.mark.parametrize("kwargs, groups", CONFIG_PARAMS)
def test_sgd_matches_torch(backend, float_dtype, kwargs, groups):
    theirs, torch_opt = _run_torch(kwargs, groups)
    ours, opt = _run_gdnet(kwargs, groups, float_dtype)
    for name, p in ours.items():
        assert p.device == backend.device and p.dtype == getattr(backend.xp, float_dtype)
        np.testing.assert_allclose(p.numpy(), theirs[name].detach().numpy(), rtol=_tolerance(float_dtype), atol=1e-12)
        buffer = torch_opt.state[theirs[name]].get("momentum_buffer")
        ours_buffer = opt.state.get(id(p), {}).get("momentum_buffer")
        assert (buffer is None) == (ours_buffer is None)
        if buffer is not None:
            assert ours_buffer.device == p.device
            np.testing.assert_allclose(
                gd.Tensor(ours_buffer).numpy(), buffer.numpy(), rtol=_tolerance(float_dtype) * 10
            )


def test_plain_sgd_step_by_hand(backend, float_dtype):
    w = make([1.0, -2.0], float_dtype, requires_grad=True)
    (w * w).sum().backward()  # grad 2w
    SGD([w], lr=0.25).step()
    np.testing.assert_allclose(w.numpy(), [0.5, -1.0])


def test_parameters_without_a_gradient_are_left_alone(backend, float_dtype):
    a = make([1.0], float_dtype, requires_grad=True)
    b = make([2.0], float_dtype, requires_grad=True)
    opt = SGD([a, b], lr=0.5, momentum=0.9)
    a.grad = make([1.0], float_dtype)
    opt.step()
    assert a.tolist() == [0.5] and b.tolist() == [2.0]
    assert id(b) not in opt.state


@pytest.mark.parametrize("kwargs, groups", CONFIG_PARAMS)
def test_state_dict_round_trip_mid_run_equals_uninterrupted(backend, float_dtype, kwargs, groups):
    uninterrupted, _ = _run_gdnet(kwargs, groups, float_dtype)
    first, opt = _run_gdnet(kwargs, groups, float_dtype, steps=STEPS // 2)
    # a checkpoint as it would be written to disk: host arrays
    saved = opt.state_dict()
    saved["state"] = {
        i: {k: gd.Tensor(v).numpy() if hasattr(v, "shape") else v for k, v in s.items()}
        for i, s in saved["state"].items()
    }
    restored = {n: make(p.numpy(), float_dtype, requires_grad=True) for n, p in first.items()}
    other_kwargs = dict(kwargs, lr=123.0)  # overwritten by the state dict
    resumed, opt2 = _run_gdnet(
        other_kwargs,
        groups,
        float_dtype,
        steps=STEPS - STEPS // 2,
        start=STEPS // 2,
        params=restored,
        state=saved,
    )
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    for name in uninterrupted:
        np.testing.assert_array_equal(resumed[name].numpy(), uninterrupted[name].numpy())


def test_state_dict_layout(backend):
    w = make([1.0, 2.0], "float32", requires_grad=True)
    b = make([0.0], "float32", requires_grad=True)
    opt = SGD([{"params": [w], "lr": 0.5}, {"params": [b]}], lr=0.1, momentum=0.9)
    w.grad, b.grad = make([1.0, 1.0], "float32"), make([1.0], "float32")
    opt.step()
    state = opt.state_dict()
    assert state["type"] == "SGD"
    assert [g["params"] for g in state["param_groups"]] == [[0], [1]]
    assert [g["lr"] for g in state["param_groups"]] == [0.5, 0.1]
    assert sorted(state["state"]) == [0, 1]
    assert gd.Tensor(state["state"][0]["momentum_buffer"]).tolist() == [1.0, 1.0]


# -- validation -------------------------------------------------------------------------------
def _param():
    return make([1.0, 2.0], "float32", requires_grad=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lr=-0.1), r"Invalid learning rate: -0.1"),
        (dict(lr=0.1, weight_decay=-1e-4), r"Invalid weight_decay value: -0.0001"),
        (dict(lr=0.1, momentum=-0.5), r"Invalid momentum value: -0.5"),
        (dict(lr=0.1, nesterov=True), r"Nesterov momentum requires a momentum > 0"),
        (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), r"zero dampening"),
    ],
    ids=["negative-lr", "negative-weight-decay", "negative-momentum", "nesterov-no-momentum", "nesterov-dampening"],
)
def test_bad_hyperparameters(backend, kwargs, message):
    with pytest.raises(ValueError, match=message):
        SGD([_param()], **kwargs)


def test_bad_hyperparameters_in_a_group(backend):
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        SGD([{"params": [_param()]}, {"params": [_param()], "lr": -1}], lr=0.1)


def test_a_parameter_given_twice(backend):
    w = _param()
    with pytest.raises(ValueError, match="more than once"):
        SGD([w, w], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        SGD([{"params": [w]}, {"params": [_param(), w]}], lr=0.1)


def test_non_tensor_parameters(backend):
    with pytest.raises(TypeError, match="can only optimize Tensors; got ndarray"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="got list"):
        SGD([{"params": [[1.0, 2.0]]}], lr=0.1)


def test_parameters_that_do_not_require_grad(backend):
    with pytest.raises(ValueError, match="does not require grad"):
        SGD([make([1.0], "float32")], lr=0.1)


def test_empty_parameter_list(backend):
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)


def test_a_single_tensor_group(backend):
    w = _param()
    opt = SGD([{"params": w}], lr=0.1)
    assert opt.param_groups[0]["params"][0] is w


def test_a_state_dict_from_another_optimizer(backend):
    class Other(Optimizer):
        def __init__(self, params):
            super().__init__(params, dict(lr=0.1))

        def step(self):
            pass

    w = _param()
    with pytest.raises(ValueError, match="state dict is from a Other optimizer; expected SGD"):
        SGD([w], lr=0.1).load_state_dict(Other([w]).state_dict())


def test_a_state_dict_with_other_groups(backend):
    saved = SGD([_param(), _param()], lr=0.1).state_dict()
    with pytest.raises(ValueError, match=r"sizes \[2\], expected \[1\]"):
        SGD([_param()], lr=0.1).load_state_dict(saved)


def test_zero_grad_and_repr(backend):
    w = _param()
    opt = SGD([w], lr=0.1, momentum=0.9)
    (w * w).sum().backward()
    opt.zero_grad()
    assert w.grad is None
    text = repr(opt)
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "momentum: 0.9" in text


# -- fast paths -----------------------------------------------------------------------------
FAST_CONFIGS = [c for c in CONFIG_PARAMS if "momentum" in c.values[0] or c.values[1]]


@pytest.mark.parametrize("kwargs, groups", FAST_CONFIGS)
def test_a_registered_fast_path_is_used_and_equals_the_reference(monkeypatch, kwargs, groups):
    calls = []

    def numpy_sgd_momentum(param, grad, buffer, lr, momentum, dampening, decay, nesterov):
        calls.append(param.shape)
        g = grad + decay * param
        buffer *= momentum
        buffer += (1.0 - dampening) * g
        param -= lr * (g + momentum * buffer if nesterov else buffer)

    with gd.use_backend("numpy"):
        reference, _ = _run_gdnet(kwargs, groups, "float64")
        assert not calls
        monkeypatch.setitem(backends.backend_class("numpy").fast_paths, "sgd_momentum", numpy_sgd_momentum)
        assert gd.get_backend().fast_path("sgd_momentum") is numpy_sgd_momentum
        fast, opt = _run_gdnet(kwargs, groups, "float64")
    with_momentum = [p for g in opt.param_groups if g["momentum"] for p in g["params"]]
    # the first step creates the buffer on the reference path; every later one is fused
    assert len(calls) == (STEPS - 1) * len(with_momentum) > 0
    for name in reference:
        np.testing.assert_allclose(fast[name].numpy(), reference[name].numpy(), rtol=1e-13)


def test_no_fast_path_is_registered_for_the_cpu_backends(backend):
    if backend.name == "cupy":
        pytest.skip("cupy registers CUDA kernels")
    assert backend.fast_path("sgd_momentum") is None


@pytest.mark.parametrize("kwargs, groups", FAST_CONFIGS)
def test_the_backends_own_fast_path_equals_the_reference(backend, float_dtype, monkeypatch, kwargs, groups):
    if backend.fast_path("sgd_momentum") is None:
        pytest.skip(f"{backend.describe()} registers no sgd_momentum fast path")
    fast, _ = _run_gdnet(kwargs, groups, float_dtype)
    monkeypatch.delitem(backend.fast_paths, "sgd_momentum")
    reference, _ = _run_gdnet(kwargs, groups, float_dtype)
    for name in reference:
        np.testing.assert_allclose(fast[name].numpy(), reference[name].numpy(), rtol=_tolerance(float_dtype) * 100)
