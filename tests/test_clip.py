"""Gradient clipping: PyTorch's results on the same gradients, on the device, never in place."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import host_normal, make
from test_optim import host_reads_refused

import gdnet as gd
from gdnet.optim import clip_grad_norm_, clip_grad_value_

SHAPES = [(4, 3), (3,), (2, 2, 2)]


def _host_grads(scale=1.0):
    return [host_normal(*shape, seed=i, scale=scale) for i, shape in enumerate(SHAPES)]


def _params(dtype, grads):
    params = [make(np.zeros(g.shape), dtype, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = make(g, dtype)
    return params


def _torch_params(grads):
    torch = pytest.importorskip("torch")
    params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g)
    return torch, params


def _tolerance(dtype):
    return 1e-12 if dtype == "float64" else 1e-5


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf], ids=["l2", "l1", "l3", "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3], ids=["clipped", "within"])
def test_clip_grad_norm_matches_torch(backend, float_dtype, norm_type, max_norm):
    grads = _host_grads()
    torch, theirs = _torch_params(grads)
    their_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    params = _params(float_dtype, grads)
    originals = [p.grad for p in params]
    total = clip_grad_norm_(params, max_norm, norm_type=norm_type)
    rtol = _tolerance(float_dtype)
    assert isinstance(total, gd.Tensor) and total.shape == ()
    assert total.device == backend.device and total.dtype == getattr(backend.xp, float_dtype)
    np.testing.assert_allclose(total.item(), their_total.item(), rtol=rtol)
    for p, original, their, host in zip(params, originals, theirs, grads):
        assert p.grad.device == backend.device and p.grad.dtype == p.dtype
        np.testing.assert_allclose(p.grad.numpy(), their.grad.numpy(), rtol=rtol, atol=1e-7)
        np.testing.assert_allclose(original.numpy(), host, rtol=rtol)  # the old gradient is untouched
    clipped = np.linalg.norm(np.concatenate([p.grad.numpy().ravel() for p in params]), ord=norm_type)
    assert clipped <= max_norm * (1 + 1e-5)
    assert (clipped < max_norm * 0.9) == (max_norm > 1.0)  # gradients within the bound are kept as they are


@pytest.mark.parametrize("clip_value", [0.25, 10.0])
def test_clip_grad_value_matches_torch(backend, float_dtype, clip_value):
    grads = _host_grads()
    torch, theirs = _torch_params(grads)
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    params = _params(float_dtype, grads)
    originals = [p.grad for p in params]
    assert clip_grad_value_(params, clip_value) is None
    for p, original, their, host in zip(params, originals, theirs, grads):
        assert p.grad.device == backend.device and p.grad.dtype == p.dtype
        np.testing.assert_allclose(p.grad.numpy(), their.grad.numpy(), rtol=_tolerance(float_dtype))
        np.testing.assert_allclose(original.numpy(), host, rtol=_tolerance(float_dtype))
        assert np.max(np.abs(p.grad.numpy())) <= clip_value


def test_parameters_without_a_gradient_and_a_single_tensor(backend, float_dtype):
    a, b = _params(float_dtype, [np.array([3.0, 4.0]), np.array([1.0])])
    b.grad = None
    total = clip_grad_norm_([a, b], 1.0)
    assert total.item() == pytest.approx(5.0) and b.grad is None
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    clip_grad_value_(a, 0.7)
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.7], rtol=1e-5)


def test_no_gradients_give_a_zero_norm(backend):
    w = make([1.0], "float32", requires_grad=True)
    total = clip_grad_norm_([w], 1.0)
    assert total.item() == 0.0 and total.device == backend.device and w.grad is None


def test_a_nonfinite_norm(backend, float_dtype):
    (p,) = _params(float_dtype, [np.array([1.0, np.nan])])
    assert math.isnan(clip_grad_norm_([p], 1.0).item())  # scaled by it, as PyTorch does
    (p,) = _params(float_dtype, [np.array([1.0, np.inf])])
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is inf"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_mixed_dtypes_keep_each_gradients_dtype(backend):
    if not backend.supports_dtype("float64"):
        pytest.skip("needs float64 beside float32")
    a = make([3.0], "float32", requires_grad=True)
    b = make([4.0], "float64", requires_grad=True)
    a.grad, b.grad = make([3.0], "float32"), make([4.0], "float64")
    total = clip_grad_norm_([a, b], 1.0)
    assert total.item() == pytest.approx(5.0)
    assert a.grad.dtype == backend.xp.float32 and b.grad.dtype == backend.xp.float64
    np.testing.assert_allclose([a.grad.item(), b.grad.item()], [0.6, 0.8], rtol=1e-5)


def test_clipping_reads_nothing_back(backend, float_dtype, monkeypatch):
    params = _params(float_dtype, _host_grads(scale=10.0))
    with host_reads_refused(backend, monkeypatch):
        total = clip_grad_norm_(params, 1.0)
        clip_grad_norm_(params, 0.5, norm_type=math.inf)
        clip_grad_value_(params, 0.1)
    assert total.item() > 1.0
    assert max(np.max(np.abs(p.grad.numpy())) for p in params) <= 0.1


def test_gradients_on_two_devices_are_refused(backend):
    if backend.name == "numpy":
        pytest.skip("numpy has one device")
    a = make([1.0], "float32", requires_grad=True)
    a.grad = make([1.0], "float32")
    with gd.use_backend("numpy"):
        b = make([1.0], "float32", requires_grad=True)
        b.grad = make([1.0], "float32")
    with pytest.raises(gd.DeviceMismatchError):
        clip_grad_norm_([a, b], 1.0)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda ps: clip_grad_norm_(ps, -1.0), ValueError, r"Invalid max_norm: -1.0 \(expected a number >= 0\)"),
        (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=0), ValueError, "Invalid norm_type: 0"),
        (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=-2.0), ValueError, "Invalid norm_type: -2.0"),
        (lambda ps: clip_grad_norm_(ps, "1"), TypeError, "Invalid max_norm: '1' \\(expected a real number\\)"),
        (lambda ps: clip_grad_norm_([np.zeros(2)], 1.0), TypeError, "takes Tensors .* got ndarray"),
        (lambda ps: clip_grad_value_(ps, -0.5), ValueError, r"Invalid clip_value: -0.5 \(expected a number >= 0\)"),
        (lambda ps: clip_grad_value_([[1.0]], 0.5), TypeError, "got list"),
    ],
    ids=["negative-max-norm", "zero-norm-type", "negative-norm-type", "string-max-norm", "array-parameter",
         "negative-clip-value", "list-parameter"],
)
def test_bad_input(backend, call, error, message):
    params = _params("float32", [np.array([1.0, 2.0])])
    with pytest.raises(error, match=message):
        call(params)
