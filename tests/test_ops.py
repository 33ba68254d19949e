"""The primitives: one table row per case, checked on every backend row (finite-difference
gradients, device and dtype kept) and against PyTorch's autograd (forward and gradients)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import numpy as np
import pytest
from conftest import make, rel_err

import gdnet as gd
from gdnet import autograd, ops


# -- inputs ------------------------------------------------------------------------------------
def N(*shape, seed=0):
    """Standard-normal floats (differentiated)."""
    return np.random.default_rng(seed).normal(size=shape)


def P(*shape, seed=0):
    """Positive floats in [0.5, 2) (for log, sqrt, pow bases, divisors)."""
    return np.random.default_rng(seed).uniform(0.5, 2.0, size=shape)


def A(*shape, seed=0):
    """Floats at least 0.2 away from zero (no kink for relu)."""
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 1.5, size=shape)


@dataclass(frozen=True)
class Const:
    """A non-differentiated input (integer indices or labels, boolean conditions)."""

    value: np.ndarray


def _prob_rows(n, c, seed=0):
    e = np.exp(N(n, c, seed=seed))
    return e / e.sum(axis=1, keepdims=True)


LABELS = Const(np.array([0, 3, 1, 3, 2]))
CONDITION = Const(np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]]))


@dataclass
class Case:
    id: str
    fn: Callable[..., Any]  # on gdnet Tensors
    inputs: tuple
    torch_fn: Callable[..., Any] | None = None  # on torch tensors; default: fn


def _torch():
    import torch

    return torch


def _tf():
    import torch.nn.functional as F

    return F


def _torch_cross_entropy(x, target, reduction):
    return _tf().cross_entropy(x, target, reduction=reduction)


CASES = [
    # arithmetic, broadcasting, Python scalars on either side
    Case("add", lambda a, b: a + b, (N(3, 4), N(3, 4, seed=1))),
    Case("add-broadcast-row", lambda a, b: ops.add(a, b), (N(3, 4), N(4, seed=1)), lambda a, b: a + b),
    Case("add-broadcast-outer", lambda a, b: a + b, (N(3, 1), N(1, 4, seed=1))),
    Case("add-scalar-left", lambda a: 2.5 + a, (N(2, 3),)),
    Case("sub", lambda a, b: a - b, (N(3, 4), N(3, 4, seed=1))),
    Case(
        "sub-broadcast",
        lambda a, b: ops.sub(a, b),
        (N(2, 3, 4), N(3, 1, seed=1)),
        lambda a, b: a - b,
    ),
    Case("sub-scalar-left", lambda a: 1.0 - a, (N(2, 3),)),
    Case("mul", lambda a, b: a * b, (N(3, 4), N(3, 4, seed=1))),
    Case(
        "mul-broadcast",
        lambda a, b: ops.mul(a, b),
        (N(2, 1, 4), N(3, 1, seed=1)),
        lambda a, b: a * b,
    ),
    Case("mul-scalar", lambda a: a * 3.0, (N(2, 3),)),
    Case("div", lambda a, b: a / b, (N(3, 4), P(3, 4, seed=1))),
    Case("div-broadcast", lambda a, b: ops.div(a, b), (N(3, 4), P(4, seed=1)), lambda a, b: a / b),
    Case("div-scalar-left", lambda b: 2.0 / b, (P(2, 3),)),
    Case("neg", lambda a: -a, (N(2, 3),)),
    Case(
        "neg-fn",
        lambda a: ops.neg(a),
        (
            N(
                4,
            ),
        ),
        lambda a: -a,
    ),
    Case("pow-tensor-scalar", lambda a: a**3.0, (N(2, 3),)),
    Case("pow-tensor-half", lambda a: ops.pow(a, 0.5), (P(2, 3),), lambda a: a**0.5),
    Case("pow-scalar-tensor", lambda b: 2.0**b, (N(2, 3),)),
    Case("pow-tensor-tensor", lambda a, b: a**b, (P(2, 3), N(2, 3, seed=1))),
    Case("pow-tensor-tensor-broadcast", lambda a, b: a**b, (P(2, 3), N(3, seed=1))),
    # linear algebra
    Case("matmul-2d", lambda a, b: a @ b, (N(3, 4), N(4, 2, seed=1))),
    Case(
        "matmul-batched",
        lambda a, b: ops.matmul(a, b),
        (N(2, 3, 4), N(2, 4, 2, seed=1)),
        lambda a, b: a @ b,
    ),
    Case("matmul-broadcast-batch", lambda a, b: a @ b, (N(2, 1, 3, 4), N(3, 4, 2, seed=1))),
    Case("matmul-3d-2d", lambda a, b: a @ b, (N(2, 3, 4), N(4, 2, seed=1))),
    Case("matmul-1d-2d", lambda a, b: a @ b, (N(4), N(4, 3, seed=1))),
    Case("matmul-2d-1d", lambda a, b: a @ b, (N(3, 4), N(4, seed=1))),
    Case("matmul-1d-1d", lambda a, b: a @ b, (N(4), N(4, seed=1))),
    Case("matmul-1d-3d", lambda a, b: a @ b, (N(4), N(2, 4, 3, seed=1))),
    Case("matmul-3d-1d", lambda a, b: a @ b, (N(2, 3, 4), N(4, seed=1))),
    Case(
        "linear",
        lambda x, w, b: ops.linear(x, w, b),
        (N(5, 4), N(3, 4, seed=1), N(3, seed=2)),
        lambda x, w, b: _tf().linear(x, w, b),
    ),
    Case(
        "linear-no-bias",
        lambda x, w: ops.linear(x, w),
        (N(5, 4), N(3, 4, seed=1)),
        lambda x, w: _tf().linear(x, w),
    ),
    Case(
        "linear-3d-input",
        lambda x, w, b: ops.linear(x, w, b),
        (N(2, 5, 4), N(3, 4, seed=1), N(3, seed=2)),
        lambda x, w, b: _tf().linear(x, w, b),
    ),
    Case(
        "linear-1d-input",
        lambda x, w, b: ops.linear(x, w, b),
        (N(4), N(3, 4, seed=1), N(3, seed=2)),
        lambda x, w, b: _tf().linear(x, w, b),
    ),
    # reductions
    Case("sum-all", lambda a: a.sum(), (N(3, 4),)),
    Case("sum-axis", lambda a: ops.sum(a, axis=1), (N(3, 4),), lambda a: a.sum(axis=1)),
    Case("sum-neg-axis-keepdims", lambda a: a.sum(axis=-1, keepdims=True), (N(2, 3, 4),)),
    Case("sum-tuple", lambda a: a.sum(axis=(0, 2)), (N(2, 3, 4),)),
    Case("sum-tuple-keepdims", lambda a: a.sum(axis=(0, 2), keepdims=True), (N(2, 3, 4),)),
    Case(
        "sum-all-keepdims",
        lambda a: a.sum(keepdims=True),
        (N(2, 3),),
        lambda a: a.sum(axis=(0, 1), keepdims=True),
    ),
    Case("mean-all", lambda a: a.mean(), (N(3, 4),)),
    Case("mean-axis", lambda a: ops.mean(a, axis=0), (N(3, 4),), lambda a: a.mean(axis=0)),
    Case("mean-tuple-keepdims", lambda a: a.mean(axis=(1, 2), keepdims=True), (N(2, 3, 4),)),
    Case("max-all", lambda a: a.max(), (N(3, 4),), lambda a: a.amax()),
    Case("max-axis", lambda a: ops.max(a, axis=1), (N(3, 4),), lambda a: a.amax(dim=1)),
    Case(
        "max-neg-axis-keepdims",
        lambda a: a.max(axis=-2, keepdims=True),
        (N(2, 3, 4),),
        lambda a: a.amax(dim=-2, keepdim=True),
    ),
    Case("max-tuple", lambda a: a.max(axis=(0, 2)), (N(2, 3, 4),), lambda a: a.amax(dim=(0, 2))),
    Case(
        "max-all-keepdims",
        lambda a: a.max(keepdims=True),
        (N(2, 3),),
        lambda a: a.amax(dim=(0, 1), keepdim=True),
    ),
    # shapes and indexing
    Case("reshape", lambda a: a.reshape(2, 6), (N(3, 4),)),
    Case("reshape-non-contiguous", lambda a: a.T.reshape(6), (N(2, 3),)),
    Case("0d-times-1d", lambda a, b: a * b, (np.asarray(N(1)[0]), N(3, seed=1))),
    Case("0d-exp-sum", lambda a: a.exp().sum(), (np.asarray(N(1)[0]),)),
    Case("0d-max", lambda a: a.max(), (np.asarray(N(1)[0]),), lambda a: a.amax()),
    Case("reshape-infer", lambda a: ops.reshape(a, (-1,)), (N(2, 3, 2),), lambda a: a.reshape(-1)),
    Case(
        "permute_dims",
        lambda a: ops.permute_dims(a, (2, 0, 1)),
        (N(2, 3, 4),),
        lambda a: a.permute(2, 0, 1),
    ),
    Case("permute-method", lambda a: a.permute(1, 0, 2), (N(2, 3, 4),)),
    Case("T", lambda a: a.T, (N(2, 3),), lambda a: a.T),
    Case("mT", lambda a: a.mT, (N(2, 3, 4),), lambda a: a.mT),
    Case(
        "broadcast_to",
        lambda a: ops.broadcast_to(a, (2, 3, 4)),
        (N(3, 1),),
        lambda a: a.broadcast_to((2, 3, 4)),
    ),
    Case("getitem-int", lambda a: a[1], (N(3, 4),)),
    Case("getitem-slices", lambda a: a[:, 1:3], (N(3, 4),)),
    Case("getitem-int-step", lambda a: a[0, ::2], (N(3, 4),)),
    Case("getitem-ellipsis", lambda a: a[..., 1:], (N(2, 3, 4),)),
    Case("getitem-negative-int", lambda a: a[-1, :, 2], (N(2, 3, 4),)),
    Case("getitem-newaxis", lambda a: a[None, 1, ..., None], (N(3, 4),)),
    Case("getitem-list-repeats", lambda a: a[[0, 2, 0]], (N(3, 4),)),
    Case(
        "take-axis0",
        lambda a, i: ops.take(a, i, axis=0),
        (N(4, 3), Const(np.array([2, 0, 2, 3]))),
        lambda a, i: _torch().index_select(a, 0, i),
    ),
    Case(
        "take-axis1",
        lambda a, i: gd.take(a, i, axis=1),
        (N(3, 4), Const(np.array([3, 3, 1]))),
        lambda a, i: _torch().index_select(a, 1, i),
    ),
    Case(
        "getitem-index-array",
        lambda a, i: a[i],
        (N(4, 3), Const(np.array([1, 1, 0]))),
        lambda a, i: a[i],
    ),
    Case(
        "concat",
        lambda a, b, c: ops.concat([a, b, c]),
        (N(2, 3), N(1, 3, seed=1), N(3, 3, seed=2)),
        lambda a, b, c: _torch().cat([a, b, c]),
    ),
    Case(
        "concat-negative-axis",
        lambda a, b: ops.concat([a, b], axis=-1),
        (N(2, 3, 2), N(2, 3, 1, seed=1)),
        lambda a, b: _torch().cat([a, b], dim=-1),
    ),
    Case(
        "concat-same-tensor-twice",
        lambda a: ops.concat([a, a * 2.0], axis=1),
        (N(2, 3),),
        lambda a: _torch().cat([a, a * 2.0], dim=1),
    ),
    Case(
        "stack",
        lambda a, b: ops.stack([a, b]),
        (N(2, 3), N(2, 3, seed=1)),
        lambda a, b: _torch().stack([a, b]),
    ),
    Case(
        "stack-last-axis",
        lambda a, b, c: ops.stack([a, b, c], axis=-1),
        (N(2, 3), N(2, 3, seed=1), N(2, 3, seed=2)),
        lambda a, b, c: _torch().stack([a, b, c], dim=-1),
    ),
    Case(
        "unbind-reversed",
        lambda a: ops.stack(ops.unbind(a, axis=1)[::-1], axis=1),
        (N(2, 4, 3),),
        lambda a: _torch().stack(a.unbind(1)[::-1], dim=1),
    ),
    Case(
        "unbind-some-unused",
        lambda a: ops.unbind(a)[2] * ops.unbind(a)[0] + ops.unbind(a)[2],
        (N(4, 3),),
        lambda a: a[2] * a[0] + a[2],
    ),
    Case(
        "chunk",
        lambda a: ops.chunk(a, 3, axis=-1)[1] * ops.chunk(a, 3, axis=-1)[2].exp(),
        (N(2, 6),),
        lambda a: a.chunk(3, dim=-1)[1] * a.chunk(3, dim=-1)[2].exp(),
    ),
    # elementwise functions
    Case("exp", lambda a: a.exp(), (N(2, 3),)),
    Case("log", lambda a: ops.log(a), (P(2, 3),), lambda a: a.log()),
    Case("sqrt", lambda a: gd.sqrt(a), (P(2, 3),), lambda a: a.sqrt()),
    Case("tanh", lambda a: a.tanh(), (N(2, 3),)),
    Case("sigmoid", lambda a: ops.sigmoid(a), (N(2, 3),), lambda a: a.sigmoid()),
    Case("relu", lambda a: a.relu(), (A(3, 4),)),
    Case("erf", lambda a: ops.erf(a), (N(3, 4),), lambda a: _torch().erf(a)),
    Case(
        "erf-both-pieces-and-tails",
        lambda a: ops.erf(a),
        (np.array([-7.0, -3.2, -1.6, -1.4, -0.3, 0.0, 1e-9, 0.7, 1.5, 1.55, 2.9, 5.9, 6.5]),),
        lambda a: _torch().erf(a),
    ),
    Case("softplus", lambda a: ops.softplus(a), (N(3, 4),), lambda a: _tf().softplus(a)),
    Case(
        "softplus-large",
        lambda a: ops.softplus(a),
        (np.array([-60.0, -30.0, -2.0, 0.0, 3.0, 15.0, 30.0, 60.0]),),
        lambda a: _tf().softplus(a, threshold=100.0),
    ),
    Case(
        "maximum",
        lambda a, b: gd.maximum(a, b),
        (N(3, 4), N(3, 4, seed=1)),
        lambda a, b: _torch().maximum(a, b),
    ),
    Case(
        "maximum-broadcast",
        lambda a, b: ops.maximum(a, b),
        (N(3, 4), N(4, seed=1)),
        lambda a, b: _torch().maximum(a, b),
    ),
    Case(
        "maximum-scalar",
        lambda a: ops.maximum(a, 0.1),
        (A(3, 4) + 0.1,),
        lambda a: _torch().clamp_min(a, 0.1),
    ),
    Case(
        "where",
        lambda c, a, b: gd.where(c, a, b),
        (CONDITION, N(3, 4), N(3, 4, seed=1)),
        lambda c, a, b: _torch().where(c, a, b),
    ),
    Case(
        "where-broadcast",
        lambda c, a, b: ops.where(c, a, b),
        (CONDITION, N(3, 4), N(4, seed=1)),
        lambda c, a, b: _torch().where(c, a, b),
    ),
    # fused softmax-cross-entropy
    *[
        Case(
            f"sce-labels-{r}",
            partial(ops.softmax_cross_entropy, reduction=r),
            (N(5, 4), LABELS),
            partial(_torch_cross_entropy, reduction=r),
        )
        for r in ("mean", "sum", "none")
    ],
    *[
        Case(
            f"sce-probs-{r}",
            partial(ops.softmax_cross_entropy, reduction=r),
            (N(5, 4), _prob_rows(5, 4, seed=1)),
            partial(_torch_cross_entropy, reduction=r),
        )
        for r in ("mean", "sum", "none")
    ],
]


def _ids(cases):
    return [pytest.param(c, id=c.id) for c in cases]


def _gd_inputs(case: Case, dtype: str) -> list:
    return [
        gd.tensor(spec.value) if isinstance(spec, Const) else make(spec, dtype, requires_grad=True)
        for spec in case.inputs
    ]


def _torch_inputs(case: Case) -> list:
    torch = pytest.importorskip("torch")
    return [
        torch.from_numpy(spec.value)
        if isinstance(spec, Const)
        else torch.tensor(spec, dtype=torch.float64, requires_grad=True)
        for spec in case.inputs
    ]


@pytest.fixture
def numpy_backend():
    """The PyTorch comparisons run on the numpy row only."""
    with gd.use_backend("numpy") as active:
        yield active


# -- every row of the matrix -------------------------------------------------------------------
@pytest.mark.parametrize("case", _ids(CASES))
def test_gradcheck(case, backend, float_dtype):
    inputs = _gd_inputs(case, float_dtype)
    assert gd.gradcheck(case.fn, *inputs)


@pytest.mark.parametrize("case", _ids(CASES))
def test_output_and_gradients_stay_on_device_and_dtype(case, backend, float_dtype):
    inputs = _gd_inputs(case, float_dtype)
    first = next(t for t in inputs if t.requires_grad)
    out = case.fn(*inputs)
    assert out.device == first.device
    assert out.dtype == first.dtype
    assert out.requires_grad
    out.sum().backward()
    for t in inputs:
        if t.requires_grad:
            assert t.grad is not None
            assert t.grad.shape == t.shape
            assert t.grad.device == t.device
            assert t.grad.dtype == t.dtype


@pytest.mark.parametrize("case", _ids(CASES))
def test_matches_torch(case, numpy_backend):
    torch = pytest.importorskip("torch")
    ours = _gd_inputs(case, "float64")
    theirs = _torch_inputs(case)
    out = case.fn(*ours)
    expected = (case.torch_fn or case.fn)(*theirs)
    assert rel_err(out.numpy(), expected.detach().numpy()) < 1e-6
    weights = np.random.default_rng(7).normal(size=out.shape)
    (out * make(weights)).sum().backward()
    (expected * torch.from_numpy(weights)).sum().backward()
    for mine, other in zip(ours, theirs):
        if mine.requires_grad:
            assert rel_err(mine.grad.numpy(), other.grad.numpy()) < 1e-6


# -- particular behaviour ----------------------------------------------------------------------
def test_sigmoid_large_inputs_do_not_overflow(backend, float_dtype):
    x = make(np.array([-1000.0, -80.0, -1.0, 0.0, 1.0, 80.0, 1000.0]), float_dtype, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = ops.sigmoid(x)
        y.sum().backward()
    values, grads = y.numpy(), x.grad.numpy()
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(grads))
    expected = np.array([0.0, 0.0, 1 / (1 + np.e), 0.5, 1 / (1 + np.exp(-1.0)), 1.0, 1.0])
    np.testing.assert_allclose(values, expected, atol=1e-6)
    assert values[0] >= 0.0 and values[-1] <= 1.0
    assert grads[0] == 0.0 and grads[-1] == 0.0 and grads[3] == pytest.approx(0.25)


@pytest.mark.parametrize(
    "grad_shape, shape, expected",
    [
        ((2, 3), (2, 3), np.ones((2, 3))),
        ((2, 3), (3,), np.full((3,), 2.0)),
        ((2, 3), (2, 1), np.full((2, 1), 3.0)),
        ((4, 2, 3), (1, 3), np.full((1, 3), 8.0)),
        ((4, 2, 3), (), np.array(24.0)),
        ((4, 2, 3), (2, 1), np.full((2, 1), 12.0)),
    ],
)
def test_sum_to_undoes_broadcasting(backend, grad_shape, shape, expected):
    xp = backend.xp
    grad = xp.ones(grad_shape, dtype=xp.float32, device=backend.device)
    out = autograd.sum_to(xp, grad, shape)
    assert tuple(out.shape) == shape
    assert out.device == grad.device
    np.testing.assert_array_equal(gd.Tensor(out).numpy(), expected)


def test_broadcast_gradient_sums_over_broadcast_axes(backend, float_dtype):
    a = make(np.ones((3, 1)), float_dtype, requires_grad=True)
    b = make(np.arange(4.0), float_dtype, requires_grad=True)
    (a * b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.full((3, 1), 6.0))
    np.testing.assert_allclose(b.grad.numpy(), np.full((4,), 3.0))


def test_max_ties_share_the_gradient(backend, float_dtype):
    x = make(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]]), float_dtype, requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])


def test_maximum_ties_split_the_gradient(backend, float_dtype):
    a = make(np.array([1.0, 2.0, 3.0]), float_dtype, requires_grad=True)
    b = make(np.array([1.0, 5.0, 0.0]), float_dtype, requires_grad=True)
    gd.maximum(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.5, 0.0, 1.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.5, 1.0, 0.0])


def test_relu_gradient_at_zero_is_zero(backend, float_dtype):
    x = make(np.array([-1.0, 0.0, 2.0]), float_dtype, requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 1.0])


def test_take_accepts_a_list_and_a_tensor(backend, float_dtype):
    x = make(np.arange(12.0).reshape(4, 3), float_dtype, requires_grad=True)
    from_list = gd.take(x, [3, 0], axis=0)
    from_tensor = gd.take(x, gd.tensor(np.array([3, 0])), axis=0)
    np.testing.assert_array_equal(from_list.numpy(), [[9, 10, 11], [0, 1, 2]])
    np.testing.assert_array_equal(from_tensor.numpy(), from_list.numpy())


def test_arrays_inside_a_tuple_key_are_refused(backend, float_dtype):
    x = make(np.ones((3, 2)), float_dtype, requires_grad=True)
    for key in ((gd.tensor(np.array([0, 0])), 1), ([0, 0], 1), (slice(None), np.array([1, 1]))):
        with pytest.raises(TypeError, match="take"):
            x[key]


def test_boolean_mask_indexing_is_refused(backend, float_dtype):
    x = make(np.arange(3.0), float_dtype, requires_grad=True)
    with pytest.raises(TypeError, match="where"):
        x[gd.tensor(np.array([True, False, True]))]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: x.sum(axis=2), "axis 2 is out of range"),
        (lambda x: x.max(axis=(0, -3)), "axis -3 is out of range"),
        (lambda x: x.permute(0, 0), "not a permutation"),
        (lambda x: x.reshape(1, 2, 3).T, "2-D"),
        (lambda x: ops.linear(x, make(np.ones((4, 5)), x.dtype)), "input has 3 features"),
    ],
    ids=["sum-axis", "max-axis", "permute", "T-on-3d", "linear-features"],
)
def test_bad_arguments_raise_value_errors(backend, float_dtype, call, message):
    x = make(np.ones((2, 3)), float_dtype)
    with pytest.raises(ValueError, match=message):
        call(x)


def test_linear_features_error_names_expected_and_got(backend, float_dtype):
    x, w = make(np.ones((2, 3)), float_dtype), make(np.ones((4, 5)), float_dtype)
    with pytest.raises(ValueError) as info:
        ops.linear(x, w)
    assert "3 features" in str(info.value) and "expected 5" in str(info.value)


@pytest.mark.parametrize("reduction, shape", [("mean", ()), ("sum", ()), ("none", (5,))])
def test_softmax_cross_entropy_values(backend, float_dtype, reduction, shape):
    logits_host = N(5, 4)
    logits = make(logits_host, float_dtype)
    out = ops.softmax_cross_entropy(logits, gd.tensor(LABELS.value), reduction)
    log_probs = logits_host - np.log(np.exp(logits_host).sum(axis=1, keepdims=True))
    per_sample = -log_probs[np.arange(5), LABELS.value]
    expected = {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]
    assert out.shape == shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5 if float_dtype == "float32" else 1e-12)


def test_softmax_cross_entropy_is_stable_for_large_logits(backend, float_dtype):
    logits = make(np.array([[1000.0, 0.0, -1000.0], [-500.0, 500.0, 0.0]]), float_dtype, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = ops.softmax_cross_entropy(logits, gd.tensor(np.array([0, 0])), "sum")
        loss.backward()
    assert loss.item() == pytest.approx(1000.0, rel=1e-6)
    assert np.all(np.isfinite(logits.grad.numpy()))


# -- edges: finite answers where a formula meets 0 * inf, NaN in max, indexing ----------------------
NAN = float("nan")


@dataclass
class Edge:
    """An input at an edge of an op, the right output and gradients of output.sum(), and the
    PyTorch spelling (None where PyTorch does not have it right)."""

    id: str
    fn: Callable[..., Any]
    inputs: tuple
    value: Any
    grads: tuple  # one per differentiated input, in order
    torch_fn: Callable[..., Any] | None = None


EDGES = [
    # pow at base 0: d/db = a ** b log(a) is 0 * -inf, d/da = b a ** (b - 1) is 0 * inf at b = 0
    Edge("pow-base-zero", lambda a, b: a**b, (np.array([0.0, 2.0]), np.array([1.0, 1.0])), [0.0, 2.0],
         ([1.0, 1.0], [0.0, 2.0 * math.log(2.0)]), lambda a, b: a**b),
    Edge("pow-exponent-zero", lambda x: x**0, (np.array([0.0, 3.0]),), [1.0, 1.0], ([0.0, 0.0],),
         lambda x: x**0),
    Edge("pow-tensor-exponent-zero", lambda a, b: a**b, (np.array([0.0, 3.0]), np.array([0.0, 0.0])), [1.0, 1.0],
         ([0.0, 0.0], [0.0, math.log(3.0)]), lambda a, b: a**b),
    Edge("polynomial-at-zero", lambda w: w**0 + w**1 + w**2, (np.array(0.0),), 1.0, (1.0,),
         lambda w: w**0 + w**1 + w**2),
    Edge("pow-scalar-base-zero", lambda b: 0.0**b, (np.array([1.0, 0.0, 2.0]),), [0.0, 1.0, 0.0], ([0.0, 0.0, 0.0],),
         lambda b: 0.0**b),
    # NaN in max: torch.max's rule, the gradient to the NaN positions only (torch.amax gives NaN)
    Edge("max-all-nan", lambda x: x.max(), (np.array([1.0, NAN, 3.0, NAN]),), NAN, ([0.0, 0.5, 0.0, 0.5],),
         lambda x: x.max()),
    Edge("max-axis-nan", lambda x: x.max(axis=1), (np.array([[1.0, NAN, 3.0], [4.0, 2.0, 0.0]]),), [NAN, 4.0],
         ([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]],), lambda x: x.max(dim=1).values),
    Edge("max-ties-beside-nan", lambda x: x.max(axis=1), (np.array([[1.0, NAN], [2.0, 2.0]]),), [NAN, 2.0],
         ([[0.0, 1.0], [0.5, 0.5]],)),
    Edge("maximum-nan", lambda a, b: gd.maximum(a, b), (np.array([1.0, NAN, 3.0]), np.array([2.0, 2.0, 2.0])),
         [2.0, NAN, 3.0], ([0.0, 1.0, 1.0], [1.0, 1.0, 0.0]), lambda a, b: _torch().maximum(a, b)),
    # indexing: negative indices, and index arrays of more than one dimension
    Edge("take-negative", lambda x: gd.take(x, [-1, 0, -1], axis=0), (np.arange(6.0).reshape(3, 2),),
         [[4.0, 5.0], [0.0, 1.0], [4.0, 5.0]], ([[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]],),
         lambda x: x[_torch().tensor([-1, 0, -1])]),
    Edge("getitem-negative-array", lambda x: x[gd.tensor(np.array([-1, -3]))], (np.arange(6.0).reshape(3, 2),),
         [[4.0, 5.0], [0.0, 1.0]], ([[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]],),
         lambda x: x[_torch().tensor([-1, -3])]),
    Edge("getitem-2d-array", lambda x: x[gd.tensor(np.array([[0, 1], [2, 2]]))], (np.arange(6.0).reshape(3, 2),),
         [[[0.0, 1.0], [2.0, 3.0]], [[4.0, 5.0], [4.0, 5.0]]], ([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]],),
         lambda x: x[_torch().tensor([[0, 1], [2, 2]])]),
    Edge("take-2d-negative-axis1", lambda x: gd.take(x, [[0, -1], [2, 2]], axis=1), (np.arange(6.0).reshape(2, 3),),
         [[[0.0, 2.0], [2.0, 2.0]], [[3.0, 5.0], [5.0, 5.0]]], ([[1.0, 0.0, 3.0], [1.0, 0.0, 3.0]],),
         lambda x: x[:, _torch().tensor([[0, -1], [2, 2]])]),
]


@pytest.mark.parametrize("edge", [pytest.param(e, id=e.id) for e in EDGES])
def test_edges_give_the_right_values_and_gradients(edge, backend, float_dtype):
    inputs = [make(value, float_dtype, requires_grad=True) for value in edge.inputs]
    out = edge.fn(*inputs)
    np.testing.assert_allclose(out.numpy(), edge.value, rtol=1e-6)
    out.sum().backward()
    for tensor, expected in zip(inputs, edge.grads):
        np.testing.assert_allclose(tensor.grad.numpy(), expected, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("edge", [pytest.param(e, id=e.id) for e in EDGES if e.torch_fn is not None])
def test_edges_match_torch(edge, numpy_backend):
    torch = pytest.importorskip("torch")
    ours = [make(value, requires_grad=True) for value in edge.inputs]
    theirs = [torch.tensor(value, dtype=torch.float64, requires_grad=True) for value in edge.inputs]
    out, expected = edge.fn(*ours), edge.torch_fn(*theirs)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    expected.sum().backward()
    for mine, other in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad.numpy(), other.grad.numpy(), rtol=1e-12)


def test_pow_at_base_zero_keeps_infinite_answers_infinite(backend, float_dtype):
    # b < 0 at a = 0: the derivatives are infinite, not 0 (the 0-rule is only for b = 0 / b >= 0)
    a = make(np.array([0.0]), float_dtype, requires_grad=True)
    b = make(np.array([-1.0]), float_dtype, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPy warns of the division by zero, rightly
        (a**b).sum().backward()
    assert a.grad.numpy()[0] == -math.inf and b.grad.numpy()[0] == -math.inf


def test_pow_at_base_zero_runs_without_warnings(backend, float_dtype):
    a = make(np.array([0.0, 2.0]), float_dtype, requires_grad=True)
    b = make(np.array([0.0, 1.0]), float_dtype, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (a**b + 0.0**b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.0, 1.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.0, 2.0 * math.log(2.0)], rtol=1e-6)
