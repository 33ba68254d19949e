"""Normalisation, dropout and weight penalties: gradient checks on every backend row, PyTorch
comparisons (running statistics included), masks, errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make
from test_nn import N, layer_table_tests, numpy_backend, params_as_inputs  # noqa: F401

import gdnet as gd
from gdnet import nn
from gdnet.nn import functional as F
from gdnet.nn import normalization


def _randomise(torch_module):
    """Non-trivial affine parameters and running statistics on a PyTorch normalisation layer."""
    import torch

    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in torch_module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.5 + 1.0)
        if getattr(torch_module, "running_mean", None) is not None:
            torch_module.running_mean.copy_(torch.randn(torch_module.running_mean.shape, generator=generator))
            torch_module.running_var.uniform_(0.5, 2.0, generator=generator)
    return torch_module


def _stats(module, seed=3):
    """The same kind of running statistics on a gdnet BatchNorm (for rows without PyTorch)."""
    rng = np.random.default_rng(seed)
    c = module.num_features
    module.load_state_dict(
        {"running_mean": rng.normal(size=c), "running_var": rng.uniform(0.5, 2.0, size=c)}, strict=False
    )
    return module


# (id, gdnet factory, torch factory, input)
LAYERS = [
    ("batchnorm1d-nc", lambda: nn.BatchNorm1d(3), lambda t: _randomise(t.nn.BatchNorm1d(3)), N(4, 3)),
    ("batchnorm1d-ncl", lambda: nn.BatchNorm1d(2), lambda t: _randomise(t.nn.BatchNorm1d(2)), N(3, 2, 4)),
    ("batchnorm2d", lambda: nn.BatchNorm2d(3), lambda t: _randomise(t.nn.BatchNorm2d(3)), N(2, 3, 3, 2)),
    ("batchnorm2d-batch1", lambda: nn.BatchNorm2d(2), lambda t: _randomise(t.nn.BatchNorm2d(2)), N(1, 2, 3, 3)),
    (
        "batchnorm2d-no-affine",
        lambda: nn.BatchNorm2d(2, affine=False),
        lambda t: t.nn.BatchNorm2d(2, affine=False),
        N(2, 2, 2, 3),
    ),
    (
        "batchnorm2d-eval",
        lambda: _stats(nn.BatchNorm2d(3)).eval(),
        lambda t: _randomise(t.nn.BatchNorm2d(3)).eval(),
        N(2, 3, 2, 2),
    ),
    (
        "batchnorm1d-eval-batch1",
        lambda: _stats(nn.BatchNorm1d(3)).eval(),
        lambda t: _randomise(t.nn.BatchNorm1d(3)).eval(),
        N(1, 3),
    ),
    (
        "batchnorm2d-untracked-eval",
        lambda: nn.BatchNorm2d(2, track_running_stats=False).eval(),
        lambda t: _randomise(t.nn.BatchNorm2d(2, track_running_stats=False)).eval(),
        N(2, 2, 2, 2),
    ),
    ("layernorm", lambda: nn.LayerNorm(4), lambda t: _randomise(t.nn.LayerNorm(4)), N(3, 4)),
    ("layernorm-2d-batch1", lambda: nn.LayerNorm((2, 3)), lambda t: _randomise(t.nn.LayerNorm((2, 3))), N(1, 4, 2, 3)),
    (
        "layernorm-no-affine",
        lambda: nn.LayerNorm(5, elementwise_affine=False),
        lambda t: t.nn.LayerNorm(5, elementwise_affine=False),
        N(2, 5),
    ),
    (
        "layernorm-no-bias",
        lambda: nn.LayerNorm(3, bias=False),
        lambda t: _randomise(t.nn.LayerNorm(3, bias=False)),
        N(2, 3),
    ),
    ("dropout-eval", lambda: nn.Dropout(0.5).eval(), lambda t: t.nn.Dropout(0.5).eval(), N(3, 4)),
    # without gd.distributed (or with one process) SyncBatchNorm is BatchNorm, as PyTorch's
    ("syncbatchnorm-alone", lambda: nn.SyncBatchNorm(3), lambda t: _randomise(t.nn.BatchNorm1d(3)), N(4, 3)),
    (
        # smooth, so float32 finite differences cross no kink; no conv bias, which BatchNorm cancels
        "conv-bn-tanh-pool",
        lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.BatchNorm2d(2), nn.Tanh(), nn.AvgPool2d(2)),
        lambda t: t.nn.Sequential(
            t.nn.Conv2d(1, 2, 3, padding=1, bias=False), t.nn.BatchNorm2d(2), t.nn.Tanh(), t.nn.AvgPool2d(2)
        ),
        N(2, 1, 4, 4),
    ),
]
test_layer_gradcheck, test_layer_output_stays_on_device_and_dtype, test_layer_matches_torch = layer_table_tests(LAYERS)


def test_sync_batchnorm_gradcheck_in_a_world_of_one(backend, float_dtype, monkeypatch):
    """SyncNormalize, SyncBatchNorm's primitive: its forward combines every rank's statistics and
    its backward sums the input terms over the ranks. In a world of one it gives BatchNorm's
    numbers, which finite differences check here; tests/mpi checks two ranks against one."""
    gd.distributed.init_process_group()
    try:
        monkeypatch.setattr(normalization.distributed, "world_size", lambda: 2)  # the synchronising path
        layer = nn.SyncBatchNorm(3).to(float_dtype)
        assert layer._normalizer() is normalization.SyncNormalize
        fn, params = params_as_inputs(layer)
        x = make(N(4, 3), float_dtype, requires_grad=True)
        assert gd.gradcheck(fn, x, *params)
        synced, alone = nn.SyncBatchNorm(3).to(float_dtype), nn.BatchNorm1d(3).to(float_dtype)
        np.testing.assert_allclose(synced(x).numpy(), alone(x).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(synced.running_var.numpy(), alone.running_var.numpy(), rtol=1e-5)
    finally:
        gd.distributed.destroy_process_group()


# -- running statistics ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "layer, shape",
    [
        ("BatchNorm1d", (8, 3)),
        ("BatchNorm1d", (4, 3, 5)),
        ("BatchNorm2d", (4, 3, 3, 2)),
    ],
    ids=["bn1d-nc", "bn1d-ncl", "bn2d"],
)
@pytest.mark.parametrize("momentum", [0.1, 0.3, None], ids=["m0.1", "m0.3", "cumulative"])
def test_running_statistics_match_torch_after_several_steps(numpy_backend, layer, shape, momentum):  # noqa: F811
    torch = pytest.importorskip("torch")
    ours = getattr(nn, layer)(3, momentum=momentum).to("float64")
    theirs = getattr(torch.nn, layer)(3, momentum=momentum).double()
    rng = np.random.default_rng(0)
    for _ in range(4):
        host = rng.normal(2.0, 3.0, size=shape)
        ours(make(host))
        theirs(torch.from_numpy(host))
    ours.eval(), theirs.eval()
    host = rng.normal(size=shape)
    np.testing.assert_allclose(ours(make(host)).numpy(), theirs(torch.from_numpy(host)).detach().numpy(), rtol=1e-12)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(gd.Tensor(ours.state_dict()[name]).numpy(), value.numpy(), rtol=1e-12, err_msg=name)
    assert int(gd.Tensor(ours.state_dict()["num_batches_tracked"]).item()) == 4


def test_running_statistics_update_on_the_device_without_a_graph(backend, float_dtype):
    bn = nn.BatchNorm2d(2)
    x = make(N(3, 2, 2, 2) * 2.0 + 1.0, "float32", requires_grad=True)
    bn(x).sum().backward()
    for name, buffer in bn.named_buffers():
        assert buffer.device == x.device and buffer.is_leaf and not buffer.requires_grad, name
    host = N(3, 2, 2, 2) * 2.0 + 1.0
    mean = host.mean(axis=(0, 2, 3))
    var = host.var(axis=(0, 2, 3), ddof=1)  # the unbiased variance, as PyTorch
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * var, rtol=1e-5)
    before = bn.running_mean.numpy()
    bn.eval()
    bn(x)
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)  # evaluation leaves them alone
    assert bn.num_batches_tracked.item() == 1


def test_normalisation_refuses_an_input_of_another_dtype_than_its_parameters(backend, float_dtype):
    if float_dtype != "float64":
        pytest.skip("this device has no float64 input to mix in")
    x = make(N(4, 3), "float64")
    for layer, name in ((nn.BatchNorm1d(3), "batch_norm"), (nn.LayerNorm(3), "layer_norm")):
        with pytest.raises(TypeError, match=f"{name}: input has dtype float64 and weight has dtype float32"):
            layer(x)
    untracked = nn.BatchNorm1d(3, affine=False)
    with pytest.raises(TypeError, match="input has dtype float64 and running_mean has dtype float32"):
        untracked.eval()(x)
    bn = nn.BatchNorm1d(3).to("float64")  # the model in the input's dtype: buffers and all
    bn(x)
    assert all(b.dtype == (backend.xp.int64 if n == "num_batches_tracked" else backend.xp.float64)
               for n, b in bn.named_buffers())


def test_untracked_batchnorm_has_no_buffers_and_uses_batch_statistics(backend):
    bn = nn.BatchNorm1d(3, track_running_stats=False)
    assert list(bn.state_dict()) == ["weight", "bias"]
    assert bn.running_mean is None and bn.running_var is None
    x = make(N(5, 3) * 3.0 + 2.0, "float32")
    y = bn.eval()(x).numpy()
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=0), 1.0, rtol=1e-3)


def test_batchnorm_train_normalises_and_eval_uses_running_statistics(backend):
    bn = nn.BatchNorm2d(2)
    y = bn(make(N(4, 2, 3, 3) * 2.0 + 5.0, "float32")).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1.0, rtol=1e-3)
    bn.load_state_dict({"running_mean": np.array([1.0, -1.0]), "running_var": np.array([4.0, 0.25])}, strict=False)
    bn.eval()
    host = np.ones((1, 2, 1, 1))
    expected = (host - np.array([1.0, -1.0])[:, None, None]) / np.sqrt(np.array([4.0, 0.25])[:, None, None] + 1e-5)
    np.testing.assert_allclose(bn(make(host, "float32")).numpy(), expected, rtol=1e-5)


def test_functional_batch_norm_and_layer_norm(backend, float_dtype):
    x = make(N(4, 3, 2), float_dtype)
    mean, var = gd.zeros((3,), dtype=float_dtype), gd.ones((3,), dtype=float_dtype)
    y = F.batch_norm(x, mean, var, training=True, momentum=0.5)
    host = N(4, 3, 2)
    expected = (host - host.mean(axis=(0, 2), keepdims=True)) / np.sqrt(host.var(axis=(0, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mean.numpy(), 0.5 * host.mean(axis=(0, 2)), rtol=1e-4, atol=1e-6)
    z = F.layer_norm(x, (2,))
    expected = (host - host.mean(axis=-1, keepdims=True)) / np.sqrt(host.var(axis=-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(z.numpy(), expected, rtol=1e-4, atol=1e-4)


def test_repr():
    assert repr(nn.BatchNorm2d(32)) == (
        "BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    )
    assert repr(nn.LayerNorm(8)) == "LayerNorm((8,), eps=1e-05, elementwise_affine=True)"
    assert repr(nn.Dropout(0.2)) == "Dropout(p=0.2)"


def test_reset_parameters_and_running_stats(backend):
    bn = nn.BatchNorm1d(2)
    bn(make(N(4, 2) + 3.0, "float32"))
    bn.weight.data = bn.weight.data * 3.0
    bn.reset_parameters()
    np.testing.assert_array_equal(bn.running_mean.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(bn.running_var.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(bn.weight.numpy(), [1.0, 1.0])
    assert bn.num_batches_tracked.item() == 0
    ln = nn.LayerNorm(2)
    ln.weight.data = ln.weight.data * 3.0
    ln.reset_parameters()
    np.testing.assert_array_equal(ln.weight.numpy(), [1.0, 1.0])


# -- bad input -------------------------------------------------------------------------------------
def test_batchnorm_feature_count_mismatch_names_expected_and_got(backend):
    with pytest.raises(ValueError, match=r"BatchNorm2d: input has 3 channels \(shape \(2, 3, 4, 4\)\); expected 4"):
        nn.BatchNorm2d(4)(gd.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"BatchNorm1d: input has 5 channels \(shape \(2, 5\)\); expected 4"):
        nn.BatchNorm1d(4)(gd.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"batch_norm: weight has shape \(2,\); expected \(3,\)"):
        F.batch_norm(gd.zeros((2, 3)), None, None, gd.ones((2,)), training=True)


def test_batchnorm_input_rank(backend):
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected a 4-D \(N, C, H, W\) input; got 2-D shape"):
        nn.BatchNorm2d(4)(gd.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected a 2-D \(N, C\) or 3-D \(N, C, L\) input; got 4-D"):
        nn.BatchNorm1d(4)(gd.zeros((2, 4, 1, 1)))


def test_batchnorm_training_needs_more_than_one_value_per_channel(backend):
    with pytest.raises(ValueError, match=r"more than 1 value per channel .* got input shape \(1, 3\)"):
        nn.BatchNorm1d(3)(gd.zeros((1, 3)))
    assert nn.BatchNorm1d(3).eval()(gd.zeros((1, 3))).shape == (1, 3)


def test_batchnorm_bad_hyperparameters():
    with pytest.raises(ValueError, match="Invalid momentum: 1.5"):
        nn.BatchNorm2d(3, momentum=1.5)
    with pytest.raises(ValueError, match="num_features must be a positive integer; got 0"):
        nn.BatchNorm1d(0)
    with pytest.raises(ValueError, match="evaluation .* needs running_mean and running_var"):
        F.batch_norm(gd.zeros((2, 3)), None, None)


def test_layernorm_shape_mismatch(backend):
    with pytest.raises(ValueError, match=r"input shape \(2, 3, 5\) does not end in normalized_shape \(3, 4\)"):
        nn.LayerNorm((3, 4))(gd.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="non-empty normalized_shape of positive sizes"):
        nn.LayerNorm(())


# -- dropout ---------------------------------------------------------------------------------------
def _dropout_mask(p, shape, seed):
    gd.manual_seed(seed)
    return F.dropout(gd.ones(shape), p).numpy()


def test_dropout_same_seed_same_mask(backend):
    first, again = _dropout_mask(0.3, (20, 30), 5), _dropout_mask(0.3, (20, 30), 5)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, _dropout_mask(0.3, (20, 30), 6))
    gd.manual_seed(5)
    drop = nn.Dropout(0.3)
    np.testing.assert_array_equal(drop(gd.ones((20, 30))).numpy(), first)
    assert not np.array_equal(drop(gd.ones((20, 30))).numpy(), first)  # the next step draws a new mask


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_keeps_about_1_minus_p_and_scales_by_its_inverse(backend, p):
    y = _dropout_mask(p, (200, 250), 0)
    kept = y != 0
    assert kept.mean() == pytest.approx(1 - p, abs=0.01)  # 50,000 draws: 4 standard errors at most
    np.testing.assert_allclose(y[kept], 1.0 / (1.0 - p), rtol=1e-6)
    assert y.dtype == np.float32


def test_dropout_eval_is_the_identity(backend):
    x = make(N(3, 4), "float32", requires_grad=True)
    drop = nn.Dropout(0.5).eval()
    assert drop(x) is x
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), np.zeros((3, 4)))


def test_dropout_gradient_is_the_scaled_mask(backend, float_dtype):
    x = make(N(6, 5), float_dtype, requires_grad=True)

    def fn(x):
        gd.manual_seed(1)  # the same mask at every evaluation
        return F.dropout(x, 0.4)

    assert gd.gradcheck(fn, x)
    x.grad = None
    y = fn(x)
    y.sum().backward()
    mask = _dropout_mask(0.4, (6, 5), 1)
    np.testing.assert_allclose(x.grad.numpy(), mask, rtol=1e-6)
    assert y.device == x.device and y.dtype == x.dtype


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5"])
def test_dropout_invalid_p(p):
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got"):
        nn.Dropout(p)
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        F.dropout(gd.ones((2,)), p)


# -- weight penalties ------------------------------------------------------------------------------
PENALISED = ("0.weight", "2.weight", "3.weight", "4.weight")  # conv2d, conv1d, linear, shared linear


def _penalised_model():
    """Every kind of layer the penalties cover or skip; the shared Linear appears twice."""
    shared = nn.Linear(4, 4)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Conv1d(2, 3, 2, bias=False), nn.Linear(4, 3), shared,
        nn.LayerNorm(4), shared,
    )


def test_penalties_equal_the_hand_computed_sums(backend, float_dtype):
    model = _penalised_model().to(float_dtype)
    state = {name: gd.Tensor(value).numpy().astype(np.float64) for name, value in model.state_dict().items()}
    weights = [state[name] for name in PENALISED]
    l1, l2 = nn.l1_penalty(model), nn.l2_penalty(model)
    assert l1.shape == () and l1.device == backend.device and l1.dtype == getattr(backend.xp, float_dtype)
    assert l1.item() == pytest.approx(sum(np.abs(w).sum() for w in weights), rel=1e-5)
    assert l2.item() == pytest.approx(sum((w * w).sum() for w in weights), rel=1e-5)


def test_penalty_gradients_reach_the_weights_only(backend, float_dtype):
    model = _penalised_model().to(float_dtype)
    (nn.l1_penalty(model) * 0.5 + nn.l2_penalty(model)).backward()
    for name, p in model.named_parameters():
        if name in PENALISED:
            w = p.numpy().astype(np.float64)  # d/dw (0.5 |w| + w^2) = 0.5 sign(w) + 2 w
            np.testing.assert_allclose(p.grad.numpy(), 0.5 * np.sign(w) + 2.0 * w, rtol=1e-5, atol=1e-6)
        else:  # biases and normalisation parameters are not penalised
            assert p.grad is None, name


def test_l1_gradient_at_zero_is_zero(backend, float_dtype):
    layer = nn.Linear(2, 2, init="zeros").to(float_dtype)
    nn.l1_penalty(layer).backward()
    np.testing.assert_array_equal(layer.weight.grad.numpy(), np.zeros((2, 2)))


def test_penalties_in_a_loss(backend, float_dtype):
    model = nn.Sequential(nn.Linear(3, 2))
    model.to(float_dtype)
    x, labels = make(N(4, 3), float_dtype), gd.tensor(np.array([0, 1, 1, 0]))
    (F.cross_entropy(model(x), labels) + 0.01 * nn.l2_penalty(model)).backward()
    with_penalty = model[0].weight.grad.numpy()
    model.zero_grad()
    F.cross_entropy(model(x), labels).backward()
    np.testing.assert_allclose(with_penalty - model[0].weight.grad.numpy(), 0.02 * model[0].weight.numpy(), atol=1e-6)


def test_penalty_of_a_model_without_weights_is_zero(backend):
    penalty = nn.l1_penalty(nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)))
    assert penalty.item() == 0.0 and penalty.device == backend.device
