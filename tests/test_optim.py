"""Optimizers: PyTorch's updates step for step (one table row per optimizer and setting), descent
on a quadratic and Rosenbrock, state round trips, validation, fast paths and their dispatch."""

from __future__ import annotations

import contextlib
import functools
import inspect

import numpy as np
import pytest
from conftest import make, reads_refused

import gdnet as gd
from gdnet import optim
from gdnet.autograd import namespace_of
from gdnet.optim import SGD, Optimizer
from gdnet.optim.adam import scale_by_adam
from gdnet.optim.transform import (
    Transform,
    add_decayed_weights,
    chain,
    no_state,
    scale_by_learning_rate,
    trace,
)

STEPS = 100
SHAPES = {"weight": (3, 4), "bias": (3,)}
TWO = [(["weight"], {}), (["bias"], {})]


def _initial(seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=shape) for name, shape in SHAPES.items()}


@functools.cache
def _gradients(step):
    """The same host gradients for every run: step k gets its own draw."""
    rng = np.random.default_rng(1000 + step)
    return {name: rng.normal(size=shape) for name, shape in SHAPES.items()}


def _param_groups(params, groups):
    """``groups`` None: one list of parameters; else a list of (names, hyperparameters)."""
    if groups is None:
        return list(params.values())
    return [{"params": [params[n] for n in names], **extra} for names, extra in groups]


# (id, optimizer, keyword arguments, parameter groups or None); torch.optim has the same names
ROWS = [
    ("sgd-default", "SGD", {}, None),
    ("sgd-weight-decay", "SGD", dict(lr=0.1, weight_decay=0.01), None),
    ("sgd-dampening", "SGD", dict(lr=0.05, momentum=0.9, dampening=0.3), None),
    ("sgd-momentum-weight-decay", "SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.05), None),
    ("sgd-nesterov-weight-decay", "SGD", dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.1), None),
    ("sgd-two-groups", "SGD", dict(lr=0.01, momentum=0.9), [(["weight"], {"lr": 0.1}), (["bias"], {})]),
    ("sgd-two-groups-own-momentum", "SGD", dict(lr=0.01),
     [(["weight"], {"lr": 0.2, "momentum": 0.5}), (["bias"], {"weight_decay": 0.1})]),
    ("adagrad-default", "Adagrad", {}, None),
    ("adagrad-custom", "Adagrad",
     dict(lr=0.05, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.2, eps=1e-6), None),
    ("adagrad-two-groups", "Adagrad", dict(lr=0.05),
     [(["weight"], {"lr_decay": 0.05}), (["bias"], {"lr": 0.2, "eps": 1e-3})]),
    ("rmsprop-default", "RMSprop", {}, None),
    ("rmsprop-custom", "RMSprop",
     dict(lr=0.005, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.9, centered=True), None),
    ("rmsprop-two-groups", "RMSprop", dict(lr=0.005),
     [(["weight"], {"centered": True}), (["bias"], {"momentum": 0.5, "alpha": 0.95})]),
    ("adadelta-default", "Adadelta", {}, None),
    ("adadelta-custom", "Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1), None),
    ("adadelta-two-groups", "Adadelta", {},
     [(["weight"], {"rho": 0.95}), (["bias"], {"lr": 2.0, "weight_decay": 0.05})]),
    ("adam-default", "Adam", {}, None),
    ("adam-custom", "Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True), None),
    ("adam-decoupled", "Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True), None),
    ("adam-two-groups", "Adam", dict(lr=0.01),
     [(["weight"], {"amsgrad": True, "betas": (0.5, 0.9)}), (["bias"], {"lr": 0.05, "weight_decay": 0.2})]),
    ("adamw-default", "AdamW", {}, None),
    ("adamw-custom", "AdamW", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.2, amsgrad=True), None),
    ("adamw-two-groups", "AdamW", dict(lr=0.01),
     [(["weight"], {"weight_decay": 0.0}), (["bias"], {"lr": 0.05, "amsgrad": True})]),
    ("nadam-default", "NAdam", {}, None),
    ("nadam-custom", "NAdam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, momentum_decay=0.01), None),
    ("nadam-decoupled", "NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True), None),
    ("nadam-two-groups", "NAdam", dict(lr=0.01),
     [(["weight"], {"momentum_decay": 0.02}), (["bias"], {"lr": 0.05, "betas": (0.7, 0.9)})]),
    ("adamax-default", "Adamax", {}, None),
    ("adamax-custom", "Adamax", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), None),
    ("adamax-two-groups", "Adamax", dict(lr=0.01),
     [(["weight"], {"betas": (0.5, 0.9)}), (["bias"], {"lr": 0.05, "weight_decay": 0.2})]),
    ("radam-default", "RAdam", {}, None),
    ("radam-custom", "RAdam", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1), None),
    ("radam-decoupled", "RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True), None),
    ("radam-two-groups", "RAdam", dict(lr=0.01),
     [(["weight"], {"betas": (0.8, 0.9)}), (["bias"], {"lr": 0.05, "weight_decay": 0.2})]),
]
ROW = {row_id: (name, kwargs, groups) for row_id, name, kwargs, groups in ROWS}
OPTIMIZERS = sorted({name for _, name, _, _ in ROWS})


def hyperparameters(cls) -> list[str]:
    """The settings an optimizer's constructor takes, but its on/off switches (nesterov, amsgrad)."""
    return [p.name for p in inspect.signature(cls).parameters.values()
            if p.name != "params" and not isinstance(p.default, bool)]


def test_every_exported_optimizer_has_rows():
    """CONTRIBUTING's recipe, checked: every optimizer gdnet.optim exports has a -default row, a
    row with two parameter groups, an entry in DESCENT, and every setting it takes is refused
    in some BAD row (the links that share a setting share its check)."""
    exported = {cls.__name__: cls for cls in optim.optimizers().values()}
    assert set(exported) == {name for _, name, _, _ in ROWS}
    refused = {key for _, kwargs, _, _ in BAD for key in kwargs}
    for name, cls in exported.items():
        ids = [row_id for row_id, row_name, _, groups in ROWS if row_name == name]
        assert any(i.endswith("-default") for i in ids), name
        assert any(g is not None and len(g) == 2 for _, n, _, g in ROWS if n == name), name
        assert name in DESCENT and name in ROSENBROCK, name
        assert set(hyperparameters(cls)) <= refused, (name, set(hyperparameters(cls)) - refused)


def _run_gdnet(name, kwargs, groups, dtype, steps=STEPS, start=0, params=None, state=None, opt=None):
    if params is None:
        params = {n: make(v, dtype, requires_grad=True) for n, v in _initial().items()}
    if opt is None:
        opt = getattr(optim, name)(_param_groups(params, groups), **kwargs)
    if state is not None:
        opt.load_state_dict(state)
    for step in range(start, start + steps):
        for n, grad in _gradients(step).items():
            params[n].grad = make(grad, dtype)
        opt.step()
    return params, opt


@functools.cache
def _run_torch(row, dtype):
    """torch.optim's parameters and state (host arrays) after STEPS steps; cached per row."""
    torch = pytest.importorskip("torch")
    name, kwargs, groups = ROW[row]
    to_torch = getattr(torch, dtype)
    params = {n: torch.tensor(v, dtype=to_torch, requires_grad=True) for n, v in _initial().items()}
    opt = getattr(torch.optim, name)(_param_groups(params, groups), **kwargs)
    for step in range(STEPS):
        for n, grad in _gradients(step).items():
            params[n].grad = torch.tensor(grad, dtype=to_torch)
        opt.step()
    state = {n: {k: v.numpy() for k, v in opt.state[p].items() if tuple(v.shape) == p.shape}
             for n, p in params.items()}
    return {n: p.detach().numpy() for n, p in params.items()}, state


def _tolerance(dtype):
    """Relative tolerance against PyTorch after STEPS steps: 1e-6 in float64; float32 rows are
    compared with PyTorch in float32, where rounding differences grow over the steps (AdamW's
    decay, written p - lr * (d + wd * p) here and (1 - lr * wd) * p - lr * d there, most: 3e-5)."""
    return 1e-6 if dtype == "float64" else 2e-4


def _host_checkpoint(opt):
    """The optimizer's state dict as it would be written to disk: arrays copied to the host
    (``Tensor.numpy()`` may share memory with host-resident arrays)."""
    saved = opt.state_dict()
    saved["state"] = {
        i: {k: np.array(gd.Tensor(v).numpy(), copy=True) if hasattr(v, "shape") else v for k, v in s.items()}
        for i, s in saved["state"].items()
    }
    return saved


@pytest.mark.parametrize("row", ROW)
def test_matches_torch_and_resumes_mid_run(backend, float_dtype, row):
    """STEPS steps equal torch.optim's; stopping halfway, loading the state dict into a fresh
    optimizer (built with another lr) and going on gives exactly the uninterrupted run."""
    if backend.name == "array_api_strict" and "CPU_DEVICE" in str(backend.device):
        pytest.skip("the strict device1 row runs the same code with the same strictness, and device checks")
    name, kwargs, groups = ROW[row]
    theirs, their_state = _run_torch(row, float_dtype)
    half = STEPS // 2
    ours, opt = _run_gdnet(name, kwargs, groups, float_dtype, steps=half)
    saved = _host_checkpoint(opt)
    halfway = {n: make(p.numpy(), float_dtype, requires_grad=True) for n, p in ours.items()}
    _run_gdnet(name, kwargs, groups, float_dtype, steps=STEPS - half, start=half, params=ours, opt=opt)

    rtol, atol = _tolerance(float_dtype), (1e-12 if float_dtype == "float64" else 1e-5)
    for n, p in ours.items():
        assert p.device == backend.device and p.dtype == getattr(backend.xp, float_dtype)
        np.testing.assert_allclose(p.numpy(), theirs[n], rtol=rtol, atol=atol, err_msg=n)
        state = opt.state[id(p)]
        assert state["step"] == STEPS
        for key, expected in their_state[n].items():
            assert key in state, f"{name} keeps no {key!r} where torch.optim does"
            assert state[key].device == p.device and state[key].dtype == p.dtype
            np.testing.assert_allclose(gd.Tensor(state[key]).numpy(), expected, rtol=rtol * 10, atol=atol,
                                       err_msg=f"{n} {key}")

    resumed, opt2 = _run_gdnet(name, dict(kwargs, lr=123.0), groups, float_dtype, steps=STEPS - half, start=half,
                               params=halfway, state=saved)
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    for n in ours:
        np.testing.assert_array_equal(resumed[n].numpy(), ours[n].numpy())


# -- descent ----------------------------------------------------------------------------------
# hyperparameters under which each optimizer makes progress on both problems within DESCENT_STEPS
DESCENT = {
    "SGD": dict(lr=1e-3, momentum=0.9),
    "Adagrad": dict(lr=0.1),
    "RMSprop": dict(lr=1e-2),
    "Adadelta": dict(lr=1.0, eps=1e-3),
    "Adam": dict(lr=0.05),
    "AdamW": dict(lr=0.05),
    "NAdam": dict(lr=0.05),
    "Adamax": dict(lr=0.05),
    "RAdam": dict(lr=0.05),
}
# RAdam's first steps (until rho_t > 5) are momentum SGD steps of size lr * m_hat, which the
# steep wall of Rosenbrock's valley (gradient ~200 at the start) throws off at the quadratic's lr
ROSENBROCK = dict(DESCENT, RAdam=dict(lr=1e-3))
DESCENT_STEPS = 60
TARGET = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])
CURVATURE = np.array([[1.0, 4.0, 0.5], [2.0, 8.0, 1.0]])


def _quadratic(x, target, curvature):
    """A convex quadratic: sum(c * (x - t)**2), minimum 0 at x = t."""
    return (curvature * (x - target) ** 2).sum()


def _rosenbrock(x, target=None, curvature=None):
    """Rosenbrock's valley: (1 - x0)**2 + 100 (x1 - x0**2)**2, minimum 0 at (1, 1)."""
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("problem, start", [(_quadratic, np.zeros((2, 3))), (_rosenbrock, np.array([-1.2, 1.0]))],
                         ids=["quadratic", "rosenbrock"])
def test_each_optimizer_descends(backend, float_dtype, name, problem, start):
    x = make(start, float_dtype, requires_grad=True)
    target, curvature = make(TARGET, float_dtype), make(CURVATURE, float_dtype)
    opt = getattr(optim, name)([x], **(ROSENBROCK if problem is _rosenbrock else DESCENT)[name])
    losses = []
    for _ in range(DESCENT_STEPS):
        opt.zero_grad()
        loss = problem(x, target, curvature)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    final = problem(x, target, curvature).item()
    assert np.isfinite(final) and final < 0.5 * losses[0], (losses[0], final)
    assert x.device == backend.device and x.dtype == getattr(backend.xp, float_dtype)


def test_step_with_a_closure_returns_its_loss(backend, float_dtype):
    x = make([3.0, -1.0], float_dtype, requires_grad=True)
    opt = optim.Adam([x], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (x * x).sum()
        loss.backward()
        return loss

    with gd.no_grad():  # the closure still records its graph
        loss = opt.step(closure)
    assert loss.item() == pytest.approx(10.0)
    np.testing.assert_allclose(x.numpy(), [2.9, -0.9], rtol=1e-5)


# -- hand-checked steps and state ----------------------------------------------------------------
def test_plain_sgd_step_by_hand(backend, float_dtype):
    w = make([1.0, -2.0], float_dtype, requires_grad=True)
    (w * w).sum().backward()  # grad 2w
    SGD([w], lr=0.25).step()
    np.testing.assert_allclose(w.numpy(), [0.5, -1.0])


def test_first_adam_step_by_hand(backend, float_dtype):
    # after one step m_hat = g and v_hat = g**2, so the step is lr * g / (|g| + eps)
    w = make([1.0, -2.0], float_dtype, requires_grad=True)
    w.grad = make([0.5, -4.0], float_dtype)
    optim.Adam([w], lr=0.1, eps=0.0).step()
    np.testing.assert_allclose(w.numpy(), [0.9, -1.9], rtol=1e-6)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_parameters_without_a_gradient_are_left_alone(backend, float_dtype, name):
    a = make([1.0], float_dtype, requires_grad=True)
    b = make([2.0], float_dtype, requires_grad=True)
    opt = getattr(optim, name)([a, b], lr=0.5)
    a.grad = make([1.0], float_dtype)
    opt.step()
    assert a.tolist() != [1.0] and b.tolist() == [2.0]
    assert id(b) not in opt.state


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_gradients_are_never_written(backend, float_dtype, name):
    w = make([1.0, -2.0, 3.0], float_dtype, requires_grad=True)
    cls = getattr(optim, name)
    opt = cls([w], lr=0.1, **({"weight_decay": 0.1} if "weight_decay" in hyperparameters(cls) else {}))
    grad = make([0.5, 0.25, -1.0], float_dtype)
    for _ in range(3):
        w.grad = grad
        opt.step()
    assert grad.tolist() == [0.5, 0.25, -1.0]


def scale_by_sign():
    def update(u, state, param, group):
        return namespace_of(u).sign(u)

    return Transform(no_state, update, lambda group: None)


class SignSGD(Optimizer):
    """signSGD with momentum (Bernstein et al., 2018): one new link in a chain of existing ones."""

    transform = chain(add_decayed_weights(), scale_by_sign(), trace(), scale_by_learning_rate())

    def __init__(self, params, lr=1e-3, momentum=0.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))


def test_a_new_optimizer_is_a_chain_of_transforms(backend, float_dtype):
    w = make([1.0, -2.0], float_dtype, requires_grad=True)
    opt = SignSGD([w], lr=0.1, momentum=0.5)
    for expected in ([0.9, -1.9], [0.75, -1.75]):  # buffers [1, -1] then [1.5, -1.5]
        w.grad = make([0.5, -3.0], float_dtype)
        opt.step()
        np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)
    assert opt.state_dict()["type"] == "SignSGD" and opt.state_dict()["state"][0]["step"] == 2
    with pytest.raises(ValueError, match="Invalid momentum value: -1"):
        SignSGD([w], momentum=-1)


def test_a_chain_refuses_two_links_keeping_the_same_state(backend):
    twice = chain(scale_by_adam(), scale_by_adam())
    with pytest.raises(ValueError, match=r"keep the same state \['exp_avg', 'exp_avg_sq'\]"):
        twice.init(_param().data, {"amsgrad": False})


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
    assert state["state"][0]["step"] == 1
    assert gd.Tensor(state["state"][0]["momentum_buffer"]).tolist() == [1.0, 1.0]


def test_nadam_keeps_its_momentum_product_on_the_host(backend):
    w = make([1.0, 2.0], "float32", requires_grad=True)
    opt = optim.NAdam([w])
    for _ in range(2):
        w.grad = make([1.0, 1.0], "float32")
        opt.step()
    mu = [0.9 * (1.0 - 0.5 * 0.96 ** (t * 4e-3)) for t in (1, 2)]
    assert opt.state_dict()["state"][0]["mu_product"] == pytest.approx(mu[0] * mu[1], rel=1e-15)


def test_adagrad_starts_each_groups_sum_at_its_own_value(backend):
    # torch.optim.Adagrad starts every sum at the constructor's value, whatever a group says
    a, b = _param(), _param()
    opt = optim.Adagrad([{"params": [a]}, {"params": [b], "initial_accumulator_value": 0.5}],
                        initial_accumulator_value=0.25)
    a.grad, b.grad = make([1.0, 1.0], "float32"), make([1.0, 1.0], "float32")
    opt.step()
    assert gd.Tensor(opt.state[id(a)]["sum"]).tolist() == [1.25, 1.25]
    assert gd.Tensor(opt.state[id(b)]["sum"]).tolist() == [1.5, 1.5]


def test_hyperparameters_are_stored_as_python_numbers(backend):
    w = make([1.0], "float32", requires_grad=True)
    opt = optim.Adam([w], lr=np.float64(0.1), betas=[np.float32(0.5), 0.9], weight_decay=0)
    group = opt.param_groups[0]
    assert type(group["lr"]) is float and type(group["weight_decay"]) is float
    assert group["betas"] == (0.5, 0.9) and all(type(b) is float for b in group["betas"])
    w.grad = make([1.0], "float32")
    opt.step()
    assert w.dtype == backend.xp.float32


def test_zero_grad_and_repr(backend):
    w = make([1.0, 2.0], "float32", requires_grad=True)
    opt = SGD([w], lr=0.1, momentum=0.9)
    (w * w).sum().backward()
    shared = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad.tolist() == [0.0, 0.0] and shared.tolist() == [2.0, 4.0]
    assert w.grad.device == w.device and w.grad.dtype == w.dtype
    opt.zero_grad()
    assert w.grad is None
    text = repr(opt)
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "momentum: 0.9" in text


def test_add_param_group_after_construction(backend):
    a, b = make([1.0], "float32", requires_grad=True), make([1.0], "float32", requires_grad=True)
    opt = optim.RMSprop([a], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 0.5, "momentum": 0.9})
    assert opt.param_groups[1]["alpha"] == 0.99 and opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(ValueError, match="more than once"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="needs a 'params' entry"):
        opt.add_param_group({"lr": 0.1})


# -- bad input ----------------------------------------------------------------------------------
def _param():
    return make([1.0, 2.0], "float32", requires_grad=True)


BAD = [
    # (optimizer, keyword arguments, error, message)
    ("SGD", dict(lr=-0.1), ValueError, r"Invalid learning rate: -0.1 \(expected a finite number >= 0\)"),
    ("SGD", dict(lr=0.1, weight_decay=-1e-4), ValueError, r"Invalid weight_decay value: -0.0001"),
    ("SGD", dict(lr=0.1, momentum=-0.5), ValueError, r"Invalid momentum value: -0.5"),
    ("SGD", dict(lr=0.1, dampening=1.5), ValueError, r"Invalid dampening value: 1.5 \(expected a value in \[0, 1\]\)"),
    ("SGD", dict(lr=0.1, nesterov=True), ValueError, r"Nesterov momentum requires a momentum > 0"),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError, r"zero dampening"),
    ("SGD", dict(lr=float("nan")), ValueError, r"Invalid learning rate: nan"),
    ("SGD", dict(lr="0.1"), TypeError, r"Invalid learning rate: '0.1' \(expected a real number\)"),
    ("Adagrad", dict(lr=-1.0), ValueError, r"Invalid learning rate: -1.0"),
    ("Adagrad", dict(lr_decay=-0.1), ValueError, r"Invalid lr_decay value: -0.1"),
    ("Adagrad", dict(initial_accumulator_value=-1), ValueError, r"Invalid initial_accumulator_value value: -1"),
    ("Adagrad", dict(eps=-1e-10), ValueError, r"Invalid epsilon value: -1e-10"),
    ("RMSprop", dict(lr=-1.0), ValueError, r"Invalid learning rate: -1.0"),
    ("RMSprop", dict(alpha=1.5), ValueError, r"Invalid alpha value: 1.5"),
    ("RMSprop", dict(momentum=-0.9), ValueError, r"Invalid momentum value: -0.9"),
    ("RMSprop", dict(eps=-1.0), ValueError, r"Invalid epsilon value: -1.0"),
    ("Adadelta", dict(lr=-1.0), ValueError, r"Invalid learning rate: -1.0"),
    ("Adadelta", dict(rho=1.1), ValueError, r"Invalid rho value: 1.1 \(expected a value in \[0, 1\]\)"),
    ("Adadelta", dict(weight_decay=-1.0), ValueError, r"Invalid weight_decay value: -1.0"),
    ("Adam", dict(lr=-1e-3), ValueError, r"Invalid learning rate: -0.001"),
    ("Adam", dict(betas=(1.0, 0.999)), ValueError,
     r"Invalid beta parameter at index 0: 1.0 \(expected a value in \[0, 1\)\)"),
    ("Adam", dict(betas=(0.9, -0.1)), ValueError, r"Invalid beta parameter at index 1: -0.1"),
    ("Adam", dict(betas=0.9), ValueError, r"Invalid betas: 0.9 \(expected a pair"),
    ("Adam", dict(eps=-1e-8), ValueError, r"Invalid epsilon value: -1e-08"),
    ("AdamW", dict(weight_decay=-0.01), ValueError, r"Invalid weight_decay value: -0.01"),
    ("AdamW", dict(betas=(0.9, 1.0)), ValueError, r"Invalid beta parameter at index 1: 1.0"),
    ("NAdam", dict(betas=(-0.5, 0.999)), ValueError, r"Invalid beta parameter at index 0: -0.5"),
    ("NAdam", dict(momentum_decay=-1.0), ValueError, r"Invalid momentum_decay value: -1.0"),
    ("Adamax", dict(betas=(0.9, 2.0)), ValueError, r"Invalid beta parameter at index 1: 2.0"),
    ("Adamax", dict(lr=-1.0), ValueError, r"Invalid learning rate: -1.0"),
    ("RAdam", dict(betas=(0.9, 1.0)), ValueError, r"Invalid beta parameter at index 1: 1.0"),
    ("RAdam", dict(eps=-1.0), ValueError, r"Invalid epsilon value: -1.0"),
    # infinity where a hyperparameter must be finite (lr=inf turns the weights into inf and NaN)
    *[(name, dict(lr=float("inf")), ValueError, r"Invalid learning rate: inf \(expected a finite number >= 0\)")
      for name in OPTIMIZERS],
    ("SGD", dict(lr=0.1, momentum=float("inf")), ValueError, r"Invalid momentum value: inf"),
    ("SGD", dict(lr=0.1, weight_decay=float("inf")), ValueError, r"Invalid weight_decay value: inf"),
    ("Adagrad", dict(lr_decay=float("inf")), ValueError, r"Invalid lr_decay value: inf"),
    ("Adagrad", dict(initial_accumulator_value=float("inf")), ValueError, "Invalid initial_accumulator_value"),
    ("RMSprop", dict(eps=float("inf")), ValueError, r"Invalid epsilon value: inf"),
    ("Adam", dict(eps=float("inf")), ValueError, r"Invalid epsilon value: inf"),
    ("NAdam", dict(momentum_decay=float("inf")), ValueError, r"Invalid momentum_decay value: inf"),
]


@pytest.mark.parametrize("name, kwargs, error, message", BAD,
                         ids=[f"{name}-{'-'.join(kwargs)}-{i}" for i, (name, kwargs, _, _) in enumerate(BAD)])
def test_bad_hyperparameters(backend, name, kwargs, error, message):
    with pytest.raises(error, match=message):
        getattr(optim, name)([_param()], **kwargs)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_bad_hyperparameters_in_a_group(backend, name):
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        getattr(optim, name)([{"params": [_param()]}, {"params": [_param()], "lr": -1}], lr=0.1)


def test_a_parameter_given_twice(backend):
    w = _param()
    with pytest.raises(ValueError, match="more than once"):
        SGD([w, w], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.Adam([{"params": [w]}, {"params": [_param(), w]}], lr=0.1)


def test_unknown_parameter_types(backend):
    with pytest.raises(TypeError, match="can only optimize Tensors; got ndarray"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="got list"):
        optim.Adam([{"params": [[1.0, 2.0]]}])
    with pytest.raises(TypeError, match="got Tensor"):
        optim.Adam(_param())
    with pytest.raises(TypeError, match="stable order"):
        optim.Adam({_param()})
    with pytest.raises(TypeError, match="got dict"):
        optim.Adam({"weight": _param()})
    with pytest.raises(TypeError, match="must all be dicts"):
        optim.Adam([{"params": [_param()]}, _param()])


def test_parameters_that_do_not_require_grad_or_are_not_leaves(backend):
    with pytest.raises(ValueError, match="does not require grad"):
        SGD([make([1.0], "float32")], lr=0.1)
    with pytest.raises(ValueError, match="leaf tensors"):
        SGD([_param() * 2.0], lr=0.1)


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
    with pytest.raises(ValueError, match="state dict is from a Adam optimizer; expected AdamW"):
        optim.AdamW([w]).load_state_dict(optim.Adam([w]).state_dict())


def test_a_state_dict_with_other_groups_or_shapes(backend):
    saved = SGD([_param(), _param()], lr=0.1).state_dict()
    with pytest.raises(ValueError, match=r"sizes \[2\], expected \[1\]"):
        SGD([_param()], lr=0.1).load_state_dict(saved)
    w = _param()
    opt = optim.Adam([w])
    w.grad = make([1.0, 1.0], "float32")
    opt.step()
    saved = opt.state_dict()
    with pytest.raises(ValueError, match=r"'exp_avg' for parameter 0 has shape \(2,\); expected \(3,\)"):
        optim.Adam([make([1.0, 2.0, 3.0], "float32", requires_grad=True)]).load_state_dict(saved)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_model_given_instead_of_its_parameters(backend, name):
    model = gd.nn.Linear(2, 3)
    with pytest.raises(TypeError, match=rf"got the Linear itself: pass model.parameters\(\), e.g. {name}\("):
        getattr(optim, name)(model, lr=0.1)


def test_a_state_dict_that_is_not_an_optimizers(backend):
    w = _param()
    opt = SGD([w], lr=0.1, momentum=0.9)
    w.grad = make([1.0, 1.0], "float32")
    opt.step()
    saved = opt.state_dict()
    with pytest.raises(ValueError, match=r"lacks \['state', 'param_groups'\]; expected what SGD.state_dict\(\)"):
        opt.load_state_dict({})
    with pytest.raises(TypeError, match="optimizer state dict is a dict; got list"):
        opt.load_state_dict([])
    with pytest.raises(ValueError, match="param_groups must be a list of dicts"):
        opt.load_state_dict({**saved, "param_groups": [{"lr": 0.1}]})
    for key in (5, "5", -1, "weight"):
        with pytest.raises(ValueError, match=rf"state for parameter {key!r}; this optimizer's parameters are "
                                             r"numbered 0 to 0"):
            opt.load_state_dict({**saved, "state": {key: saved["state"][0]}})
    assert opt.state[id(w)]["momentum_buffer"] is not None  # the refused loads changed nothing


def test_clipping_still_takes_infinite_bounds(backend):
    w = _param()
    w.grad = make([3.0, 4.0], "float32")
    assert optim.clip_grad_norm_([w], max_norm=float("inf"), norm_type=float("inf")).item() == 4.0
    optim.clip_grad_value_([w], float("inf"))
    np.testing.assert_allclose(w.grad.numpy(), [3.0, 4.0])


def test_a_state_dict_with_bad_hyperparameters_is_refused_whole(backend):
    w = _param()
    saved = optim.Adam([w], lr=0.1).state_dict()
    saved["param_groups"][0]["betas"] = (0.9, 1.5)
    opt = optim.Adam([w], lr=0.2)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.5"):
        opt.load_state_dict(saved)
    assert opt.param_groups[0]["lr"] == 0.2 and opt.param_groups[0]["betas"] == (0.9, 0.999)


# -- no host reads inside step() ------------------------------------------------------------------
@contextlib.contextmanager
def host_reads_refused(backend, monkeypatch):
    """conftest.reads_refused, skipping the rows where reading is free (nothing to prove there)."""
    refusing = backend.name == "cupy" or not backend.holds_values or (
        backend.name == "array_api_strict" and "device1" in str(backend.device))
    if not refusing:
        pytest.skip("the torch-meta, strict device1 and cupy rows check this (others read for free)")
    with reads_refused(backend, monkeypatch):
        yield


@pytest.mark.no_reads
@pytest.mark.parametrize("row", [row for row in ROW if row.endswith(("custom", "two-groups"))])
def test_step_reads_nothing_back(backend, float_dtype, monkeypatch, row):
    name, kwargs, groups = ROW[row]
    params = {n: make(v, float_dtype, requires_grad=True) for n, v in _initial().items()}
    opt = getattr(optim, name)(_param_groups(params, groups), **kwargs)
    grads = [{n: make(g, float_dtype) for n, g in _gradients(step).items()} for step in range(3)]
    with host_reads_refused(backend, monkeypatch):
        for step_grads in grads:
            for n, g in step_grads.items():
                params[n].grad = g
            opt.step()
    if backend.holds_values:
        assert np.all(np.isfinite(params["weight"].numpy()))
