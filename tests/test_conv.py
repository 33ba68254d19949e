"""Convolution and pooling: gradient checks on every backend row, PyTorch comparisons, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make
from test_nn import N, layer_table_tests, numpy_backend  # noqa: F401

import gdnet as gd
from gdnet import nn
from gdnet.nn import functional as F


def D(*shape, seed=0):
    """Distinct values 0.1 apart in random order: no ties, so max pooling has a gradient."""
    values = np.random.default_rng(seed).permutation(math.prod(shape)) * 0.1
    return (values - values.mean()).reshape(shape)


# (id, gdnet factory, torch factory, input); inputs stay small so gradient checks are quick
LAYERS = [
    ("conv2d", lambda: nn.Conv2d(2, 3, 3), lambda t: t.nn.Conv2d(2, 3, 3), N(2, 2, 5, 4)),
    (
        "conv2d-stride2-pad1",
        lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1),
        lambda t: t.nn.Conv2d(2, 3, 3, stride=2, padding=1),
        N(2, 2, 5, 4),
    ),
    (
        "conv2d-dilation-batch1",
        lambda: nn.Conv2d(2, 2, (2, 3), padding=(1, 2), dilation=(2, 1)),
        lambda t: t.nn.Conv2d(2, 2, (2, 3), padding=(1, 2), dilation=(2, 1)),
        N(1, 2, 4, 4),
    ),
    (
        "conv2d-stride21-no-bias",
        lambda: nn.Conv2d(2, 2, 2, stride=(2, 1), bias=False),
        lambda t: t.nn.Conv2d(2, 2, 2, stride=(2, 1), bias=False),
        N(2, 2, 5, 3),
    ),
    (
        "conv2d-same-even-kernel",
        lambda: nn.Conv2d(1, 2, (4, 3), padding="same"),
        lambda t: t.nn.Conv2d(1, 2, (4, 3), padding="same"),
        N(1, 1, 4, 5),
    ),
    ("conv2d-1x1", lambda: nn.Conv2d(3, 2, 1), lambda t: t.nn.Conv2d(3, 2, 1), N(2, 3, 2, 3)),
    (
        "conv1d-stride2-pad1",
        lambda: nn.Conv1d(2, 3, 3, stride=2, padding=1),
        lambda t: t.nn.Conv1d(2, 3, 3, stride=2, padding=1),
        N(2, 2, 7),
    ),
    (
        "conv1d-same-dilation-batch1",
        lambda: nn.Conv1d(2, 2, 2, padding="same", dilation=2),
        lambda t: t.nn.Conv1d(2, 2, 2, padding="same", dilation=2),
        N(1, 2, 6),
    ),
    ("max-pool2", lambda: nn.MaxPool2d(2), lambda t: t.nn.MaxPool2d(2), D(2, 2, 4, 5)),
    (
        "max-pool3-stride2-pad1-batch1",
        lambda: nn.MaxPool2d(3, stride=2, padding=1),
        lambda t: t.nn.MaxPool2d(3, stride=2, padding=1),
        D(1, 2, 5, 5),
    ),
    (
        "max-pool23-stride1",
        lambda: nn.MaxPool2d((2, 3), stride=1),
        lambda t: t.nn.MaxPool2d((2, 3), stride=1),
        D(2, 1, 4, 4),
    ),
    ("avg-pool2", lambda: nn.AvgPool2d(2), lambda t: t.nn.AvgPool2d(2), N(2, 2, 4, 5)),
    (
        "avg-pool3-stride2-pad1-batch1",
        lambda: nn.AvgPool2d(3, stride=2, padding=1),
        lambda t: t.nn.AvgPool2d(3, stride=2, padding=1),
        N(1, 2, 5, 5),
    ),
    (
        "avg-pool-exclude-pad",
        lambda: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
        lambda t: t.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
        N(2, 1, 4, 3),
    ),
    ("adaptive-avg-1", lambda: nn.AdaptiveAvgPool2d(1), lambda t: t.nn.AdaptiveAvgPool2d(1), N(2, 3, 3, 4)),
    (
        "adaptive-avg-2-none-batch1",
        lambda: nn.AdaptiveAvgPool2d((2, None)),
        lambda t: t.nn.AdaptiveAvgPool2d((2, None)),
        N(1, 2, 4, 3),
    ),
    (
        "conv-pool-linear",
        lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3)),
        lambda t: t.nn.Sequential(
            t.nn.Conv2d(1, 2, 3, padding=1), t.nn.MaxPool2d(2), t.nn.Flatten(), t.nn.Linear(8, 3)
        ),
        D(2, 1, 4, 4),
    ),
]


test_layer_gradcheck, test_layer_output_stays_on_device_and_dtype, test_layer_matches_torch = layer_table_tests(LAYERS)


@pytest.mark.parametrize(
    "fn, torch_name, kwargs",
    [
        (F.max_pool2d, "max_pool2d", dict(kernel_size=2)),
        (F.max_pool2d, "max_pool2d", dict(kernel_size=3, stride=1, padding=1)),
        (F.avg_pool2d, "avg_pool2d", dict(kernel_size=(1, 2), stride=(2, 1))),
    ],
    ids=["max-2", "max-3-overlapping", "avg-1x2"],
)
def test_pool_functions_match_torch(numpy_backend, fn, torch_name, kwargs):  # noqa: F811
    torch = pytest.importorskip("torch")
    host = D(2, 2, 4, 4, seed=3)
    x, tx = make(host, requires_grad=True), torch.tensor(host, requires_grad=True)
    y, ty = fn(x, **kwargs), getattr(torch.nn.functional, torch_name)(tx, **kwargs)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12)
    weights = N(*y.shape, seed=4)
    (y * make(weights)).sum().backward()
    (ty * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_functional_conv_equals_the_layers(backend, float_dtype):
    conv2, conv1 = nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.Conv1d(2, 3, 3, dilation=2)
    x2, x1 = make(N(2, 2, 5, 5), "float32"), make(N(2, 2, 8), "float32")
    np.testing.assert_array_equal(
        F.conv2d(x2, conv2.weight, conv2.bias, stride=2, padding=1).numpy(), conv2(x2).numpy()
    )
    np.testing.assert_array_equal(F.conv1d(x1, conv1.weight, conv1.bias, dilation=2).numpy(), conv1(x1).numpy())


# -- ties in max pooling ---------------------------------------------------------------------------
def test_max_pool_tie_sends_the_gradient_to_the_first_maximum(backend, float_dtype):
    # windows of 2x2: an all-equal window, a tie on the second row, a tie across the diagonal
    host = np.array([[[[1.0, 1.0, 0.0, 2.0, 5.0, 0.0], [1.0, 1.0, 2.0, 2.0, 1.0, 5.0]]]])
    x = make(host, float_dtype, requires_grad=True)
    y = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(y.numpy(), [[[[1.0, 2.0, 5.0]]]])
    y.backward(make(np.array([[[[10.0, 20.0, 30.0]]]]), float_dtype))
    expected = [[[[10.0, 0.0, 0.0, 20.0, 30.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]]]
    np.testing.assert_array_equal(x.grad.numpy(), expected)


# one NaN per window, in each of its positions; the NaN is the window's maximum
NAN_WINDOWS = np.array([[[[math.nan, 1.0, 2.0, math.nan, 0.0, 0.0, 0.0, 9.0],
                          [3.0, 4.0, 0.0, 1.0, math.nan, 5.0, 7.0, math.nan]]]])


def test_max_pool_sends_the_gradient_to_a_nan(backend, float_dtype):
    x = make(NAN_WINDOWS, float_dtype, requires_grad=True)
    y = F.max_pool2d(x, 2)
    assert np.all(np.isnan(y.numpy()))
    y.backward(make(np.array([[[[10.0, 20.0, 30.0, 40.0]]]]), float_dtype))
    expected = [[[[10.0, 0.0, 0.0, 20.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 30.0, 0.0, 0.0, 40.0]]]]
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_max_pool_with_nan_matches_torch(numpy_backend):  # noqa: F811
    torch = pytest.importorskip("torch")
    x, tx = make(NAN_WINDOWS, requires_grad=True), torch.tensor(NAN_WINDOWS, requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    torch.nn.functional.max_pool2d(tx, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_max_pool_ties_match_torch(numpy_backend):  # noqa: F811
    torch = pytest.importorskip("torch")
    host = np.random.default_rng(2).integers(0, 3, size=(2, 2, 6, 6)).astype(np.float64)
    for kwargs in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=1)):
        x, tx = make(host, requires_grad=True), torch.tensor(host, requires_grad=True)
        F.max_pool2d(x, **kwargs).sum().backward()
        torch.nn.functional.max_pool2d(tx, **kwargs).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy(), err_msg=str(kwargs))


# -- shapes, initialisation, repr ------------------------------------------------------------------
def test_small_cnn_shapes(backend):
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    )
    for batch in (1, 3):
        assert model(gd.zeros((batch, 1, 28, 28))).shape == (batch, 10)
    assert nn.Conv2d(1, 2, 3, stride=2)(gd.zeros((1, 1, 28, 28))).shape == (1, 2, 13, 13)


def test_conv_default_init_is_pytorch_s(backend):
    conv = nn.Conv2d(16, 32, 3)  # fan_in 16 * 3 * 3 = 144
    bound = 1.0 / math.sqrt(144)  # kaiming_uniform(a=sqrt(5)) gives the same bound as the bias
    for p in (conv.weight, conv.bias):
        values = p.numpy()
        assert np.abs(values).max() <= bound and np.abs(values).max() > 0.9 * bound
    assert conv.weight.shape == (32, 16, 3, 3) and conv.bias.shape == (32,)
    w = conv.weight.numpy()
    assert w.std() == pytest.approx(bound / math.sqrt(3.0), rel=0.05)
    he = nn.Conv1d(16, 64, 5, init="he")
    assert he.weight.numpy().std() == pytest.approx(math.sqrt(2.0 / 80), rel=0.05)
    assert not he.bias.numpy().any()


def test_conv_state_dict_names_and_layouts_match_torch():
    torch = pytest.importorskip("torch")
    for ours, theirs in (
        (nn.Conv2d(3, 8, (3, 5)), torch.nn.Conv2d(3, 8, (3, 5))),
        (nn.Conv1d(3, 8, 4, bias=False), torch.nn.Conv1d(3, 8, 4, bias=False)),
    ):
        state = ours.state_dict()
        assert list(state) == list(theirs.state_dict())
        assert all(tuple(state[k].shape) == tuple(v.shape) for k, v in theirs.state_dict().items())


def test_repr():
    assert repr(nn.Conv2d(1, 32, 3, padding=1)) == "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    assert repr(nn.Conv2d(2, 4, (1, 3), stride=2, dilation=(1, 2), bias=False)) == (
        "Conv2d(2, 4, kernel_size=(1, 3), stride=(2, 2), dilation=(1, 2), bias=False)"
    )
    assert repr(nn.Conv1d(2, 4, 3, padding="same")) == "Conv1d(2, 4, kernel_size=(3,), stride=(1,), padding='same')"
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(nn.AvgPool2d(3, 1, 1)) == "AvgPool2d(kernel_size=3, stride=1, padding=1)"
    assert repr(nn.AdaptiveAvgPool2d(1)) == "AdaptiveAvgPool2d(output_size=1)"


# -- bad input -------------------------------------------------------------------------------------
def test_conv_wrong_channel_count_names_expected_and_got(backend):
    with pytest.raises(ValueError, match=r"conv2d: input has 2 channels \(shape \(1, 2, 5, 5\)\); expected 3"):
        nn.Conv2d(3, 4, 3)(gd.zeros((1, 2, 5, 5)))
    with pytest.raises(ValueError, match=r"conv1d: input has 4 channels \(shape \(2, 4, 9\)\); expected 3"):
        nn.Conv1d(3, 4, 3)(gd.zeros((2, 4, 9)))


def test_kernel_larger_than_the_padded_input(backend):
    with pytest.raises(ValueError, match=r"kernel 5x5 .* larger than the padded input 3x3"):
        nn.Conv2d(1, 1, 5)(gd.zeros((1, 1, 3, 3)))
    assert nn.Conv2d(1, 1, 5, padding=1)(gd.zeros((1, 1, 3, 3))).shape == (1, 1, 1, 1)
    with pytest.raises(ValueError, match=r"dilated extent 5x5\) is larger than the padded input 4x4"):
        nn.Conv2d(1, 1, 3, dilation=2)(gd.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"max_pool2d: kernel 3x3 .* larger than the padded input 2x2"):
        nn.MaxPool2d(3)(gd.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"conv1d: kernel 4 \(dilated extent 4\) is larger than the padded input len"):
        nn.Conv1d(1, 1, 4)(gd.zeros((1, 1, 3)))


@pytest.mark.parametrize(
    "layer, shape",
    [
        (lambda: nn.Conv2d(1, 2, 3), (1, 28, 28)),
        (lambda: nn.Conv2d(1, 2, 3), (2, 1, 1, 28, 28)),
        (lambda: nn.MaxPool2d(2), (3, 28, 28)),
        (lambda: nn.AvgPool2d(2), (28, 28)),
        (lambda: nn.AdaptiveAvgPool2d(1), (2, 3, 4)),
    ],
    ids=["conv-3d", "conv-5d", "max-pool-3d", "avg-pool-2d", "adaptive-3d"],
)
def test_non_4d_input_is_refused(backend, layer, shape):
    with pytest.raises(ValueError, match=rf"expected a 4-D input \(N, C, H, W\); got {len(shape)}-D shape"):
        layer()(gd.zeros(shape))


def test_conv1d_needs_3d_input(backend):
    with pytest.raises(ValueError, match=r"conv1d: expected a 3-D input \(N, C, L\); got 4-D"):
        nn.Conv1d(1, 1, 3)(gd.zeros((1, 1, 5, 5)))


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: nn.Conv2d(0, 2, 3), "in_channels must be a positive integer; got 0"),
        (lambda: nn.Conv2d(1, 2, 0), r"kernel_size must be an int or a pair of ints >= 1; got 0"),
        (lambda: nn.Conv2d(1, 2, 3, stride=(1, 0)), r"stride must be .* got \(1, 0\)"),
        (lambda: nn.Conv2d(1, 2, 3, padding=-1), r"padding must be .* >= 0; got -1"),
        (lambda: nn.Conv2d(1, 2, 3, padding="full"), "padding must be an int, a pair, 'valid' or 'same'"),
        (lambda: nn.Conv1d(1, 2, (3, 3)), r"kernel_size must be an int or a 1-tuple"),
    ],
    ids=["channels", "kernel", "stride", "padding", "padding-word", "conv1d-kernel"],
)
def test_conv_bad_hyperparameters(backend, build, message):
    with pytest.raises(ValueError, match=message):
        build()(gd.zeros((1, 1, 6, 6)))


def test_same_padding_needs_stride_one(backend):
    with pytest.raises(ValueError, match=r"padding='same' needs stride 1; got stride \(2, 2\)"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")(gd.zeros((1, 1, 5, 5)))


def test_pool_padding_at_most_half_the_kernel(backend):
    with pytest.raises(ValueError, match=r"padding \(2, 2\) must be at most half the kernel size \(3, 3\)"):
        nn.MaxPool2d(3, padding=2)(gd.zeros((1, 1, 6, 6)))


def test_adaptive_pool_needs_equal_windows(backend):
    with pytest.raises(ValueError, match=r"output size \(2, 2\) needs an input .* got 5x4"):
        nn.AdaptiveAvgPool2d(2)(gd.zeros((1, 1, 5, 4)))


def test_conv_weight_and_bias_shapes_are_checked(backend):
    x = gd.zeros((1, 2, 5, 5))
    with pytest.raises(ValueError, match=r"expected a 4-D weight \(out, in, kh, kw\); got shape \(3, 2, 3\)"):
        F.conv2d(x, gd.zeros((3, 2, 3)))
    with pytest.raises(ValueError, match=r"bias has shape \(2,\); expected \(3,\)"):
        F.conv2d(x, gd.zeros((3, 2, 3, 3)), gd.zeros((2,)))


def test_conv_with_weights_on_another_device_raises():
    pytest.importorskip("array_api_strict")
    conv = nn.Conv2d(1, 2, 3)  # numpy (the default backend)
    with gd.use_backend("array_api_strict", "device1"):
        x = gd.zeros((1, 1, 5, 5))
    with pytest.raises(gd.DeviceMismatchError):
        conv(x)
