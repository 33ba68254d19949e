"""Activations (ELU, GELU, SiLU, Softplus, Hardtanh), the regression, binary and KL losses, and the
contrastive losses: gradient checks and device/dtype on every backend row, PyTorch's values and
gradients on the numpy row, and the bad-input errors."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import numpy as np
import pytest
from conftest import make
from test_nn import rel_err

import gdnet as gd
from gdnet import nn, ops
from gdnet.nn import functional as F
from gdnet.nn.activations import ELU, GELU, Hardtanh, SiLU, Softplus
from gdnet.nn.losses import NTXentLoss


def N(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).normal(scale=scale, size=shape)


def away(*shape, seed=0, kinks=(-1.0, 0.0, 1.0), gap=0.1, low=-2.5, high=2.5):
    """Uniform draws in [low, high] at least ``gap`` from every kink, so finite differences
    (steps of 3e-3 in float32) never straddle one."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(low, high, size=shape)
    for _ in range(20):
        near = np.min(np.abs(values[..., None] - np.asarray(kinks)), axis=-1) < gap
        if not near.any():
            return values
        values[near] = rng.uniform(low, high, size=int(near.sum()))
    raise AssertionError("could not draw values away from the kinks")


def probabilities(*shape, seed=0):
    return np.random.default_rng(seed).uniform(0.05, 0.95, size=shape)


def _torch():
    import torch

    return torch


def _tf():
    import torch.nn.functional as TF

    return TF


f32 = partial(make, dtype="float32")



@pytest.fixture
def numpy_backend():
    """The PyTorch comparisons run on the numpy row only."""
    with gd.use_backend("numpy") as active:
        yield active

# -- activations: one row each -------------------------------------------------------------------
ACTIVATIONS = [
    # (id, gdnet callable, torch callable, input)
    ("elu", ELU(), lambda x: _torch().nn.ELU()(x), away(3, 4, kinks=(0.0,))),
    ("elu-alpha", ELU(0.5), lambda x: _torch().nn.ELU(0.5)(x), away(3, 4, seed=1, kinks=(0.0,))),
    (
        "elu-large-inputs",
        partial(F.elu, alpha=2.0),
        lambda x: _tf().elu(x, alpha=2.0),
        np.array([-800.0, -40.0, -0.3, 0.4, 40.0, 800.0]),
    ),
    ("gelu", GELU(), lambda x: _torch().nn.GELU()(x), N(3, 4, scale=2.0)),
    (
        "gelu-wide",
        F.gelu,
        lambda x: _tf().gelu(x),
        np.array([-12.0, -5.0, -2.2, -1.5, -0.7, 0.0, 1e-8, 0.9, 2.1, 2.2, 4.0, 8.5, 30.0]),
    ),
    ("gelu-tanh", GELU("tanh"), lambda x: _torch().nn.GELU("tanh")(x), N(3, 4, scale=2.0)),
    ("silu", SiLU(), lambda x: _torch().nn.SiLU()(x), N(3, 4, scale=3.0)),
    ("silu-functional", F.silu, lambda x: _tf().silu(x), N(2, 3, 2)),
    ("softplus", Softplus(), lambda x: _torch().nn.Softplus()(x), N(3, 4, scale=3.0)),
    (
        "softplus-beta-threshold",
        Softplus(beta=2.0, threshold=3.0),
        lambda x: _torch().nn.Softplus(beta=2.0, threshold=3.0)(x),
        away(3, 4, kinks=(1.5,), low=-3.0, high=3.0),
    ),
    (
        "softplus-past-threshold",
        partial(F.softplus, beta=0.5),
        lambda x: _tf().softplus(x, beta=0.5),
        np.array([-90.0, -30.0, -1.0, 0.0, 2.0, 39.0, 41.0, 90.0]),
    ),
    ("hardtanh", Hardtanh(), lambda x: _torch().nn.Hardtanh()(x), away(3, 4)),
    (
        "hardtanh-range",
        Hardtanh(-0.5, 2.0),
        lambda x: _torch().nn.Hardtanh(-0.5, 2.0)(x),
        away(3, 4, seed=1, kinks=(-0.5, 2.0), low=-3.0, high=3.0),
    ),
    (
        "hardtanh-relu6",
        partial(F.hardtanh, min_val=0.0, max_val=6.0),
        lambda x: _tf().relu6(x),
        away(4, 3, kinks=(0.0, 6.0), low=-3.0, high=9.0),
    ),
]
ACTIVATION_PARAMS = [pytest.param(*row[1:], id=row[0]) for row in ACTIVATIONS]


@pytest.mark.parametrize("fn, torch_fn, x_host", ACTIVATION_PARAMS)
def test_activation_gradcheck(backend, float_dtype, fn, torch_fn, x_host):
    assert gd.gradcheck(fn, make(x_host, float_dtype, requires_grad=True))


@pytest.mark.parametrize("fn, torch_fn, x_host", ACTIVATION_PARAMS)
@pytest.mark.parametrize("batch", ["full", "one"])
def test_activation_keeps_shape_device_and_dtype(backend, fn, torch_fn, x_host, batch):
    x_host = x_host[:1] if batch == "one" else x_host
    x = make(x_host, "float32", requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow in a branch where() throws away
        y = fn(x)
        y.sum().backward()
    assert y.shape == x.shape and y.device == x.device and y.dtype == x.dtype
    assert x.grad.shape == x.shape and x.grad.device == x.device and x.grad.dtype == x.dtype
    assert np.all(np.isfinite(y.numpy())) and np.all(np.isfinite(x.grad.numpy()))


@pytest.mark.parametrize("fn, torch_fn, x_host", ACTIVATION_PARAMS)
def test_activation_matches_torch(numpy_backend, fn, torch_fn, x_host):
    torch = pytest.importorskip("torch")
    x, tx = make(x_host, requires_grad=True), torch.tensor(x_host, requires_grad=True)
    y, ty = fn(x), torch_fn(tx)
    assert rel_err(y.numpy(), ty.detach().numpy()) < 1e-6
    weights = N(*x_host.shape, seed=9)
    (y * make(weights)).sum().backward()
    (ty * torch.from_numpy(weights)).sum().backward()
    assert rel_err(x.grad.numpy(), tx.grad.numpy()) < 1e-6


def test_erf_is_accurate_over_the_whole_line(backend, float_dtype):
    host = np.concatenate([np.linspace(-9.0, 9.0, 3601), np.geomspace(1e-30, 1.0, 200), [-0.0, np.inf, -np.inf]])
    got = ops.erf(make(host, float_dtype)).numpy().astype(np.float64)
    want = np.array([math.erf(v) for v in host])
    tolerance = 4e-15 if float_dtype == "float64" else 3e-7
    assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)) < tolerance


def test_softplus_extremes_stay_finite_and_exact(backend, float_dtype):
    x = make(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0]), float_dtype, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = ops.softplus(x)
        y.sum().backward()
    values = y.numpy().astype(np.float64)
    assert values[0] == 0.0 and values[1] == pytest.approx(math.exp(-50.0), rel=1e-5)
    assert values[2] == pytest.approx(math.log(2.0)) and values[3] == 50.0 and values[4] == 1000.0
    np.testing.assert_allclose(x.grad.numpy(), [0.0, math.exp(-50.0), 0.5, 1.0, 1.0], rtol=1e-5)


def test_activation_reprs():
    assert repr(ELU()) == "ELU(alpha=1.0)"
    assert repr(GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(SiLU()) == "SiLU()"
    assert repr(Softplus(2.0)) == "Softplus(beta=2.0, threshold=20.0)"
    assert repr(Hardtanh(0.0, 6.0)) == "Hardtanh(min_val=0.0, max_val=6.0)"


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: GELU("exact"), "unknown approximate 'exact'; expected 'none' or 'tanh'"),
        (lambda: Softplus(beta=0), "beta must not be 0"),
        (lambda: Hardtanh(1.0, -1.0), r"min_val \(1.0\) must not be greater than max_val \(-1.0\)"),
        (lambda: F.gelu(gd.zeros((2,)), approximate="sigmoid"), "gelu: unknown approximate 'sigmoid'"),
        (lambda: F.hardtanh(gd.zeros((2,)), 2.0, 1.0), r"hardtanh: min_val \(2.0\)"),
    ],
    ids=["gelu", "softplus", "hardtanh", "gelu-functional", "hardtanh-functional"],
)
def test_activation_settings_are_validated(build, message):
    with pytest.raises(ValueError, match=message):
        build()


# -- losses: one row each, run with every reduction ----------------------------------------------
SOFT_TARGETS = probabilities(4, 3, seed=1)
HARD_TARGETS = (np.random.default_rng(2).uniform(size=(4, 3)) < 0.5).astype(np.float64)
CLASS_WEIGHTS = np.array([0.5, 2.0, 1.0])


def _offset_target(x_host, kinks, seed=3):
    """A target whose difference from x stays away from the loss's kinks (|d| = 0, beta, delta)."""
    kinks = tuple(k for kink in kinks for k in (-kink, kink))
    return x_host - away(*x_host.shape, seed=seed, kinks=kinks, gap=0.1)


X = N(4, 3)
LOG_PROBS = np.log(probabilities(4, 3, seed=4) / probabilities(4, 3, seed=4).sum(axis=1, keepdims=True))
TARGET_PROBS = probabilities(4, 3, seed=5) / probabilities(4, 3, seed=5).sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Weighted:
    """A loss called with a weight argument, made on the running backend (or in torch) per call."""

    fn: Callable[..., Any]
    weights: np.ndarray
    key: str

    def __call__(self, x, t, reduction, lib):
        w = make(self.weights, x.dtype) if lib == "gd" else _torch().from_numpy(self.weights)
        return self.fn(x, t, reduction=reduction, **{self.key: w})


def _torch_loss(name):
    return lambda *args, **kwargs: getattr(_tf(), name)(*args, **kwargs)


LOSSES = [
    # (id, gdnet fn(x, t, reduction), torch fn(x, t, reduction), x, target, reductions)
    ("bce-soft", F.binary_cross_entropy, "binary_cross_entropy", probabilities(4, 3), SOFT_TARGETS),
    ("bce-hard", F.binary_cross_entropy, "binary_cross_entropy", probabilities(4, 3, seed=6), HARD_TARGETS),
    (
        "bce-weight",
        Weighted(F.binary_cross_entropy, CLASS_WEIGHTS, "weight"),
        Weighted(_torch_loss("binary_cross_entropy"), CLASS_WEIGHTS, "weight"),
        probabilities(4, 3, seed=7),
        SOFT_TARGETS,
    ),
    (
        "bce-logits",
        F.binary_cross_entropy_with_logits,
        "binary_cross_entropy_with_logits",
        N(4, 3, scale=3.0),
        SOFT_TARGETS,
    ),
    (
        "bce-logits-pos-weight",
        Weighted(F.binary_cross_entropy_with_logits, CLASS_WEIGHTS * 2.0, "pos_weight"),
        Weighted(_torch_loss("binary_cross_entropy_with_logits"), CLASS_WEIGHTS * 2.0, "pos_weight"),
        N(4, 3, seed=1, scale=3.0),
        HARD_TARGETS,
    ),
    (
        "bce-logits-weight",
        Weighted(F.binary_cross_entropy_with_logits, CLASS_WEIGHTS[None, :], "weight"),
        Weighted(_torch_loss("binary_cross_entropy_with_logits"), CLASS_WEIGHTS[None, :], "weight"),
        N(4, 3, seed=2),
        SOFT_TARGETS,
    ),
    ("l1", F.l1_loss, "l1_loss", X, _offset_target(X, (0.0,))),
    ("smooth-l1", F.smooth_l1_loss, "smooth_l1_loss", X, _offset_target(X, (0.0, 1.0))),
    (
        "smooth-l1-beta",
        partial(F.smooth_l1_loss, beta=0.5),
        partial(_torch_loss("smooth_l1_loss"), beta=0.5),
        X,
        _offset_target(X, (0.0, 0.5), seed=4),
    ),
    (
        "smooth-l1-beta-zero",
        partial(F.smooth_l1_loss, beta=0.0),
        partial(_torch_loss("smooth_l1_loss"), beta=0.0),
        X,
        _offset_target(X, (0.0,), seed=5),
    ),
    ("huber", F.huber_loss, "huber_loss", X, _offset_target(X, (0.0, 1.0), seed=6)),
    (
        "huber-delta",
        partial(F.huber_loss, delta=0.5),
        partial(_torch_loss("huber_loss"), delta=0.5),
        X,
        _offset_target(X, (0.0, 0.5), seed=7),
    ),
    ("kl-div", F.kl_div, "kl_div", LOG_PROBS, TARGET_PROBS),
    (
        "kl-div-log-target",
        partial(F.kl_div, log_target=True),
        partial(_torch_loss("kl_div"), log_target=True),
        LOG_PROBS,
        np.log(TARGET_PROBS),
    ),
]
REDUCTIONS = {"kl-div": ("mean", "sum", "none", "batchmean"), "kl-div-log-target": ("mean", "sum", "batchmean")}
LOSS_PARAMS = [
    pytest.param(fn, torch_fn, x, t, reduction, id=f"{name}-{reduction}")
    for name, fn, torch_fn, x, t in LOSSES
    for reduction in REDUCTIONS.get(name, ("mean", "sum", "none"))
]


def _call(fn, x, t, reduction, lib):
    if isinstance(fn, Weighted):
        return fn(x, t, reduction, lib)
    if isinstance(fn, str):
        return getattr(_tf(), fn)(x, t, reduction=reduction)
    return fn(x, t, reduction=reduction)


@pytest.mark.parametrize("fn, torch_fn, x_host, t_host, reduction", LOSS_PARAMS)
def test_loss_gradcheck(backend, float_dtype, fn, torch_fn, x_host, t_host, reduction):
    x = make(x_host, float_dtype, requires_grad=True)
    t = make(t_host, float_dtype, requires_grad=True)
    assert gd.gradcheck(lambda x, t: _call(fn, x, t, reduction, "gd"), x, t)


@pytest.mark.parametrize("fn, torch_fn, x_host, t_host, reduction", LOSS_PARAMS)
@pytest.mark.parametrize("batch", ["full", "one"])
def test_loss_shape_device_and_dtype(backend, fn, torch_fn, x_host, t_host, reduction, batch):
    if batch == "one":
        x_host, t_host = x_host[:1], t_host[:1]
    x = make(x_host, "float32", requires_grad=True)
    loss = _call(fn, x, make(t_host, "float32"), reduction, "gd")
    assert loss.shape == (x.shape if reduction == "none" else ())
    assert loss.device == x.device and loss.dtype == x.dtype
    loss.sum().backward()
    assert x.grad.shape == x.shape and x.grad.device == x.device and x.grad.dtype == x.dtype


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")  # torch's kl_div note
@pytest.mark.parametrize("fn, torch_fn, x_host, t_host, reduction", LOSS_PARAMS)
def test_loss_matches_torch(numpy_backend, fn, torch_fn, x_host, t_host, reduction):
    torch = pytest.importorskip("torch")
    x, t = make(x_host, requires_grad=True), make(t_host, requires_grad=True)
    tx, tt = torch.tensor(x_host, requires_grad=True), torch.tensor(t_host, requires_grad=True)
    y, ty = _call(fn, x, t, reduction, "gd"), _call(torch_fn, tx, tt, reduction, "torch")
    assert rel_err(y.numpy(), ty.detach().numpy()) < 1e-6
    weights = N(*y.shape, seed=9)
    (y * make(weights)).sum().backward()
    (ty * torch.from_numpy(np.asarray(weights))).sum().backward()
    assert rel_err(x.grad.numpy(), tx.grad.numpy()) < 1e-6
    assert rel_err(t.grad.numpy(), tt.grad.numpy()) < 1e-6


def test_bce_clamps_the_log_at_minus_100_as_torch(numpy_backend):
    torch = pytest.importorskip("torch")
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-50, 0.5])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    x = make(p, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no log(0) and no 0 * inf in the backward pass
        loss = F.binary_cross_entropy(x, make(y), reduction="none")
        loss.sum().backward()
    expected = torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(y), reduction="none")
    np.testing.assert_allclose(loss.numpy(), expected.numpy(), rtol=1e-12)
    np.testing.assert_allclose(loss.numpy(), [100.0, 100.0, 0.0, 0.0, 100.0, math.log(2.0)])
    assert np.all(np.isfinite(x.grad.numpy()))


def test_bce_with_logits_is_stable_for_huge_scores(backend, float_dtype):
    x = make(np.array([-1e4, -60.0, 0.0, 60.0, 1e4]), float_dtype, requires_grad=True)
    y = make(np.array([0.0, 1.0, 1.0, 0.0, 1.0]), float_dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
        loss.sum().backward()
    np.testing.assert_allclose(loss.numpy(), [0.0, 60.0, math.log(2.0), 60.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), [0.0, -1.0, -0.5, 1.0, 0.0], atol=1e-6)


def test_kl_div_zero_targets_add_nothing(backend, float_dtype):
    log_q = make(np.log(np.array([[0.2, 0.3, 0.5]])), float_dtype, requires_grad=True)
    p = make(np.array([[0.0, 0.4, 0.6]]), float_dtype, requires_grad=True)
    loss = F.kl_div(log_q, p, reduction="sum")
    expected = 0.4 * math.log(0.4 / 0.3) + 0.6 * math.log(0.6 / 0.5)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert np.all(np.isfinite(p.grad.numpy()))
    np.testing.assert_allclose(log_q.grad.numpy(), [[0.0, -0.4, -0.6]], rtol=1e-6)


# every loss that takes (input, target) of one shape
SAME_SHAPE_LOSSES = [
    F.binary_cross_entropy,
    F.binary_cross_entropy_with_logits,
    F.l1_loss,
    F.smooth_l1_loss,
    F.huber_loss,
    F.kl_div,
]
SAME_SHAPE_IDS = [fn.__name__ for fn in SAME_SHAPE_LOSSES]


@pytest.mark.parametrize("loss", SAME_SHAPE_LOSSES, ids=SAME_SHAPE_IDS)
def test_loss_shape_mismatch_names_both_shapes(backend, float_dtype, loss):
    x, t = make(probabilities(3, 4), float_dtype), make(probabilities(4, 3), float_dtype)
    expected = rf"{loss.__name__}: target has shape \(4, 3\); expected the input's shape \(3, 4\)"
    with pytest.raises(ValueError, match=expected):
        loss(x, t)


@pytest.mark.parametrize("loss", SAME_SHAPE_LOSSES, ids=SAME_SHAPE_IDS)
def test_loss_unknown_reduction(backend, float_dtype, loss):
    x = make(probabilities(3, 4), float_dtype)
    with pytest.raises(ValueError, match="unknown reduction 'avg'"):
        loss(x, x, reduction="avg")


def test_bce_input_outside_zero_one(backend, float_dtype):
    x = make(np.array([0.5, 1.5, -0.1]), float_dtype)
    with pytest.raises(ValueError, match=r"input must be probabilities in \[0, 1\]; got values from -0.1.* to 1.5"):
        F.binary_cross_entropy(x, make(np.zeros(3), float_dtype))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: F.binary_cross_entropy(x, x, weight=f32(np.ones(4))), r"weight has shape \(4,\); expected a shape"),
        (
            lambda x: F.binary_cross_entropy_with_logits(x, x, pos_weight=f32(np.ones((2, 3)))),
            r"pos_weight has shape \(2, 3\); expected a shape that broadcasts to \(3, 3\)",
        ),
        (lambda x: F.smooth_l1_loss(x, x, beta=-1.0), "beta must be non-negative and finite; got -1.0"),
        (lambda x: F.huber_loss(x, x, delta=0.0), "delta must be positive and finite; got 0.0"),
        (lambda x: F.kl_div(x, x, reduction="batch"), r"unknown reduction 'batch'; expected one of .*'batchmean'"),
    ],
    ids=["bce-weight", "pos-weight", "smooth-l1-beta", "huber-delta", "kl-div-reduction"],
)
def test_loss_settings_are_validated(backend, call, message):
    with pytest.raises(ValueError, match=message):
        call(f32(probabilities(3, 3)))


def test_loss_target_on_another_device_is_refused():
    pytest.importorskip("array_api_strict")
    with gd.use_backend("array_api_strict", "device1"):
        x = make(probabilities(2, 3), requires_grad=True)
        with pytest.raises(gd.DeviceMismatchError):
            F.l1_loss(x, np.zeros((2, 3)))


# -- contrastive losses --------------------------------------------------------------------------
def torch_nt_xent(z1, z2, *, temperature, reduction):
    """SimCLR's NT-Xent written out directly."""
    torch, TF = _torch(), _tf()
    n = z1.shape[0]
    z = TF.normalize(torch.cat([z1, z2]), dim=1)
    scores = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    positives = torch.cat([torch.arange(n) + n, torch.arange(n)])
    return TF.cross_entropy(scores, positives, reduction=reduction)


def torch_info_nce(q, k, negatives=None, *, temperature, reduction):
    torch, TF = _torch(), _tf()
    q, k = TF.normalize(q, dim=1), TF.normalize(k, dim=1)
    if negatives is None:
        logits, answers = q @ k.T, torch.arange(q.shape[0])
    else:
        positive = (q * k).sum(dim=1, keepdim=True)
        logits = torch.cat([positive, q @ TF.normalize(negatives, dim=1).T], dim=1)
        answers = torch.zeros(q.shape[0], dtype=torch.long)
    return TF.cross_entropy(logits / temperature, answers, reduction=reduction)


CONTRASTIVE = [
    # (id, gdnet fn(*tensors, reduction), torch fn(*tensors, reduction), inputs, losses per row of inputs[0])
    (
        "nt-xent",
        partial(F.nt_xent, temperature=0.5),
        partial(torch_nt_xent, temperature=0.5),
        (N(4, 3), N(4, 3, seed=1)),
        2,
    ),
    (
        "nt-xent-cold",
        partial(F.nt_xent, temperature=0.1),
        partial(torch_nt_xent, temperature=0.1),
        (N(3, 5, seed=2), N(3, 5, seed=3)),
        2,
    ),
    ("nt-xent-one-pair", F.nt_xent, partial(torch_nt_xent, temperature=0.5), (N(1, 3, seed=4), N(1, 3, seed=5)), 2),
    (
        "nt-xent-loss-module",
        lambda z1, z2, reduction: NTXentLoss(0.2, reduction)(z1, z2),
        partial(torch_nt_xent, temperature=0.2),
        (N(3, 4, seed=15), N(3, 4, seed=16)),
        2,
    ),
    (
        "info-nce-in-batch",
        partial(F.info_nce, temperature=0.2),
        partial(torch_info_nce, negatives=None, temperature=0.2),
        (N(4, 3, seed=6), N(4, 3, seed=7)),
        1,
    ),
    (
        "info-nce-negatives",
        F.info_nce,
        partial(torch_info_nce, temperature=0.1),
        (N(3, 4, seed=8), N(3, 4, seed=9), N(5, 4, seed=10)),
        1,
    ),
]
CONTRASTIVE_PARAMS = [
    pytest.param(fn, torch_fn, inputs, per_row, reduction, id=f"{name}-{reduction}")
    for name, fn, torch_fn, inputs, per_row in CONTRASTIVE
    for reduction in ("mean", "sum", "none")
]


@pytest.mark.parametrize("fn, torch_fn, inputs, per_row, reduction", CONTRASTIVE_PARAMS)
def test_contrastive_gradcheck(backend, float_dtype, fn, torch_fn, inputs, per_row, reduction):
    tensors = [make(host, float_dtype, requires_grad=True) for host in inputs]
    assert gd.gradcheck(lambda *ts: fn(*ts, reduction=reduction), *tensors)


@pytest.mark.parametrize("fn, torch_fn, inputs, per_row, reduction", CONTRASTIVE_PARAMS)
def test_contrastive_shape_device_and_dtype(backend, fn, torch_fn, inputs, per_row, reduction):
    tensors = [make(host, "float32", requires_grad=True) for host in inputs]
    loss = fn(*tensors, reduction=reduction)
    assert loss.shape == ((inputs[0].shape[0] * per_row,) if reduction == "none" else ())
    assert loss.device == tensors[0].device and loss.dtype == tensors[0].dtype
    loss.sum().backward()
    for t in tensors:
        assert t.grad.shape == t.shape and t.grad.device == t.device and t.grad.dtype == t.dtype


@pytest.mark.parametrize("fn, torch_fn, inputs, per_row, reduction", CONTRASTIVE_PARAMS)
def test_contrastive_matches_torch(numpy_backend, fn, torch_fn, inputs, per_row, reduction):
    torch = pytest.importorskip("torch")
    ours = [make(host, requires_grad=True) for host in inputs]
    theirs = [torch.tensor(host, requires_grad=True) for host in inputs]
    y, ty = fn(*ours, reduction=reduction), torch_fn(*theirs, reduction=reduction)
    assert rel_err(y.numpy(), ty.detach().numpy()) < 1e-6
    weights = N(*y.shape, seed=11)
    (y * make(weights)).sum().backward()
    (ty * torch.from_numpy(np.asarray(weights))).sum().backward()
    for mine, other in zip(ours, theirs):
        assert rel_err(mine.grad.numpy(), other.grad.numpy()) < 1e-6


def test_nt_xent_rewards_aligned_views(backend):
    base = N(6, 8, seed=12)
    aligned = F.nt_xent(make(base, "float32"), make(base + N(6, 8, seed=13, scale=0.01), "float32"), 0.1)
    unrelated = F.nt_xent(make(base, "float32"), make(N(6, 8, seed=14), "float32"), 0.1)
    assert aligned.item() < 0.1 < unrelated.item()


def test_nt_xent_loss_module(backend):
    loss = NTXentLoss(temperature=0.2, reduction="sum")
    z1, z2 = make(N(4, 3), "float32"), make(N(4, 3, seed=1), "float32")
    assert loss(z1, z2).item() == pytest.approx(F.nt_xent(z1, z2, 0.2, "sum").item())
    assert repr(loss) == "NTXentLoss(temperature=0.2, reduction='sum')"
    assert isinstance(loss, nn.Module)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: F.nt_xent(f32(N(4, 3)), f32(N(3, 3))), r"z1 and z2 must have one shape \(N, D\); got \(4, 3\) and"),
        (lambda: F.nt_xent(f32(N(4)), f32(N(4))), r"expected \(N, D\) embeddings with one D; got shapes"),
        (lambda: F.nt_xent(f32(N(4, 3)), f32(N(4, 2))), r"expected \(N, D\) embeddings with one D"),
        (lambda: F.nt_xent(f32(N(4, 3)), f32(N(4, 3)), temperature=0.0), "must be positive and finite; got 0.0"),
        (lambda: F.nt_xent(f32(N(4, 3)), f32(N(4, 3)), reduction="avg"), "unknown reduction 'avg'"),
        (lambda: F.info_nce(f32(N(4, 3)), f32(N(5, 3))), r"positive_key has shape \(5, 3\); expected the query's"),
        (lambda: F.info_nce(f32(N(4, 3)), f32(N(4, 3)), f32(N(2, 2))), r"'negative_keys': \(2, 2\)"),
        (lambda: NTXentLoss(temperature=-1.0), "temperature must be positive"),
    ],
    ids=["nt-xent-rows", "nt-xent-1d", "nt-xent-width", "nt-xent-temperature", "nt-xent-reduction",
         "info-nce-rows", "info-nce-negatives", "module-temperature"],
)
def test_contrastive_bad_input(backend, call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- 0 * inf: a -inf (log 0, a masked class) that a zero weight leaves out gives no NaN -----------
INF = math.inf
LOG_P = np.array([[math.log(0.25), math.log(0.75), -INF], [math.log(0.5), -INF, math.log(0.5)]])


def test_nll_loss_ignores_minus_inf_in_other_classes(backend, float_dtype):
    log_p = make(LOG_P, float_dtype, requires_grad=True)
    loss = F.nll_loss(log_p, gd.tensor(np.array([0, 2])))
    assert loss.item() == pytest.approx(-(math.log(0.25) + math.log(0.5)) / 2, rel=1e-6)  # 1.0397
    loss.backward()
    np.testing.assert_array_equal(log_p.grad.numpy(), [[-0.5, 0.0, 0.0], [0.0, 0.0, -0.5]])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_with_minus_inf_matches_torch(numpy_backend, reduction):
    torch = pytest.importorskip("torch")
    ours, theirs = make(LOG_P, requires_grad=True), torch.tensor(LOG_P, requires_grad=True)
    out = F.nll_loss(ours, np.array([0, 2]), reduction=reduction)
    expected = _tf().nll_loss(theirs, torch.tensor([0, 2]), reduction=reduction)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


def test_cross_entropy_probability_target_ignores_minus_inf_logits(backend, float_dtype):
    # PyTorch gives NaN here (0 * -inf in its sum); the loss of classes of probability 0 is 0
    logits = make(np.array([[0.0, math.log(3.0), -INF]]), float_dtype, requires_grad=True)
    target = make(np.array([[0.5, 0.5, 0.0]]), float_dtype)
    loss = F.cross_entropy(logits, target)
    assert loss.item() == pytest.approx(-0.5 * (math.log(0.25) + math.log(0.75)), rel=1e-6)
    loss.backward()
    np.testing.assert_allclose(logits.grad.numpy(), [[-0.25, 0.25, 0.0]], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("log_target", [False, True], ids=["probabilities", "log-target"])
def test_kl_div_ignores_minus_inf_where_the_target_is_zero(backend, float_dtype, log_target):
    # PyTorch gives NaN here; the terms of target 0 are 0 whatever the input
    log_q = make(np.array([[math.log(0.25), math.log(0.75), -INF]]), float_dtype, requires_grad=True)
    p = np.array([[0.5, 0.5, 0.0]])
    target = make(np.log(p, where=p > 0, out=np.full_like(p, -INF)) if log_target else p, float_dtype,
                  requires_grad=True)
    loss = F.kl_div(log_q, target, reduction="sum", log_target=log_target)
    assert loss.item() == pytest.approx(0.5 * math.log(2.0) + 0.5 * math.log(2.0 / 3.0), rel=1e-6)
    loss.backward()
    np.testing.assert_allclose(log_q.grad.numpy(), [[-0.5, -0.5, 0.0]], rtol=1e-6)
    assert np.all(np.isfinite(target.grad.numpy()))


ZERO_ROW = np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]])  # an all-zero vector beside a plain one


@pytest.mark.parametrize("p", [2.0, 3.0])
def test_normalize_of_an_all_zero_vector(backend, float_dtype, p):
    x = make(ZERO_ROW, float_dtype, requires_grad=True)
    y = F.normalize(x, p=p, dim=1)
    norm = (3.0**p + 4.0**p) ** (1.0 / p)
    np.testing.assert_allclose(y.numpy(), [[0.0, 0.0, 0.0], [3.0 / norm, 4.0 / norm, 0.0]], rtol=1e-6)
    y.sum().backward()
    grad = x.grad.numpy()
    # x / eps near 0: the gradient is 1 / eps there (PyTorch's), not NaN
    np.testing.assert_allclose(grad[0], [1e12, 1e12, 1e12], rtol=1e-6)
    assert np.all(np.isfinite(grad[1]))


@pytest.mark.parametrize("p", [2.0, 3.0])
def test_normalize_of_an_all_zero_vector_matches_torch(numpy_backend, p):
    torch = pytest.importorskip("torch")
    ours, theirs = make(ZERO_ROW, requires_grad=True), torch.tensor(ZERO_ROW, requires_grad=True)
    weights = np.array([[1.0, -2.0, 0.5], [0.3, 1.0, -1.0]])
    out, expected = F.normalize(ours, p=p, dim=1), _tf().normalize(theirs, p=p, dim=1)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12)
    (out * make(weights)).sum().backward()
    (expected * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-9)


def test_contrastive_losses_with_an_all_zero_embedding_stay_finite(backend, float_dtype):
    z1 = make(np.concatenate([np.zeros((1, 3)), N(2, 3)]), float_dtype, requires_grad=True)
    z2 = make(N(3, 3, seed=1), float_dtype, requires_grad=True)
    for loss in (F.nt_xent(z1, z2), F.info_nce(z1, z2)):
        assert math.isfinite(loss.item())
        loss.backward()
        assert np.all(np.isfinite(z1.grad.numpy())) and np.all(np.isfinite(z2.grad.numpy()))


def test_contrastive_losses_with_an_all_zero_embedding_match_torch(numpy_backend):
    torch = pytest.importorskip("torch")
    hosts = (np.concatenate([np.zeros((1, 3)), N(2, 3)]), N(3, 3, seed=1))
    for fn, torch_fn in ((F.nt_xent, partial(torch_nt_xent, temperature=0.5)),
                         (F.info_nce, partial(torch_info_nce, temperature=0.1))):
        ours = [make(h, requires_grad=True) for h in hosts]
        theirs = [torch.tensor(h, requires_grad=True) for h in hosts]
        out, expected = fn(*ours), torch_fn(*theirs, reduction="mean")
        assert out.item() == pytest.approx(expected.item(), rel=1e-12)
        out.backward()
        expected.backward()
        for mine, other in zip(ours, theirs):
            np.testing.assert_allclose(mine.grad.numpy(), other.grad.numpy(), rtol=1e-9, atol=1e-12)
