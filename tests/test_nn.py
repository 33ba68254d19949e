"""Modules, layers, initialisation and the functional losses and activations."""

from __future__ import annotations

import copy
import math
from functools import partial

import numpy as np
import pytest
from conftest import make, rel_err

import gdnet as gd
from gdnet import nn
from gdnet.nn import functional as F


def N(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def A(*shape, seed=0):
    """At least 0.2 away from zero (no kink for relu / leaky_relu)."""
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 1.5, size=shape)


@pytest.fixture
def numpy_backend():
    """The PyTorch comparisons run on the numpy row only."""
    with gd.use_backend("numpy") as active:
        yield active


def params_as_inputs(module):
    """fn(x, *params) running ``module`` with the given parameter values, so gradcheck can
    bump parameters too (it passes new tensors; the module must use them)."""
    params = list(module.parameters())

    def fn(x, *values):
        saved = [p.data for p in params]
        for p, v in zip(params, values):
            p.data = v.data
        try:
            return module(x)
        finally:
            for p, d in zip(params, saved):
                p.data = d

    return fn, params


# -- layers: one row each ------------------------------------------------------------------------
LAYERS = [
    # (id, gdnet factory, torch factory, input)
    ("linear", lambda: nn.Linear(4, 3), lambda t: t.nn.Linear(4, 3), N(5, 4)),
    (
        "linear-no-bias",
        lambda: nn.Linear(4, 3, bias=False),
        lambda t: t.nn.Linear(4, 3, bias=False),
        N(5, 4),
    ),
    ("linear-3d", lambda: nn.Linear(4, 2), lambda t: t.nn.Linear(4, 2), N(2, 3, 4)),
    ("flatten", lambda: nn.Flatten(), lambda t: t.nn.Flatten(), N(2, 3, 2)),
    ("flatten-range", lambda: nn.Flatten(0, 1), lambda t: t.nn.Flatten(0, 1), N(2, 3, 2)),
    ("unflatten", lambda: nn.Unflatten(1, (2, 3)), lambda t: t.nn.Unflatten(1, (2, 3)), N(2, 6, 2)),
    ("identity", lambda: nn.Identity(), lambda t: t.nn.Identity(), N(2, 3)),
    ("relu", lambda: nn.ReLU(), lambda t: t.nn.ReLU(), A(3, 4)),
    ("leaky-relu", lambda: nn.LeakyReLU(0.1), lambda t: t.nn.LeakyReLU(0.1), A(3, 4)),
    ("sigmoid", lambda: nn.Sigmoid(), lambda t: t.nn.Sigmoid(), N(3, 4)),
    ("tanh", lambda: nn.Tanh(), lambda t: t.nn.Tanh(), N(3, 4)),
    ("softmax", lambda: nn.Softmax(), lambda t: t.nn.Softmax(dim=-1), N(3, 4)),
    ("softmax-dim0", lambda: nn.Softmax(0), lambda t: t.nn.Softmax(dim=0), N(3, 4)),
    ("log-softmax", lambda: nn.LogSoftmax(1), lambda t: t.nn.LogSoftmax(dim=1), N(3, 4)),
    (
        "sequential",
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)),
        lambda t: t.nn.Sequential(t.nn.Flatten(), t.nn.Linear(6, 5), t.nn.Tanh(), t.nn.Linear(5, 3)),
        N(4, 2, 3),
    ),
]


def _load_from_torch(model, torch_model):
    model.load_state_dict({k: v.detach().numpy() for k, v in torch_model.state_dict().items()})


def _assert_matches_torch(model, torch_model, x_host, loss=None, torch_loss=None):
    torch = pytest.importorskip("torch")
    x = make(x_host, requires_grad=True)
    tx = torch.tensor(x_host, requires_grad=True)
    y, ty = model(x), torch_model(tx)
    assert rel_err(y.numpy(), ty.detach().numpy()) < 1e-6
    if loss is None:
        weights = np.random.default_rng(5).normal(size=y.shape)
        (y * make(weights)).sum().backward()
        (ty * torch.from_numpy(weights)).sum().backward()
    else:
        out, tout = loss(y), torch_loss(ty)
        assert rel_err(out.numpy(), tout.detach().numpy()) < 1e-6
        out.backward()
        tout.backward()
    assert rel_err(x.grad.numpy(), tx.grad.numpy()) < 1e-6
    theirs = dict(torch_model.named_parameters())
    assert [name for name, _ in model.named_parameters()] == list(theirs)
    for name, p in model.named_parameters():
        assert rel_err(p.grad.numpy(), theirs[name].grad.numpy()) < 1e-6, name


def layer_table_tests(rows):
    """The three tests each row (id, gdnet factory, torch factory, host input) of a layer table
    gets: a gradient check of the input and every parameter on every backend row; output,
    gradients and buffers on the input's device and dtype; forward, gradients and buffers equal
    to the PyTorch layer's after load_state_dict with PyTorch's names."""
    parametrize = pytest.mark.parametrize(
        "make_layer, make_torch, x_host", [pytest.param(*row[1:], id=row[0]) for row in rows]
    )

    @parametrize
    def test_layer_gradcheck(backend, float_dtype, make_layer, make_torch, x_host):
        layer = make_layer().to(float_dtype)
        fn, params = params_as_inputs(layer)
        x = make(x_host, float_dtype, requires_grad=True)
        assert gd.gradcheck(fn, x, *params)

    @parametrize
    def test_layer_output_stays_on_device_and_dtype(backend, make_layer, make_torch, x_host):
        layer = make_layer()
        x = make(x_host, "float32", requires_grad=True)
        y = layer(x)
        assert y.device == x.device and y.dtype == x.dtype
        (y * y).sum().backward()  # not y.sum(): normalised outputs sum to a constant
        assert x.grad.device == x.device and x.grad.dtype == x.dtype and x.grad.shape == x.shape
        for p in layer.parameters():
            assert p.device == x.device and p.dtype == x.dtype
            assert p.grad.device == x.device and p.grad.dtype == x.dtype and p.grad.shape == p.shape
        for _, buffer in layer.named_buffers():
            assert buffer.device == x.device and not buffer.requires_grad

    @pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")  # PyTorch's own copy
    @parametrize
    def test_layer_matches_torch(numpy_backend, make_layer, make_torch, x_host):  # noqa: F811
        torch = pytest.importorskip("torch")
        torch_layer = make_torch(torch).double()
        layer = make_layer().to("float64")
        _load_from_torch(layer, torch_layer)
        _assert_matches_torch(layer, torch_layer, x_host)
        theirs = dict(torch_layer.named_buffers())
        for name, buffer in layer.named_buffers():  # running statistics after the step
            np.testing.assert_allclose(buffer.numpy(), theirs[name].numpy(), rtol=1e-12, atol=1e-15, err_msg=name)

    return test_layer_gradcheck, test_layer_output_stays_on_device_and_dtype, test_layer_matches_torch


test_layer_gradcheck, test_layer_output_stays_on_device_and_dtype, test_layer_matches_torch = layer_table_tests(LAYERS)


def test_mlp_with_cross_entropy_matches_torch(numpy_backend):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    torch_model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10)
    ).double()
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    model.to("float64")
    _load_from_torch(model, torch_model)
    rng = np.random.default_rng(1)
    images = rng.uniform(0.0, 1.0, size=(16, 28, 28))
    labels = rng.integers(0, 10, size=16)
    _assert_matches_torch(
        model,
        torch_model,
        images,
        loss=lambda y: F.cross_entropy(y, gd.tensor(labels)),
        torch_loss=lambda ty: torch.nn.functional.cross_entropy(ty, torch.from_numpy(labels)),
    )


# -- functional ------------------------------------------------------------------------------------
LABELS = np.array([0, 3, 1, 3, 2])


def _probs(seed=1):
    e = np.exp(N(5, 4, seed=seed))
    return e / e.sum(axis=1, keepdims=True)


def _gd_labels(_):
    return gd.tensor(LABELS)


def _torch_labels(torch):
    return torch.from_numpy(LABELS)


FUNCTIONAL = [
    # (id, gdnet fn(x, target), torch fn(x, target), x, target factories (gd, torch))
    ("softmax", lambda x, t: F.softmax(x), lambda x, t: x.softmax(-1), None),
    ("softmax-axis0", lambda x, t: F.softmax(x, axis=0), lambda x, t: x.softmax(0), None),
    ("log-softmax", lambda x, t: F.log_softmax(x), lambda x, t: x.log_softmax(-1), None),
    ("log-softmax-axis0", lambda x, t: F.log_softmax(x, 0), lambda x, t: x.log_softmax(0), None),
    (
        "leaky-relu",
        lambda x, t: F.leaky_relu(x, 0.2),
        lambda x, t: __import__("torch").nn.functional.leaky_relu(x, 0.2),
        None,
    ),
    (
        "leaky-relu-default",
        lambda x, t: F.leaky_relu(x),
        lambda x, t: __import__("torch").nn.functional.leaky_relu(x),
        None,
    ),
    ("relu", lambda x, t: F.relu(x), lambda x, t: x.relu(), None),
    ("sigmoid", lambda x, t: F.sigmoid(x), lambda x, t: x.sigmoid(), None),
    ("tanh", lambda x, t: F.tanh(x), lambda x, t: x.tanh(), None),
]
LOSSES = []
for reduction in ("mean", "sum", "none"):
    LOSSES += [
        (
            f"cross-entropy-labels-{reduction}",
            partial(F.cross_entropy, reduction=reduction),
            "cross_entropy",
            reduction,
            "labels",
        ),
        (
            f"cross-entropy-probs-{reduction}",
            partial(F.cross_entropy, reduction=reduction),
            "cross_entropy",
            reduction,
            "probs",
        ),
        (
            f"nll-loss-{reduction}",
            lambda x, t, r=reduction: F.nll_loss(F.log_softmax(x), t, reduction=r),
            "nll_of_log_softmax",
            reduction,
            "labels",
        ),
        (
            f"mse-loss-{reduction}",
            partial(F.mse_loss, reduction=reduction),
            "mse_loss",
            reduction,
            "values",
        ),
    ]


def _targets(kind, dtype):
    """(gdnet target, torch target factory) for a loss row."""
    if kind == "labels":
        return gd.tensor(LABELS), lambda torch: torch.from_numpy(LABELS)
    host = _probs() if kind == "probs" else N(5, 4, seed=2)
    return make(host, dtype), lambda torch: torch.from_numpy(host)


def _torch_loss(name, reduction):
    import torch.nn.functional as TF

    if name == "nll_of_log_softmax":
        return lambda x, t: TF.nll_loss(x.log_softmax(-1), t, reduction=reduction)
    return lambda x, t: getattr(TF, name)(x, t, reduction=reduction)


ACTIVATION_PARAMS = [pytest.param(*row[1:3], id=row[0]) for row in FUNCTIONAL]
LOSS_PARAMS = [pytest.param(*row[1:], id=row[0]) for row in LOSSES]


@pytest.mark.parametrize("fn, torch_fn", ACTIVATION_PARAMS)
def test_activation_gradcheck(backend, float_dtype, fn, torch_fn):
    x = make(A(3, 4), float_dtype, requires_grad=True)
    assert gd.gradcheck(lambda x: fn(x, None), x)


@pytest.mark.parametrize("fn, torch_fn", ACTIVATION_PARAMS)
def test_activation_matches_torch(numpy_backend, fn, torch_fn):
    torch = pytest.importorskip("torch")
    host = A(3, 4)
    x, tx = make(host, requires_grad=True), torch.tensor(host, requires_grad=True)
    y, ty = fn(x, None), torch_fn(tx, None)
    assert rel_err(y.numpy(), ty.detach().numpy()) < 1e-6
    weights = N(3, 4, seed=9)
    (y * make(weights)).sum().backward()
    (ty * torch.from_numpy(weights)).sum().backward()
    assert rel_err(x.grad.numpy(), tx.grad.numpy()) < 1e-6


@pytest.mark.parametrize("fn, torch_name, reduction, kind", LOSS_PARAMS)
def test_loss_gradcheck(backend, float_dtype, fn, torch_name, reduction, kind):
    x = make(N(5, 4), float_dtype, requires_grad=True)
    target, _ = _targets(kind, float_dtype)
    assert gd.gradcheck(lambda x: fn(x, target), x)


@pytest.mark.parametrize("fn, torch_name, reduction, kind", LOSS_PARAMS)
def test_loss_stays_on_device_and_dtype(backend, fn, torch_name, reduction, kind):
    x = make(N(5, 4), "float32", requires_grad=True)
    target, _ = _targets(kind, "float32")
    loss = fn(x, target)
    assert loss.device == x.device and loss.dtype == x.dtype
    assert loss.shape == (
        (5,) if reduction == "none" and torch_name != "mse_loss" else (5, 4) if reduction == "none" else ()
    )


@pytest.mark.parametrize("fn, torch_name, reduction, kind", LOSS_PARAMS)
def test_loss_matches_torch(numpy_backend, fn, torch_name, reduction, kind):
    torch = pytest.importorskip("torch")
    host = N(5, 4)
    x, tx = make(host, requires_grad=True), torch.tensor(host, requires_grad=True)
    target, torch_target = _targets(kind, "float64")
    y, ty = fn(x, target), _torch_loss(torch_name, reduction)(tx, torch_target(torch))
    assert rel_err(y.numpy(), ty.detach().numpy()) < 1e-6
    weights = N(*y.shape, seed=9)
    (y * make(weights)).sum().backward()
    (ty * torch.from_numpy(np.asarray(weights))).sum().backward()
    assert rel_err(x.grad.numpy(), tx.grad.numpy()) < 1e-6


def test_cross_entropy_probability_target_gradient_matches_torch(numpy_backend):
    torch = pytest.importorskip("torch")
    host, probs = N(5, 4), _probs()
    x, p = make(host, requires_grad=True), make(probs, requires_grad=True)
    tx, tp = torch.tensor(host, requires_grad=True), torch.tensor(probs, requires_grad=True)
    F.cross_entropy(x, p).backward()
    torch.nn.functional.cross_entropy(tx, tp).backward()
    assert rel_err(p.grad.numpy(), tp.grad.numpy()) < 1e-6
    assert gd.gradcheck(lambda x, p: F.cross_entropy(x, p, reduction="none"), x, p)


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss], ids=["cross_entropy", "nll_loss"])
def test_class_index_losses_refuse_a_python_list_of_labels_as_torch_does(backend, float_dtype, loss):
    # the tensor-argument rule of every other loss and layer (torch: "must be Tensor, not list")
    x = make(N(3, 4), float_dtype)
    with pytest.raises(TypeError, match=r"target must be a gd.Tensor or an array .* got a list .*gd.tensor"):
        loss(x, [0, 3, 1])
    labels = gd.tensor(np.array([0, 3, 1]))
    assert loss(x, labels).shape == ()  # the same labels as a Tensor are taken


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss], ids=["cross_entropy", "nll_loss"])
@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([0, 4, 1]), r"labels must lie in \[0, 3\] for 4 classes; got values from 0 to 4"),
        (np.array([0, -1, 1]), r"labels must lie in \[0, 3\] for 4 classes; got values from -1 to"),
    ],
    ids=["too-large", "negative"],
)
def test_labels_out_of_range(backend, float_dtype, loss, labels, message):
    x = make(N(3, 4), float_dtype)
    with pytest.raises(ValueError, match=message):
        loss(x, gd.tensor(labels))


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss], ids=["cross_entropy", "nll_loss"])
def test_labels_of_the_wrong_shape(backend, float_dtype, loss):
    x = make(N(3, 4), float_dtype)
    with pytest.raises(ValueError, match=r"target has shape \(3, 1\); expected \(3,\)"):
        loss(x, gd.tensor(np.array([[0], [1], [2]])))
    with pytest.raises(ValueError, match=r"target has shape \(2,\); expected \(3,\)"):
        loss(x, gd.tensor(np.array([0, 1])))


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss], ids=["cross_entropy", "nll_loss"])
def test_float_labels_are_refused(backend, float_dtype, loss):
    x = make(N(3, 4), float_dtype)
    with pytest.raises(TypeError, match="class-index target must be integers"):
        loss(x, make([0.0, 1.0, 2.0], float_dtype))


def test_probability_target_of_the_wrong_shape(backend, float_dtype):
    x = make(N(3, 4), float_dtype)
    with pytest.raises(ValueError, match=r"probability target has shape \(3, 5\); expected \(3, 4\)"):
        F.cross_entropy(x, make(np.full((3, 5), 0.2), float_dtype))


def test_losses_need_two_dimensional_scores(backend, float_dtype):
    with pytest.raises(ValueError, match=r"input must be \(N, C\) scores"):
        F.cross_entropy(make(N(4), float_dtype), gd.tensor(np.array([0, 1, 2, 3])))


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss, F.mse_loss])
def test_unknown_reduction(backend, float_dtype, loss):
    with pytest.raises(ValueError, match="unknown reduction 'avg'"):
        loss(make(N(3, 4), float_dtype), make(N(3, 4), float_dtype), reduction="avg")


def test_mse_loss_shape_mismatch(backend, float_dtype):
    with pytest.raises(ValueError, match=r"target has shape \(4, 3\); expected the input's shape \(3, 4\)"):
        F.mse_loss(make(N(3, 4), float_dtype), make(N(4, 3), float_dtype))


def test_host_labels_beside_device_scores_raise_a_device_mismatch():
    pytest.importorskip("array_api_strict")
    with gd.use_backend("array_api_strict", "device1"):
        x = make(N(3, 4), requires_grad=True)
        for loss in (F.cross_entropy, F.nll_loss):
            with pytest.raises(gd.DeviceMismatchError, match="numpy"):
                loss(x, np.array([0, 1, 2]))
        with pytest.raises(gd.DeviceMismatchError, match="numpy"):
            F.cross_entropy(x, np.full((3, 4), 0.25))


def test_accuracy(backend, float_dtype):
    scores = make([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], float_dtype)
    acc = F.accuracy(scores, gd.tensor(np.array([1, 0, 0, 0])))
    assert acc.item() == pytest.approx(0.75)
    assert acc.device == scores.device


# -- Module ----------------------------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(gd.ones((3,)).data)
        self.inner = nn.Linear(3, 2)
        self.note = "not registered"

    def forward(self, x):
        return self.inner(x * self.scale)


def test_module_registers_parameters_and_children(backend):
    block = Block()
    assert [name for name, _ in block.named_parameters()] == ["scale", "inner.weight", "inner.bias"]
    children = list(block.children())
    assert len(children) == 1 and children[0] is block.inner
    assert [name for name, _ in block.named_modules()] == ["", "inner"]
    assert block.note == "not registered"
    assert "note" not in block.state_dict()
    block.scale = None  # replacing a parameter by a plain value unregisters it
    assert [name for name, _ in block.named_parameters()] == ["inner.weight", "inner.bias"]
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        block.missing  # noqa: B018


def test_module_attributes_follow_their_registration(backend):
    block = Block()
    weight = block.inner.weight
    assert block.inner.weight is block.inner._parameters["weight"]
    block.inner.weight = nn.Linear(1, 1)  # a parameter replaced by a module
    assert "weight" not in block.inner._parameters and "weight" in block.inner._modules
    block.inner.weight = weight
    assert block.inner._parameters["weight"] is weight and "weight" not in block.inner._modules
    del block.inner.weight
    assert "weight" not in block.inner._parameters
    with pytest.raises(AttributeError, match="no attribute 'weight'"):
        block.inner.weight  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'weight'"):
        del block.inner.weight
    copied = copy.deepcopy(block)
    assert copied.inner.bias is copied.inner._parameters["bias"] and copied.inner.bias is not block.inner.bias


def test_module_without_super_init_says_so():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)

    with pytest.raises(RuntimeError, match=r"must call super\(\).__init__\(\)"):
        Broken()


def test_shared_parameters_are_listed_once(backend):
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias"]


def test_sequential_names_match_pytorch(backend):
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    names = ["1.weight", "1.bias", "3.weight", "3.bias"]
    assert [name for name, _ in model.named_parameters()] == names
    assert list(model.state_dict()) == names
    assert model.state_dict()["1.weight"].shape == (100, 784)
    torch = pytest.importorskip("torch")
    reference = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10)
    )
    assert list(reference.state_dict()) == names
    assert len(model) == 4 and isinstance(model[1], nn.Linear) and model[-1] is model[3]
    assert [type(m).__name__ for m in model] == ["Flatten", "Linear", "ReLU", "Linear"]


def test_sequential_refuses_non_modules():
    with pytest.raises(TypeError, match="argument 1 is function"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_buffers_are_in_the_state_dict(backend):
    block = Block()
    block.register_buffer("count", gd.zeros((1,)))
    assert list(block.state_dict()) == ["scale", "inner.weight", "inner.bias", "count"]
    assert block.count.shape == (1,)
    block.load_state_dict({**_host_state(block), "count": np.ones(1)})
    np.testing.assert_array_equal(block.count.numpy(), [1.0])


def _host_state(model):
    return {name: gd.Tensor(value).numpy() for name, value in model.state_dict().items()}


def test_load_state_dict_copies_host_arrays(backend):
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    source = {
        "0.weight": np.arange(6.0).reshape(2, 3),
        "0.bias": np.array([0.5, -0.5]),
        "2.weight": np.array([[1.0, 2.0]]),
        "2.bias": np.array([3.0]),
    }
    model.load_state_dict(source)
    for name, value in source.items():
        np.testing.assert_array_equal(_host_state(model)[name], value)
    for p in model.parameters():
        assert p.device == backend.device and p.dtype == backend.xp.float32
    source["0.weight"][...] = 100.0  # the model holds a copy, not the caller's array
    np.testing.assert_array_equal(_host_state(model)["0.weight"], np.arange(6.0).reshape(2, 3))


def test_load_state_dict_round_trip_between_models(backend):
    a = nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 2))
    gd.manual_seed(1)
    b = nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 2))
    b.load_state_dict(a.state_dict())
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())
        assert pa.data is not pb.data, name
    x = make(N(4, 3), "float32")
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_load_state_dict_reports_missing_and_unexpected_keys(backend):
    model = nn.Sequential(nn.Linear(3, 2))
    state = _host_state(model)
    with pytest.raises(KeyError) as info:
        model.load_state_dict({"0.weight": state["0.weight"], "extra": np.zeros(2)})
    message = str(info.value)
    assert "missing keys ['0.bias']" in message and "unexpected keys ['extra']" in message
    before = _host_state(model)["0.weight"]
    model.load_state_dict({"0.weight": np.zeros((2, 3))}, strict=False)
    np.testing.assert_array_equal(_host_state(model)["0.weight"], np.zeros((2, 3)))
    assert before.shape == (2, 3)


def test_load_state_dict_shape_mismatch_names_key_and_shapes(backend):
    model = nn.Sequential(nn.Linear(3, 2))
    original = _host_state(model)
    state = dict(original, **{"0.bias": np.zeros(3)})
    with pytest.raises(ValueError, match=r"'0.bias' has shape \(3,\); expected \(2,\)"):
        model.load_state_dict(state)
    for name, value in _host_state(model).items():  # nothing was half-loaded
        np.testing.assert_array_equal(value, original[name])


def test_load_state_dict_from_torch_tensors(backend):
    torch = pytest.importorskip("torch")
    reference = torch.nn.Linear(3, 2)
    layer = nn.Linear(3, 2)
    layer.load_state_dict({k: v.detach() for k, v in reference.state_dict().items()})
    np.testing.assert_allclose(layer.weight.numpy(), reference.weight.detach().numpy())


def test_train_and_eval_reach_every_child(backend):
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Linear(2, 1)))
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model.train(False)
    assert not any(m.training for m in model.modules())


def test_zero_grad(backend):
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    model(make(N(4, 3), "float32")).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_to_casts_floating_parameters(backend, float_dtype):
    model = nn.Sequential(nn.Linear(3, 2))
    assert all(p.dtype == backend.xp.float32 for p in model.parameters())
    model.to(float_dtype)
    assert all(p.dtype == getattr(backend.xp, float_dtype) for p in model.parameters())
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in model.parameters())


def test_repr():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.LeakyReLU(0.1), nn.Softmax(1))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Flatten()\n"
        "  (1): Linear(in_features=784, out_features=100, bias=True)\n"
        "  (2): LeakyReLU(negative_slope=0.1)\n"
        "  (3): Softmax(dim=1)\n"
        ")"
    )
    assert repr(nn.Linear(2, 3, bias=False)) == "Linear(in_features=2, out_features=3, bias=False)"
    assert repr(nn.Linear(2, 3).weight).startswith("Parameter(shape=(3, 2)")


def test_linear_wrong_number_of_features_names_expected_and_got(backend):
    layer = nn.Linear(784, 10)
    with pytest.raises(ValueError) as info:
        layer(gd.zeros((2, 28, 28)))
    message = str(info.value)
    assert "28 features" in message and "expected 784" in message


@pytest.mark.parametrize("build, message", [
    (lambda: nn.Linear(0, 3), "Linear: in_features must be a positive integer; got 0"),
    (lambda: nn.Linear(784.5, 10), "Linear: in_features must be a positive integer; got 784.5"),
    (lambda: nn.Linear(10, True), "Linear: out_features must be a positive integer; got True"),
    (lambda: nn.Conv2d(1.0, 3, 3), "Conv2d: in_channels must be a positive integer; got 1.0"),
    (lambda: nn.Conv1d(1, -2, 3), "Conv1d: out_channels must be a positive integer; got -2"),
    (lambda: nn.BatchNorm1d(3.5), "BatchNorm1d: num_features must be a positive integer; got 3.5"),
    (lambda: nn.LayerNorm((4, 2.5)), r"LayerNorm: normalized_shape\[1\] must be a positive integer; got 2.5"),
    (lambda: nn.Embedding(10.0, 4), "Embedding: num_embeddings must be a positive integer; got 10.0"),
])
def test_layers_refuse_sizes_that_are_not_positive_integers(backend, build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_base_module_forward_is_not_implemented():
    with pytest.raises(NotImplementedError, match="Module does not implement forward"):
        nn.Module()(1)


# -- initialisation --------------------------------------------------------------------------------
FAN_IN, FAN_OUT = 600, 400
INIT_STATS = [
    # (scheme, kind, scale): kind "normal" checks the std, "uniform" the bound
    ("he", "normal", math.sqrt(2.0 / FAN_IN)),
    ("kaiming", "normal", math.sqrt(2.0 / FAN_IN)),
    ("he_uniform", "uniform", math.sqrt(6.0 / FAN_IN)),
    ("xavier", "uniform", math.sqrt(6.0 / (FAN_IN + FAN_OUT))),
    ("xavier_normal", "normal", math.sqrt(2.0 / (FAN_IN + FAN_OUT))),
    ("normal", "normal", 0.01),
    ("uniform", "uniform", 0.05),
    ("default", "uniform", 1.0 / math.sqrt(FAN_IN)),
    ("zeros", "zeros", 0.0),
]


@pytest.mark.parametrize("scheme, kind, scale", INIT_STATS, ids=[row[0] for row in INIT_STATS])
def test_init_scheme_statistics(backend, scheme, kind, scale):
    layer = nn.Linear(FAN_IN, FAN_OUT, init=scheme)
    w = layer.weight.numpy().astype(np.float64)
    assert w.shape == (FAN_OUT, FAN_IN) and layer.weight.device == backend.device
    bias = layer.bias.numpy()
    if kind == "zeros":
        assert not w.any()
    elif kind == "normal":
        assert abs(w.mean()) < 0.01 * scale
        assert w.std() == pytest.approx(scale, rel=0.01)
        assert np.abs(w).max() > 3.5 * scale  # not uniform
    else:
        assert np.abs(w).max() <= scale * (1 + 1e-6)
        assert np.abs(w).max() > 0.999 * scale
        assert w.std() == pytest.approx(scale / math.sqrt(3.0), rel=0.01)
    if scheme == "default":  # PyTorch's: bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        assert 0.9 * scale < np.abs(bias).max() <= scale
    else:
        assert not bias.any()


def test_init_accepts_a_callable(backend):
    layer = nn.Linear(3, 2, init=lambda w: nn.init.constant_(w, 0.5))
    np.testing.assert_array_equal(layer.weight.numpy(), np.full((2, 3), 0.5))
    np.testing.assert_array_equal(layer.bias.numpy(), np.zeros(2))


def test_unknown_init_lists_the_choices():
    with pytest.raises(ValueError) as info:
        nn.Linear(3, 2, init="orthogonal")
    message = str(info.value)
    assert "'orthogonal'" in message
    for choice in ("default", "he", "xavier", "normal", "uniform", "zeros"):
        assert choice in message


def test_init_helpers_validate():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.fans((3,))
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        nn.init.calculate_gain("swish")
    with pytest.raises(ValueError, match="mode must be"):
        nn.init.kaiming_normal_(nn.Linear(2, 2).weight, mode="fan_avg")
    assert nn.init.fans((8, 3, 5, 5)) == (75, 200)
    assert nn.init.calculate_gain("leaky_relu", 0.0) == pytest.approx(math.sqrt(2.0))


def _weights_for_seed(seed):
    gd.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3, init="he"))
    return {name: p.numpy() for name, p in model.named_parameters()}


def test_same_seed_gives_identical_weights_on_every_backend(backend):
    here = _weights_for_seed(3)
    with gd.use_backend("numpy"):
        reference = _weights_for_seed(3)
    assert list(here) == list(reference)
    for name in here:
        np.testing.assert_array_equal(here[name], reference[name])
    other = _weights_for_seed(4)
    assert not np.array_equal(other["0.weight"], here["0.weight"])


def test_unflatten_wrong_size_names_expected_and_got(backend):
    with pytest.raises(ValueError, match=r"has size 7; expected 6"):
        nn.Unflatten(1, (2, 3))(make(np.zeros((2, 7)), "float32"))
