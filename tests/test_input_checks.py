"""Bad or foreign input at the public surface: one rule for Tensor arguments (arrays of a
backend are taken, Python lists refused naming gd.tensor), PyTorch's dtype rule where an input
meets parameters, dim or axis everywhere, brief printing, buffers that stay registered, and the
clear errors of creation functions, seeds, backends and gradcheck."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from conftest import host_normal, make

import gdnet as gd
from gdnet import nn, ops
from gdnet.nn import functional as F


def _labels():
    return gd.tensor(np.array([0, 1, 2]))


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


# (id, a function of one float32 input, its shape, "any" or "positive" values); each builds its
# layer on the active backend, so the row runs on every backend
TAKES_A_TENSOR = [
    ("Flatten", lambda: nn.Flatten(), (2, 3, 4), "any"),
    ("Unflatten", lambda: nn.Unflatten(1, (2, 2)), (3, 4), "any"),
    ("ReLU", lambda: nn.ReLU(), (3, 4), "any"),
    ("LeakyReLU", lambda: nn.LeakyReLU(0.1), (3, 4), "any"),
    ("Sigmoid", lambda: nn.Sigmoid(), (3, 4), "any"),
    ("Tanh", lambda: nn.Tanh(), (3, 4), "any"),
    ("Softmax", lambda: nn.Softmax(dim=1), (3, 4), "any"),
    ("LogSoftmax", lambda: nn.LogSoftmax(dim=1), (3, 4), "any"),
    ("ELU", lambda: nn.ELU(), (3, 4), "any"),
    ("GELU", lambda: nn.GELU(), (3, 4), "any"),
    ("SiLU", lambda: nn.SiLU(), (3, 4), "any"),
    ("Softplus", lambda: nn.Softplus(), (3, 4), "any"),
    ("Hardtanh", lambda: nn.Hardtanh(), (3, 4), "any"),
    ("Dropout", lambda: nn.Dropout(0.5).eval(), (3, 4), "any"),
    ("Linear", lambda: nn.Linear(4, 2), (3, 4), "any"),
    ("Conv1d", lambda: nn.Conv1d(2, 3, 3), (2, 2, 6), "any"),
    ("Conv2d", lambda: nn.Conv2d(2, 3, 3), (2, 2, 5, 5), "any"),
    ("MaxPool2d", lambda: nn.MaxPool2d(2), (1, 2, 4, 4), "any"),
    ("AvgPool2d", lambda: nn.AvgPool2d(2), (1, 2, 4, 4), "any"),
    ("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d(1), (1, 2, 4, 4), "any"),
    ("BatchNorm1d", lambda: nn.BatchNorm1d(4), (3, 4), "any"),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(2), (2, 2, 3, 3), "any"),
    ("LayerNorm", lambda: nn.LayerNorm(4), (3, 4), "any"),
    ("SyncBatchNorm", lambda: nn.SyncBatchNorm(4), (3, 4), "any"),  # a world of one: batch statistics as they are
    ("RNN", lambda: nn.RNN(4, 3), (5, 2, 4), "any"),
    ("LSTM", lambda: nn.LSTM(4, 3), (5, 2, 4), "any"),
    ("GRU", lambda: nn.GRU(4, 3, batch_first=True), (2, 5, 4), "any"),
    ("RNNCell", lambda: nn.RNNCell(4, 3), (2, 4), "any"),
    ("LSTMCell", lambda: nn.LSTMCell(4, 3), (2, 4), "any"),
    ("GRUCell", lambda: nn.GRUCell(4, 3), (2, 4), "any"),
    ("Sequential", lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), (2, 3, 4), "any"),
    ("NTXentLoss", lambda: (lambda x: nn.NTXentLoss()(x, x)), (4, 3), "any"),
    ("F.cross_entropy", lambda: (lambda x: F.cross_entropy(x, _labels())), (3, 4), "any"),
    ("F.nll_loss", lambda: (lambda x: F.nll_loss(x, _labels())), (3, 4), "any"),
    ("F.mse_loss", lambda: (lambda x: F.mse_loss(x, gd.zeros((3, 4)))), (3, 4), "any"),
    ("F.l1_loss", lambda: (lambda x: F.l1_loss(x, gd.zeros((3, 4)))), (3, 4), "any"),
    ("F.smooth_l1_loss", lambda: (lambda x: F.smooth_l1_loss(x, gd.zeros((3, 4)))), (3, 4), "any"),
    ("F.huber_loss", lambda: (lambda x: F.huber_loss(x, gd.zeros((3, 4)))), (3, 4), "any"),
    ("F.binary_cross_entropy", lambda: (lambda x: F.binary_cross_entropy(x, gd.ones((3, 4)))), (3, 4),
     "probability"),
    ("F.binary_cross_entropy_with_logits", lambda: (lambda x: F.binary_cross_entropy_with_logits(x, gd.ones((3, 4)))),
     (3, 4), "any"),
    ("F.kl_div", lambda: (lambda x: F.kl_div(x, gd.ones((3, 4)) * 0.25)), (3, 4), "any"),
    ("F.nt_xent", lambda: (lambda x: F.nt_xent(x, x)), (4, 3), "any"),
    ("F.info_nce", lambda: (lambda x: F.info_nce(x, x)), (4, 3), "any"),
    ("F.accuracy", lambda: (lambda x: F.accuracy(x, _labels())), (3, 4), "any"),
    ("F.normalize", lambda: F.normalize, (3, 4), "any"),
    ("F.flatten", lambda: F.flatten, (2, 3, 4), "any"),
    ("F.softmax", lambda: F.softmax, (3, 4), "any"),
    ("F.log_softmax", lambda: F.log_softmax, (3, 4), "any"),
    ("F.leaky_relu", lambda: F.leaky_relu, (3, 4), "any"),
    ("F.elu", lambda: F.elu, (3, 4), "any"),
    ("F.gelu", lambda: F.gelu, (3, 4), "any"),
    ("F.silu", lambda: F.silu, (3, 4), "any"),
    ("F.softplus", lambda: F.softplus, (3, 4), "any"),
    ("F.hardtanh", lambda: F.hardtanh, (3, 4), "any"),
    ("F.dropout", lambda: (lambda x: F.dropout(x, 0.5, training=False)), (3, 4), "any"),
    ("F.linear", lambda: (lambda x: F.linear(x, gd.ones((2, 4)))), (3, 4), "any"),
    ("F.conv1d", lambda: (lambda x: F.conv1d(x, gd.ones((3, 2, 3)))), (2, 2, 6), "any"),
    ("F.conv2d", lambda: (lambda x: F.conv2d(x, gd.ones((3, 2, 3, 3)))), (2, 2, 5, 5), "any"),
    ("F.max_pool2d", lambda: (lambda x: F.max_pool2d(x, 2)), (1, 2, 4, 4), "any"),
    ("F.avg_pool2d", lambda: (lambda x: F.avg_pool2d(x, 2)), (1, 2, 4, 4), "any"),
    ("F.adaptive_avg_pool2d", lambda: (lambda x: F.adaptive_avg_pool2d(x, 1)), (1, 2, 4, 4), "any"),
    ("F.batch_norm", lambda: (lambda x: F.batch_norm(x, None, None, training=True)), (3, 4), "any"),
    ("F.layer_norm", lambda: (lambda x: F.layer_norm(x, (4,))), (3, 4), "any"),
    ("gd.exp", lambda: gd.exp, (3, 4), "any"),
    ("gd.log", lambda: gd.log, (3, 4), "positive"),
    ("gd.sqrt", lambda: gd.sqrt, (3, 4), "positive"),
    ("gd.erf", lambda: gd.erf, (3, 4), "any"),
    ("ops.tanh", lambda: ops.tanh, (3, 4), "any"),
    ("ops.sigmoid", lambda: ops.sigmoid, (3, 4), "any"),
    ("ops.relu", lambda: ops.relu, (3, 4), "any"),
    ("ops.softplus", lambda: ops.softplus, (3, 4), "any"),
    ("ops.neg", lambda: ops.neg, (3, 4), "any"),
    ("ops.sum", lambda: (lambda x: ops.sum(x, dim=1)), (3, 4), "any"),
    ("ops.mean", lambda: ops.mean, (3, 4), "any"),
    ("ops.max", lambda: (lambda x: ops.max(x, axis=0)), (3, 4), "any"),
    ("ops.reshape", lambda: (lambda x: ops.reshape(x, (4, 3))), (3, 4), "any"),
    ("ops.permute_dims", lambda: (lambda x: ops.permute_dims(x, (1, 0))), (3, 4), "any"),
    ("ops.broadcast_to", lambda: (lambda x: ops.broadcast_to(x, (2, 3, 4))), (3, 4), "any"),
    ("gd.concat", lambda: (lambda x: gd.concat([x, x], dim=1)), (3, 4), "any"),
    ("gd.stack", lambda: (lambda x: gd.stack([x, x])), (3, 4), "any"),
    ("gd.unbind", lambda: gd.unbind, (3, 4), "any"),
    ("gd.chunk", lambda: (lambda x: gd.chunk(x, 2, dim=1)), (3, 4), "any"),
    ("gd.take", lambda: (lambda x: gd.take(x, gd.tensor(np.array([2, 0])), axis=1)), (3, 4), "any"),
    ("gd.matmul", lambda: (lambda x: gd.matmul(x, gd.ones((4, 2)))), (3, 4), "any"),
    ("gd.maximum", lambda: (lambda x: gd.maximum(x, 0.0)), (3, 4), "any"),
    ("gd.where", lambda: (lambda x: gd.where(gd.tensor(np.eye(3, 4, dtype=bool)), x, 0.0)), (3, 4), "any"),
    ("Tensor.__add__", lambda: (lambda x: gd.ones((3, 4)) + x), (3, 4), "any"),
]
# layers that take something else than a float Tensor: indices (their own list rule), or nothing
NOT_IN_TABLE = {"Embedding": "takes integer indices (a Tensor, array or list, as documented)",
                "Identity": "hands its input back untouched, as PyTorch's", "Module": "the base class"}


def _host_input(shape, kind):
    values = host_normal(*shape)
    if kind == "positive":
        values = np.abs(values) + 0.5
    elif kind == "probability":
        values = 1.0 / (1.0 + np.exp(-values))
    return values


def test_every_layer_is_in_the_table():
    layers = {name for name in nn.__all__ if isinstance(getattr(nn, name), type) and issubclass(getattr(nn, name),
                                                                                              nn.Module)}
    assert layers - set(NOT_IN_TABLE) == {row[0] for row in TAKES_A_TENSOR if "." not in row[0]}


@pytest.mark.parametrize("build, shape, kind", [pytest.param(*rest, id=i) for i, *rest in TAKES_A_TENSOR])
def test_arrays_of_the_backend_are_taken_wherever_a_tensor_is(backend, build, shape, kind):
    values = _host_input(shape, kind)
    gd.manual_seed(0)
    from_tensor = _first(build()(make(values, "float32"))).numpy()
    gd.manual_seed(0)
    from_array = _first(build()(make(values, "float32").data))
    assert isinstance(from_array, gd.Tensor)
    np.testing.assert_array_equal(from_array.numpy(), from_tensor)


@pytest.mark.parametrize("build, shape, kind", [pytest.param(*rest, id=i) for i, *rest in TAKES_A_TENSOR])
def test_python_lists_are_refused_naming_gd_tensor(backend, build, shape, kind):
    with pytest.raises(TypeError, match=r"must be a gd.Tensor or an array of the active backend; got a list "
                                        r"\(make a Tensor from Python data with gd.tensor\(...\)\)"):
        build()(_host_input(shape, kind).tolist())


def test_a_list_target_or_operand_is_refused_too(backend):
    x = make(host_normal(2, 3), "float32")
    with pytest.raises(TypeError, match="mse_loss: target must be a gd.Tensor .* got a list"):
        F.mse_loss(x, [[0.0] * 3] * 2)
    with pytest.raises(TypeError, match="operand must be a gd.Tensor .* got a list"):
        x * [1.0, 2.0, 3.0]


# -- dtypes: PyTorch's rule where an input meets parameters -------------------------------------
WITH_PARAMETERS = [
    ("Linear", lambda: nn.Linear(4, 2), (3, 4), "linear: input has dtype {got} and weight has dtype float32"),
    ("Conv1d", lambda: nn.Conv1d(2, 3, 3), (2, 2, 6), "conv1d: input has dtype {got} and weight has dtype float32"),
    ("Conv2d", lambda: nn.Conv2d(2, 3, 3), (2, 2, 5, 5),
     "conv2d: input has dtype {got} and weight has dtype float32"),
    ("BatchNorm1d", lambda: nn.BatchNorm1d(4), (3, 4),
     "batch_norm: input has dtype {got} and weight has dtype float32"),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(2), (2, 2, 3, 3),
     "batch_norm: input has dtype {got} and weight has dtype float32"),
    ("LayerNorm", lambda: nn.LayerNorm(4), (3, 4), "layer_norm: input has dtype {got} and weight has dtype float32"),
    ("SyncBatchNorm", lambda: nn.SyncBatchNorm(2), (2, 2, 3, 3),
     "batch_norm: input has dtype {got} and weight has dtype float32"),
    ("RNN", lambda: nn.RNN(4, 3), (5, 2, 4), "RNN: input has dtype {got} and (the )?weights? ha(s|ve) dtype float32"),
    ("LSTM", lambda: nn.LSTM(4, 3), (5, 2, 4),
     "LSTM: input has dtype {got} and (the )?weights? ha(s|ve) dtype float32"),
    ("GRU", lambda: nn.GRU(4, 3), (5, 2, 4), "GRU: input has dtype {got} and (the )?weights? ha(s|ve) dtype float32"),
    ("RNNCell", lambda: nn.RNNCell(4, 3), (2, 4),
     "RNNCell: input has dtype {got} and (the )?weights? ha(s|ve) dtype float32"),
    ("LSTMCell", lambda: nn.LSTMCell(4, 3), (2, 4),
     "LSTMCell: input has dtype {got} and (the )?weights? ha(s|ve) dtype float32"),
    ("GRUCell", lambda: nn.GRUCell(4, 3), (2, 4),
     "GRUCell: input has dtype {got} and (the )?weights? ha(s|ve) dtype float32"),
    ("Sequential", lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), (2, 3, 4),
     "linear: input has dtype {got} and weight has dtype float32"),
]


def test_every_layer_with_parameters_has_a_dtype_row():
    with gd.use_backend("numpy"):
        built = {name: build() for name, build, _, _ in TAKES_A_TENSOR if "." not in name}
    weighted = {name for name, layer in built.items() if isinstance(layer, nn.Module) and list(layer.parameters())}
    assert weighted - {row[0] for row in WITH_PARAMETERS} == set()


@pytest.mark.parametrize("build, shape, message", [pytest.param(*rest, id=i) for i, *rest in WITH_PARAMETERS])
def test_an_integer_input_to_a_float_layer_is_refused_naming_both_dtypes(backend, build, shape, message):
    x = gd.tensor(np.ones(shape, dtype=np.int64))
    with pytest.raises(TypeError, match=message.format(got="int64")):
        build()(x)


@pytest.mark.parametrize("build, shape, message", [pytest.param(*rest, id=i) for i, *rest in WITH_PARAMETERS])
def test_a_float64_input_to_a_float32_model_is_refused_naming_both_dtypes(backend, float_dtype, build, shape,
                                                                          message):
    if float_dtype != "float64":
        pytest.skip("this device has no float64")
    x = make(host_normal(*shape), "float64")
    layer = build()
    with pytest.raises(TypeError, match=message.format(got="float64")):
        layer(x)
    assert _first(layer.to("float64")(x)).dtype == backend.xp.float64  # the fix the message names


def test_the_dtype_errors_say_how_to_convert(backend, float_dtype):
    layer = nn.Linear(4, 2)
    with pytest.raises(TypeError, match=re.escape("convert the input with x.astype('float32')") + "$"):
        layer(gd.tensor(np.ones((3, 4), dtype=np.int64)))
    if float_dtype == "float64":
        with pytest.raises(TypeError, match=re.escape("x.astype('float32'), or the model with model.to('float64')")):
            layer(make(np.ones((3, 4)), "float64"))
        with pytest.raises(TypeError, match="matmul: operands have dtypes float32 and float64; expected one dtype"):
            gd.matmul(gd.ones((2, 2)), make(np.ones((2, 2)), "float64"))


def test_linear_of_a_0d_input_says_what_it_expects(backend):
    with pytest.raises(ValueError, match=r"linear: input is 0-d \(a single number\); expected at least 1-D \(..., 1\)"):
        nn.Linear(1, 3)(gd.tensor(1.0))
    assert nn.Flatten(0)(gd.tensor(1.0)).shape == (1,)  # PyTorch's flatten of a 0-d tensor


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
def test_swapped_loss_arguments_are_named(backend, loss):
    scores, labels = make(host_normal(3, 4), "float32"), _labels()
    with pytest.raises(TypeError, match=rf"{loss.__name__}: input must be floating-point scores \(N, C\); got int64 of "
                                        r"shape \(3,\); the arguments look swapped"):
        loss(labels, scores)


# -- dim or axis, keepdim or keepdims ------------------------------------------------------------
def _x():
    return make(host_normal(3, 4), "float32")


# (id, call with dim, call with axis, call with both)
SPELLINGS = [
    ("Tensor.sum", lambda x: x.sum(dim=1, keepdim=True), lambda x: x.sum(axis=1, keepdims=True),
     lambda x: x.sum(dim=1, axis=1)),
    ("Tensor.mean", lambda x: x.mean(dim=0), lambda x: x.mean(axis=0), lambda x: x.mean(0, dim=0)),
    ("Tensor.max", lambda x: x.max(dim=1).values, lambda x: x.max(axis=1), lambda x: x.max(axis=1, dim=1)),
    ("Tensor.argmax", lambda x: x.argmax(dim=0), lambda x: x.argmax(axis=0), lambda x: x.argmax(0, dim=0)),
    ("ops.sum-keepdim", lambda x: ops.sum(x, 1, keepdim=True), lambda x: ops.sum(x, 1, keepdims=True),
     lambda x: ops.sum(x, 1, keepdims=True, keepdim=True)),
    ("gd.concat", lambda x: gd.concat([x, x], dim=1), lambda x: gd.concat([x, x], axis=1),
     lambda x: gd.concat([x, x], 1, dim=1)),
    ("gd.stack", lambda x: gd.stack([x, x], dim=2), lambda x: gd.stack([x, x], axis=2),
     lambda x: gd.stack([x, x], axis=2, dim=2)),
    ("gd.unbind", lambda x: gd.unbind(x, dim=1)[2], lambda x: gd.unbind(x, axis=1)[2],
     lambda x: gd.unbind(x, 1, dim=1)),
    ("gd.chunk", lambda x: gd.chunk(x, 2, dim=1)[1], lambda x: gd.chunk(x, 2, axis=1)[1],
     lambda x: gd.chunk(x, 2, 1, dim=1)),
    ("gd.take", lambda x: gd.take(x, gd.tensor(np.array([1])), dim=1),
     lambda x: gd.take(x, gd.tensor(np.array([1])), axis=1), lambda x: gd.take(x, gd.tensor(np.array([1])), 1, dim=1)),
    ("F.softmax", lambda x: F.softmax(x, dim=0), lambda x: F.softmax(x, axis=0), lambda x: F.softmax(x, 0, dim=0)),
    ("F.log_softmax", lambda x: F.log_softmax(x, dim=0), lambda x: F.log_softmax(x, axis=0),
     lambda x: F.log_softmax(x, axis=0, dim=0)),
    ("F.normalize", lambda x: F.normalize(x, dim=0), lambda x: F.normalize(x, axis=0),
     lambda x: F.normalize(x, dim=0, axis=0)),
    ("nn.Softmax", lambda x: nn.Softmax(dim=0)(x), lambda x: nn.Softmax(axis=0)(x), lambda x: nn.Softmax(0, axis=0)),
    ("nn.LogSoftmax", lambda x: nn.LogSoftmax(dim=0)(x), lambda x: nn.LogSoftmax(axis=0)(x),
     lambda x: nn.LogSoftmax(0, axis=0)),
    ("nn.Unflatten", lambda x: nn.Unflatten(dim=1, sizes=(2, 2))(x), lambda x: nn.Unflatten(axis=1, sizes=(2, 2))(x),
     lambda x: nn.Unflatten(1, (2, 2), axis=1)),
]


@pytest.mark.parametrize("with_dim, with_axis, with_both", [pytest.param(*rest, id=i) for i, *rest in SPELLINGS])
def test_dim_and_axis_are_one_argument(backend, with_dim, with_axis, with_both):
    x = _x()
    np.testing.assert_array_equal(with_dim(x).numpy(), with_axis(x).numpy())
    with pytest.raises(TypeError, match="got both .* they are two spellings of one argument: pass only one"):
        with_both(x)


def test_dim_reduces_the_axis_it_names(backend):
    x = _x()
    assert x.sum(dim=1).shape == (3,) and x.sum(dim=1, keepdim=True).shape == (3, 1)
    np.testing.assert_allclose(F.softmax(x, dim=1).numpy().sum(axis=1), 1.0, rtol=1e-6)


def test_max_with_dim_gives_values_and_indices_as_pytorch(backend):
    x = _x()
    values, indices = x.max(dim=1)
    np.testing.assert_array_equal(values.numpy(), host_normal(3, 4).astype(np.float32).max(axis=1))
    np.testing.assert_array_equal(indices.numpy(), host_normal(3, 4).argmax(axis=1))
    kept = x.max(dim=0, keepdim=True)
    assert kept.values.shape == (1, 4) and kept.indices.shape == (1, 4)
    assert x.max(axis=1).shape == (3,) and x.max().shape == ()  # the array API's spelling: values only


# -- printing ------------------------------------------------------------------------------------
def _device_part(backend) -> str:
    """What a tensor's repr says of the device: nothing for host memory."""
    name = str(backend.device).split("'")[1] if "'" in str(backend.device) else str(backend.device)
    return "" if name in ("cpu", "CPU_DEVICE") else f", device={name}"


def test_a_loss_prints_as_pytorch_prints_it(backend):
    device = _device_part(backend)
    assert repr(gd.tensor(0.465, requires_grad=True)) == f"tensor(0.4650{device}, requires_grad=True)"


def test_tensors_print_briefly(backend, float_dtype):
    device = _device_part(backend)
    assert repr(gd.tensor([1, 2])) == f"tensor([1, 2]{device})"
    big = repr(gd.randn(300, 400, requires_grad=True))
    assert len(big) < 800 and big.endswith(f", shape=(300, 400){device}, requires_grad=True)") and "..." in big
    if float_dtype == "float64":
        assert repr(gd.tensor([0.5], dtype="float64")) == f"tensor([0.5000], dtype=float64{device})"
    loss = F.mse_loss(make([[1.0, 2.0]], "float32", requires_grad=True), gd.zeros((1, 2)))
    assert repr(loss) == f"tensor(2.5000{device}, requires_grad=True)"


def test_a_tensor_without_values_prints_its_facts():
    pytest.importorskip("torch")
    with gd.use_backend("torch", "meta"):  # arrays that hold no values: nothing to read
        assert repr(gd.zeros((2, 3), requires_grad=True)) == (
            "tensor(..., shape=(2, 3), device=meta, requires_grad=True)")


# -- modules: buffers, parameters, load_state_dict -----------------------------------------------
class _Running(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(gd.ones((3,)).data)
        self.register_buffer("running_mean", gd.ones((3,)))

    def forward(self, x):
        self.running_mean = self.running_mean * 0.9 + x.mean(dim=0).detach() * 0.1
        return x * self.weight


def test_assigning_to_a_buffer_keeps_it_registered(backend):
    module = _Running()
    module(make(host_normal(4, 3), "float32"))
    assert list(module.state_dict()) == ["weight", "running_mean"]
    assert "running_mean" not in module.__dict__ and module.running_mean is module._buffers["running_mean"]
    module.running_mean = gd.zeros((3,)).data  # an array of the backend is wrapped
    np.testing.assert_array_equal(gd.Tensor(module.state_dict()["running_mean"]).numpy(), np.zeros(3))
    module.running_mean = None
    assert list(module.state_dict()) == ["weight"] and "running_mean" in module._buffers
    with pytest.raises(TypeError, match="buffer 'running_mean' must be a gd.Tensor .* got a list"):
        module.running_mean = [0.0, 0.0, 0.0]


def test_a_parameter_name_takes_only_a_parameter_or_none(backend):
    module = _Running()
    with pytest.raises(TypeError, match=r"cannot assign a Tensor to the parameter 'weight'; expected a "
                                        r"gd.nn.Parameter or None"):
        module.weight = gd.ones((3,))
    module.weight = None
    assert "weight" in module._parameters and module.weight is None and list(module.parameters()) == []
    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="cannot assign a int to the child module '0'; expected a gd.nn.Module"):
        setattr(model, "0", 3)


def test_load_state_dict_returns_missing_and_unexpected_keys(backend):
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    state = {k: v for k, v in model.state_dict().items() if k != "2.bias"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = model.load_state_dict({**state, "extra": np.zeros(2)}, strict=False)
    assert result == (["2.bias"], ["extra"])
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == ["extra"]
    assert model.load_state_dict(model.state_dict()) == ([], [])


def test_load_state_dict_that_matches_nothing_warns(backend):
    model = nn.Linear(2, 3)
    before = model.weight.numpy()
    prefixed = {f"module.{k}": v for k, v in model.state_dict().items()}
    with pytest.warns(UserWarning, match=r"loaded nothing into Linear: none of its 2 keys \['weight', 'bias'\] is in "
                                         r"the state, whose keys are \['module.weight', 'module.bias'\]"):
        result = model.load_state_dict(prefixed, strict=False)
    assert result.missing_keys == ["weight", "bias"] and result.unexpected_keys == ["module.weight", "module.bias"]
    np.testing.assert_array_equal(model.weight.numpy(), before)


# -- creation, seeds, backends --------------------------------------------------------------------
@pytest.mark.parametrize("make_it, error, message", [
    (lambda: gd.tensor(["a", "b"]), TypeError, r"gd.tensor: data must be numbers or booleans; got an array of dtype "
                                               r"str32 \(for example 'a'\)"),
    (lambda: gd.tensor(np.array([object()])), TypeError, "data must be numbers or booleans; got an array of dtype"),
    (lambda: gd.randn(-1), ValueError, r"gd.randn: shape must be non-negative integers; got \(-1,\)"),
    (lambda: gd.rand(2, -3), ValueError, r"gd.rand: shape must be non-negative integers; got \(2, -3\)"),
    (lambda: gd.randn(2.5), ValueError, r"gd.randn: shape must be non-negative integers; got \(2.5,\)"),
    (lambda: gd.zeros((2, 1.5)), ValueError, r"gd.zeros: shape must be non-negative integers; got \(2, 1.5\)"),
    (lambda: gd.ones(None), TypeError, "gd.ones: shape must be a sequence of non-negative integers; got None"),
    (lambda: gd.tensor([1, 2], requires_grad=True), TypeError,
     "gd.tensor: only floating-point tensors can require gradients; got dtype int64"),
    (lambda: gd.zeros((2,), dtype="int64", requires_grad=True), TypeError, "gd.zeros: only floating-point tensors"),
    (lambda: gd.tensor([1, 2]).requires_grad_(), TypeError, "requires_grad_: only floating-point tensors"),
    (lambda: gd.set_backend(None), TypeError, "backend name must be a string: 'auto' or one of numpy, .*; got None"),
    (lambda: gd.manual_seed(-1), ValueError, "manual_seed: seed must be a non-negative integer; got -1"),
    (lambda: gd.manual_seed("abc"), TypeError, "manual_seed: seed must be a non-negative integer; got 'abc'"),
    (lambda: gd.manual_seed(1.5), TypeError, "manual_seed: seed must be a non-negative integer; got 1.5"),
    (lambda: gd.manual_seed(True), TypeError, "manual_seed: seed must be a non-negative integer; got True"),
], ids=["strings", "objects", "randn-negative", "rand-negative", "randn-float", "zeros-float", "ones-none",
        "int-requires-grad", "zeros-int-requires-grad", "requires-grad-int", "set-backend-none", "seed-negative",
        "seed-text", "seed-float", "seed-bool"])
def test_creation_seeds_and_backends_refuse_bad_values(backend, make_it, error, message):
    with pytest.raises(error, match=message):
        make_it()


# settings of layers, losses and initialisers that NaN, inf or a wrong sign would slip past
BAD_SETTINGS = [
    ("leaky-relu", lambda x: nn.LeakyReLU(math.nan), "LeakyReLU: negative_slope must be a finite number; got nan"),
    ("leaky-relu-f", lambda x: F.leaky_relu(x, math.inf), "leaky_relu: negative_slope must be a finite number"),
    ("elu", lambda x: nn.ELU(math.inf), "ELU: alpha must be a finite number; got inf"),
    ("softplus", lambda x: nn.Softplus(beta=math.nan), "Softplus: beta must be a finite number; got nan"),
    ("hardtanh", lambda x: F.hardtanh(x, math.nan), "hardtanh: min_val must be a finite number; got nan"),
    ("smooth-l1", lambda x: F.smooth_l1_loss(x, x, beta=math.nan), "beta must be non-negative and finite; got nan"),
    ("huber", lambda x: F.huber_loss(x, x, delta=math.inf), "delta must be positive and finite; got inf"),
    ("nt-xent", lambda x: F.nt_xent(x, x, temperature=math.nan), "nt_xent: temperature must be positive and finite"),
    ("info-nce", lambda x: F.info_nce(x, x, temperature=math.inf), "info_nce: temperature must be positive and"),
    ("ntxent-loss", lambda x: nn.NTXentLoss(math.nan), "NTXentLoss: temperature must be positive and finite"),
    ("normalize-p", lambda x: F.normalize(x, p=0.0), "normalize: p must be positive .*; got p=0.0"),
    ("normalize-eps", lambda x: F.normalize(x, eps=math.nan), "eps non-negative and finite; got p=2.0, eps=nan"),
    ("batchnorm-eps", lambda x: nn.BatchNorm1d(3, eps=-1e-5), r"Invalid eps: -1e-05 \(expected a finite number >= 0\)"),
    ("layernorm-eps", lambda x: nn.LayerNorm(3, eps=math.nan), "Invalid eps: nan"),
    ("embedding-padding", lambda x: nn.Embedding(5, 2, padding_idx=2.5), "padding_idx must be an int or None"),
    ("init-normal", lambda x: nn.init.normal_(nn.Linear(2, 2).weight, std=-1.0), "Invalid std: -1.0"),
    ("init-uniform", lambda x: nn.init.uniform_(nn.Linear(2, 2).weight, 1.0, -1.0),
     r"uniform_: a \(1.0\) must not be greater than b \(-1.0\)"),
    ("init-uniform-nan", lambda x: nn.init.uniform_(nn.Linear(2, 2).weight, math.nan, 1.0), "Invalid a: nan"),
    ("to-dtype", lambda x: nn.Linear(2, 2).to("float99"), "unknown dtype 'float99'"),
]


@pytest.mark.parametrize("build, message", [pytest.param(*rest, id=i) for i, *rest in BAD_SETTINGS])
def test_layer_loss_and_init_settings_refuse_nan_inf_and_wrong_signs(backend, build, message):
    with pytest.raises(ValueError, match=message):
        build(make(host_normal(4, 3), "float32"))


def test_penalties_take_a_model(backend):
    with pytest.raises(TypeError, match="weight penalties take a Module .*; got list"):
        nn.l2_penalty([nn.Linear(2, 2).weight])


def test_normalize_takes_the_inf_norm(backend):
    x = make(host_normal(3, 4), "float32")
    expected = host_normal(3, 4) / np.abs(host_normal(3, 4)).max(axis=1, keepdims=True)
    np.testing.assert_allclose(F.normalize(x, p=math.inf).numpy(), expected, rtol=1e-6)


def test_a_list_of_tensors_is_pointed_to_stack(backend):
    with pytest.raises(TypeError, match=r"dtype object .*; to join Tensors, use gd.stack\(tensors\)"):
        gd.tensor([gd.tensor(1.0), gd.tensor(2.0)])


def test_shapes_and_seeds_that_are_fine(backend):
    assert gd.zeros(3).shape == (3,) and gd.randn(0, 2).shape == (0, 2) and gd.ones([2, 1]).shape == (2, 1)
    gd.manual_seed(np.int64(7))
    first = gd.randn(3).numpy()
    gd.manual_seed(7)
    np.testing.assert_array_equal(gd.randn(3).numpy(), first)


# -- gradcheck ----------------------------------------------------------------------------------
def test_gradcheck_refuses_what_it_cannot_check(backend, float_dtype):
    x = make([1.0, 2.0], float_dtype, requires_grad=True)
    with pytest.raises(TypeError, match="gradcheck: fn must be a function of the inputs returning a Tensor; got int"):
        gd.gradcheck(3, x)
    with pytest.raises(TypeError, match="gradcheck: fn must return a Tensor; it returned a float"):
        gd.gradcheck(lambda t: 3.0, x)
    integers = gd.Tensor(gd.tensor([1, 2]).data, requires_grad=True)
    with pytest.raises(TypeError, match="gradcheck: input 1 has dtype int64; expected a floating dtype"):
        gd.gradcheck(lambda a, b: a * b, x, integers)


def test_gradcheck_warns_that_float32_needs_float64(backend, float_dtype):
    def wrong_by_one_percent(x):
        class Scaled(gd.autograd.Function):
            def forward(self, xp, a):
                return a * 2.0

            def backward(self, g):
                return (g * 2.02,)

        return Scaled()(x)

    x = make([1.0, 2.0, 3.0], "float32", requires_grad=True)
    if float_dtype == "float32":  # no float64 here: float32 is the best there is, so no warning
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            gd.gradcheck(lambda t: t * t, x)
        return
    with pytest.warns(UserWarning, match=r"gradcheck: input 0 is float32; .* check in float64 \(dtype='float64'\)"):
        assert gd.gradcheck(wrong_by_one_percent, x)  # float32's tolerance lets the 1% error through
    with pytest.raises(gd.GradcheckError):
        gd.gradcheck(wrong_by_one_percent, make([1.0, 2.0, 3.0], "float64", requires_grad=True))


# -- training: metrics where they apply ------------------------------------------------------------
def _regression_loader(n=32):
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(n, 3)).astype(np.float32)
    targets = (inputs @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)).astype(np.float32)
    return gd.data.DataLoader((inputs, targets), batch_size=8)


def test_fit_of_a_regression_logs_no_accuracy(backend):
    model = nn.Linear(3, 1)
    history = gd.train.fit(model, F.mse_loss, gd.optim.SGD(model.parameters(), lr=0.05), _regression_loader(), 2,
                           val_loader=_regression_loader(), verbose=0)
    assert list(history)[-1].keys() >= {"loss", "val_loss"}
    assert not [key for key in list(history)[-1] if "accuracy" in key]
    with pytest.raises(ValueError, match=r"accuracy applies to \(N, C\) class scores and \(N,\) integer class labels; "
                                         r"got scores of shape \(8, 1\) and float32 labels of shape \(8, 1\)"):
        gd.train.fit(model, F.mse_loss, gd.optim.SGD(model.parameters(), lr=0.05), _regression_loader(), 1,
                     metrics=("accuracy",), verbose=0)


def test_fit_of_a_classifier_logs_accuracy(backend):
    rng = np.random.default_rng(1)
    inputs, labels = rng.normal(size=(24, 4)).astype(np.float32), rng.integers(0, 3, size=24)
    model = nn.Linear(4, 3)
    loader = gd.data.DataLoader((inputs, labels), batch_size=8)
    history = gd.train.fit(model, F.cross_entropy, gd.optim.SGD(model.parameters(), lr=0.1), loader, 1, verbose=0)
    assert 0.0 <= list(history)[-1]["accuracy"] <= 1.0
    batches = [(make(inputs[:8], "float32"), gd.tensor(labels[:8]))]  # a loader without a dataset: by the loss
    history = gd.train.fit(model, F.cross_entropy, gd.optim.SGD(model.parameters(), lr=0.1), batches, 1, verbose=0)
    assert "accuracy" in list(history)[-1]


# -- checkpoints --------------------------------------------------------------------------------
def test_save_refuses_arguments_in_the_wrong_place(backend, tmp_path):
    model = nn.Linear(2, 2)
    opt = gd.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "model.safetensors"
    order = re.escape("save(path, model, optimizer=None, scheduler=None, loader=None): ")
    with pytest.raises(TypeError, match=order + "the optimizer is a Linear; expected a gdnet Optimizer"):
        gd.save(path, model, model)
    with pytest.raises(TypeError, match=order + "the scheduler is a SGD; expected a gdnet LRScheduler"):
        gd.save(path, model, opt, opt)
    with pytest.raises(TypeError, match=order + "the model is a SGD; expected a gdnet Module"):
        gd.save(path, opt, model)
    assert not path.exists()


def test_load_refuses_a_text_mode_file(backend, tmp_path):
    path = tmp_path / "model.safetensors"
    gd.save(path, nn.Linear(2, 2))
    with open(path) as text, pytest.raises(TypeError, match=r"is open in text mode; a checkpoint is binary: open it "
                                                            r"with open\(path, 'rb'\)"):
        gd.load(text)
    with open(path, "rb") as binary:
        assert list(gd.load(binary).model_state) == ["weight", "bias"]


def test_weights_that_are_not_finite_load_with_a_warning(backend, tmp_path):
    model = nn.Linear(2, 2)
    model.weight.data = model.weight.data * math.nan
    path = tmp_path / "diverged.safetensors"
    gd.save(path, model)
    with pytest.warns(RuntimeWarning, match=r"the weights hold NaN or inf values: 'weight' \(4 of 4\); the run that "
                                            r"saved them had diverged"):
        checkpoint = gd.load(path)
    assert np.isnan(checkpoint.model_state["weight"]).all()
    fresh = nn.Linear(2, 2)
    with pytest.warns(RuntimeWarning, match="NaN or inf"):
        gd.load_into(path, fresh)
    assert np.isnan(fresh.weight.numpy()).all()


def test_a_checkpoint_prints_a_summary(backend, tmp_path):
    model = nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    opt = gd.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path / "run.safetensors"
    gd.save(path, model, opt, epoch=3, hidden=[100], notes="x" * 500, table=np.zeros((50, 50)))
    text = repr(gd.load(path))
    assert len(text) < 600, text
    for part in ("model_state=4 tensors, 79,510 values (float32)", "epoch=3", "optimizer=SGD", "scheduler=None",
                 "'table': <array float64 (50, 50)>", "'hidden': [100]"):
        assert part in text, (part, text)
