"""Tensor and the graph: accumulation, shared subgraphs, no_grad, freeing, errors, device mixing."""

from __future__ import annotations

import operator

import numpy as np
import pytest
from conftest import make

import gdnet as gd
from gdnet.autograd import Function


def test_gradients_accumulate_across_backward_calls(backend, float_dtype):
    x = make([1.0, 2.0, 3.0], float_dtype, requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0, 9.0])
    assert x.grad.device == x.device and x.grad.dtype == x.dtype


def test_leaf_used_twice_gets_both_contributions(backend, float_dtype):
    x = make([1.0, -2.0], float_dtype, requires_grad=True)
    (x * x + x * 3.0).sum().backward()  # d/dx = 2x + 3
    np.testing.assert_allclose(x.grad.numpy(), [5.0, -1.0])


def test_diamond_through_an_intermediate(backend, float_dtype):
    x = make([0.5, 1.5], float_dtype, requires_grad=True)
    h = x * 2.0  # used by two branches that meet again
    y = (h * h + h.exp()).sum()
    y.backward()
    expected = 2.0 * (2.0 * np.array([1.0, 3.0]) + np.exp([1.0, 3.0]))
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


def test_branches_of_different_lengths_meet_before_the_shared_op_runs(backend, float_dtype):
    """The walk runs an op only once every branch that reads its output has handed back its
    gradient, whatever order the branches were built in."""
    x = make([0.5, -1.0], float_dtype, requires_grad=True)
    h = x * 3.0
    long_branch = ((h * 2.0).exp() * 0.5).tanh()  # built first, three ops deep
    short_branch = h * h  # built last, one op
    (long_branch + short_branch + h).sum().backward()
    hx = 3.0 * np.array([0.5, -1.0])
    d_long = (1.0 - np.tanh(0.5 * np.exp(2.0 * hx)) ** 2) * 0.5 * np.exp(2.0 * hx) * 2.0
    expected = 3.0 * (d_long + 2.0 * hx + 1.0)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-5)


def test_backward_through_a_freed_part_of_a_new_graph_raises(backend, float_dtype):
    x = make([1.0, 2.0], float_dtype, requires_grad=True)
    h = x * x
    h.sum().backward()  # frees the op that made h
    with pytest.raises(RuntimeError, match="already freed"):
        (h * 2.0).sum().backward()


def test_intermediate_tensors_keep_no_grad(backend, float_dtype):
    x = make([1.0, 2.0], float_dtype, requires_grad=True)
    h = x * 2.0
    (h * h).sum().backward()
    assert h.grad is None
    assert not h.is_leaf and x.is_leaf


def test_no_grad_records_nothing(backend, float_dtype):
    x = make([1.0, 2.0], float_dtype, requires_grad=True)
    with gd.no_grad():
        assert not gd.is_grad_enabled()
        y = (x * x).sum()
        with gd.enable_grad():
            z = (x * x).sum()
    assert gd.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad and not z.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    assert x.grad is None


def test_no_grad_restores_the_flag_after_an_exception(backend):
    with pytest.raises(KeyError):
        with gd.no_grad():
            raise KeyError
    assert gd.is_grad_enabled()


def test_constants_give_outputs_without_grad(backend, float_dtype):
    a, b = make([1.0], float_dtype), make([2.0], float_dtype)
    out = a * b + 1.0
    assert not out.requires_grad and out.is_leaf


def test_backward_on_non_scalar_needs_a_gradient(backend, float_dtype):
    x = make([1.0, 2.0, 3.0], float_dtype, requires_grad=True)
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"one-element output; got shape \(3,\)"):
        y.backward()
    y.backward(make([1.0, 0.0, -1.0], float_dtype))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0, -2.0])


def test_backward_with_a_gradient_of_the_wrong_shape_raises(backend, float_dtype):
    x = make([1.0, 2.0, 3.0], float_dtype, requires_grad=True)
    with pytest.raises(ValueError, match=r"grad has shape \(2,\); expected \(3,\)"):
        (x * 2.0).backward(make([1.0, 1.0], float_dtype))


def test_backward_on_a_one_element_non_scalar_seeds_one(backend, float_dtype):
    x = make([[3.0]], float_dtype, requires_grad=True)
    (x * x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [[6.0]])


def test_backward_on_a_leaf(backend, float_dtype):
    x = make([1.0, 2.0], float_dtype, requires_grad=True)
    x.backward(make([0.5, 0.25], float_dtype))
    np.testing.assert_allclose(x.grad.numpy(), [0.5, 0.25])


def test_backward_twice_through_a_freed_graph_raises(backend, float_dtype):
    x = make([1.0, 2.0], float_dtype, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="already freed"):
        y.backward()
    # the first pass's gradient is intact, and a fresh forward works again
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_backward_frees_saved_arrays(backend, float_dtype):
    x = make([1.0, 2.0], float_dtype, requires_grad=True)
    y = x.exp()
    creator = y._creator
    y.sum().backward()
    assert creator.inputs is None
    assert not hasattr(creator, "out")


def test_detach_cuts_the_graph_and_keeps_the_values(backend, float_dtype):
    x = make([1.0, 2.0], float_dtype, requires_grad=True)
    h = x * 3.0
    d = h.detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(d.numpy(), h.numpy())
    (h * d).sum().backward()  # d is a constant: dy/dx = 3 * d
    np.testing.assert_allclose(x.grad.numpy(), [9.0, 18.0])


def test_requires_grad_cannot_be_switched_off_on_non_leaves(backend, float_dtype):
    x = make([1.0], float_dtype).requires_grad_()
    assert x.requires_grad
    with pytest.raises(RuntimeError, match="detach"):
        (x * 2.0).requires_grad_(False)


@pytest.mark.parametrize(
    "values, dtype, expected",
    [([2.5], None, 2.5), ([[7]], "int64", 7), ([True], "bool", True)],
    ids=["float", "int", "bool"],
)
def test_item_gives_a_python_number(backend, float_dtype, values, dtype, expected):
    t = gd.tensor(np.array(values), dtype=dtype or float_dtype)
    value = t.item()
    assert value == expected and type(value) is type(expected)


def test_item_on_many_elements_raises(backend, float_dtype):
    with pytest.raises(ValueError, match=r"one element; got shape \(2,\)"):
        make([1.0, 2.0], float_dtype).item()


def test_numpy_is_an_explicit_host_copy(backend, float_dtype):
    x = make([[1.0, 2.0], [3.0, 4.0]], float_dtype)
    host = x.numpy()
    assert isinstance(host, np.ndarray)
    assert host.dtype == np.dtype(float_dtype)
    np.testing.assert_array_equal(host, [[1.0, 2.0], [3.0, 4.0]])
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_numpy_on_device1_transfers_explicitly():
    pytest.importorskip("array_api_strict")
    with gd.use_backend("array_api_strict", "device1"):
        x = make([1.0, 2.0])
        with pytest.raises((RuntimeError, ValueError, TypeError)):
            np.asarray(x.data)  # the implicit conversion is refused on device1 ...
        np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])  # ... the explicit one works
        assert float(x.sum()) == 3.0


SCALAR_OPERATORS = [
    ("add-right", lambda x: x + 2.0, lambda v: v + 2.0, lambda v: np.ones_like(v)),
    ("add-left", lambda x: 2.0 + x, lambda v: 2.0 + v, lambda v: np.ones_like(v)),
    ("sub-right", lambda x: x - 2.0, lambda v: v - 2.0, lambda v: np.ones_like(v)),
    ("sub-left", lambda x: 2.0 - x, lambda v: 2.0 - v, lambda v: -np.ones_like(v)),
    ("mul-right", lambda x: x * 3, lambda v: v * 3, lambda v: np.full_like(v, 3.0)),
    ("mul-left", lambda x: 3 * x, lambda v: 3 * v, lambda v: np.full_like(v, 3.0)),
    ("div-right", lambda x: x / 4.0, lambda v: v / 4.0, lambda v: np.full_like(v, 0.25)),
    ("div-left", lambda x: 4.0 / x, lambda v: 4.0 / v, lambda v: -4.0 / v**2),
    ("pow-right", lambda x: x**2, lambda v: v**2, lambda v: 2 * v),
    ("pow-left", lambda x: 2.0**x, lambda v: 2.0**v, lambda v: np.log(2.0) * 2.0**v),
]


@pytest.mark.parametrize(
    "forward, expected, derivative",
    [pytest.param(*row[1:], id=row[0]) for row in SCALAR_OPERATORS],
)
def test_operators_with_python_scalars_on_either_side(backend, float_dtype, forward, expected, derivative):
    values = np.array([0.5, 1.0, 2.0])
    x = make(values, float_dtype, requires_grad=True)
    y = forward(x)
    assert y.dtype == x.dtype and y.device == x.device
    y.sum().backward()
    rtol = 1e-6 if float_dtype == "float32" else 1e-12
    np.testing.assert_allclose(y.numpy(), expected(values), rtol=rtol)
    np.testing.assert_allclose(x.grad.numpy(), derivative(values), rtol=rtol)


@pytest.mark.parametrize("op", ["lt", "le", "gt", "ge", "eq", "ne"])
@pytest.mark.parametrize("other_kind", ["scalar", "tensor"])
def test_comparisons_return_boolean_tensors_outside_the_graph(backend, float_dtype, op, other_kind):
    values, others = np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])
    x = make(values, float_dtype, requires_grad=True)
    other = 2.0 if other_kind == "scalar" else make(others, float_dtype)
    result = getattr(operator, op)(x, other)
    assert isinstance(result, gd.Tensor)
    assert not result.requires_grad and result.is_leaf
    assert result.device == x.device
    assert result.dtype == backend.xp.bool
    expected = getattr(operator, op)(values, 2.0 if other_kind == "scalar" else others)
    np.testing.assert_array_equal(result.numpy(), expected)


def test_tensor_facts(backend, float_dtype):
    x = make(np.zeros((2, 3, 4)), float_dtype)
    assert x.shape == (2, 3, 4) and x.ndim == 3 and x.size == 24 and len(x) == 2
    assert x.xp is backend.xp
    assert x.device == backend.device
    assert "requires_grad=True" in repr(make([1.0], float_dtype, requires_grad=True))


def test_astype_makes_a_new_leaf(backend, float_dtype):
    x = make([1.5, 2.5], float_dtype, requires_grad=True)
    y = (x * 2.0).astype("int64")
    assert y.dtype == backend.xp.int64 and y.is_leaf and not y.requires_grad
    assert y.tolist() == [3, 5]
    with pytest.raises(ValueError, match="unknown dtype"):
        x.astype("float17")


def test_argmax(backend, float_dtype):
    x = make([[1.0, 5.0, 2.0], [7.0, 0.0, 1.0]], float_dtype)
    assert x.argmax(axis=1).tolist() == [1, 0]


def test_a_custom_function_plugs_into_the_graph(backend, float_dtype):
    class Cube(Function):
        def forward(self, xp, a):
            self.a = a
            return a * a * a

        def backward(self, g):
            return (3.0 * self.a * self.a * g,)

    x = make([1.0, -2.0], float_dtype, requires_grad=True)
    Cube()(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0])
    assert gd.gradcheck(lambda t: Cube()(t), x)


class _BroadcastAdd(Function):
    """a + b whose backward hands both inputs the gradient of the broadcast shape."""

    def forward(self, xp, a, b):
        return a + b

    def backward(self, g):
        return g, g


class _Transposed(Function):
    """A backward that breaks the contract: the gradient of a (2, 3) input comes back (3, 2)."""

    def forward(self, xp, a):
        return a * 1.0

    def backward(self, g):
        return (self.xp.matrix_transpose(g),)


def test_the_backward_pass_sums_a_broadcast_gradient_down_to_each_input(backend, float_dtype):
    a = make(np.ones((3, 1)), float_dtype, requires_grad=True)
    b = make(np.arange(4.0), float_dtype, requires_grad=True)
    hidden = make(np.ones((1, 4)), float_dtype, requires_grad=True) * 2.0  # a non-leaf input too
    _BroadcastAdd()(_BroadcastAdd()(a, b), hidden).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_allclose(a.grad.numpy(), np.full((3, 1), 4.0))
    np.testing.assert_allclose(b.grad.numpy(), np.full((4,), 3.0))
    assert gd.gradcheck(lambda x, y: _BroadcastAdd()(x, y), a, b)


def test_a_gradient_that_does_not_broadcast_to_its_input_is_an_error(backend, float_dtype):
    x = make(np.ones((2, 3)), float_dtype, requires_grad=True)  # the same size, another shape
    with pytest.raises(RuntimeError, match=r"a gradient of shape \(3, 2\) for an input of shape \(2, 3\)"):
        _Transposed()(x).sum().backward()


def test_gradcheck_catches_a_wrong_backward(backend, float_dtype):
    class WrongSquare(Function):
        def forward(self, xp, a):
            self.a = a
            return a * a

        def backward(self, g):
            return (self.a * g,)  # should be 2 * a * g

    x = make([1.0, 2.0], float_dtype, requires_grad=True)
    with pytest.raises(gd.GradcheckError, match="input 0"):
        gd.gradcheck(lambda t: WrongSquare()(t), x)


def test_gradcheck_checks_each_differentiated_input_by_position(backend, float_dtype):
    a = make([1.0, 2.0, 3.0], float_dtype)  # a constant before the checked input
    b = make([0.5, 1.5, 2.5], float_dtype, requires_grad=True)
    assert gd.gradcheck(lambda a, b: a * b * b, a, b)
    with pytest.raises(ValueError, match="requires_grad"):
        gd.gradcheck(lambda a: a * 2.0, a)


# -- tensors from different backends or devices ----------------------------------------------
def _strict_tensor(device, dtype="float64"):
    pytest.importorskip("array_api_strict")
    with gd.use_backend("array_api_strict", device):
        return make([1.0, 2.0], dtype, requires_grad=True)


def _numpy_tensor():
    with gd.use_backend("numpy"):
        return make([1.0, 2.0], requires_grad=True)


@pytest.mark.parametrize(
    "make_a, make_b, names",
    [
        (
            lambda: _strict_tensor("device1"),
            lambda: _strict_tensor("CPU_DEVICE"),
            ("device1", "CPU_DEVICE"),
        ),
        (
            lambda: _strict_tensor("CPU_DEVICE"),
            lambda: _strict_tensor("device1"),
            ("CPU_DEVICE", "device1"),
        ),
        (_numpy_tensor, lambda: _strict_tensor("CPU_DEVICE"), ("numpy", "array_api_strict")),
        (lambda: _strict_tensor("device1"), _numpy_tensor, ("array_api_strict", "numpy")),
    ],
    ids=["device1-cpu", "cpu-device1", "numpy-strict", "strict-numpy"],
)
@pytest.mark.parametrize(
    "op",
    [operator.add, operator.mul, operator.matmul, gd.maximum, lambda a, b: gd.where(a > 1.0, a, b)],
    ids=["add", "mul", "matmul", "maximum", "where"],
)
def test_mixing_backends_or_devices_raises_naming_both(make_a, make_b, names, op):
    a, b = make_a(), make_b()
    with pytest.raises(gd.DeviceMismatchError) as info:
        op(a, b)
    message = str(info.value)
    for name in names:
        assert name in message
    assert message.index(names[0]) < message.index(names[1])


def test_device_mismatch_is_a_value_error():
    assert issubclass(gd.DeviceMismatchError, ValueError)


def test_a_numpy_float64_scalar_acts_like_a_python_float(backend):
    x = make([1.0, 2.0], "float32", requires_grad=True)
    for y in (x * np.float64(2.0), np.float64(2.0) * x, x + np.float64(1.0), x ** np.float64(2.0)):
        assert y.dtype == x.dtype
    y = x * np.float64(2.0)
    y.sum().backward()
    assert x.grad.dtype == x.dtype


def test_a_raw_array_of_another_device_raises():
    pytest.importorskip("array_api_strict")
    x = _strict_tensor("device1")
    with pytest.raises(gd.DeviceMismatchError, match="numpy"):
        x + np.array([1.0, 2.0])


@pytest.mark.parametrize(
    "op",
    [
        lambda x, other: gd.take(x, other.astype("int64"), axis=0),
        lambda x, other: x[other.astype("int64")],
        lambda x, other: gd.where(other > 1.0, x, 0.0),
        lambda x, other: gd.nn.functional.cross_entropy(x[None, ...], other[:1].astype("int64")),
    ],
    ids=["take-indices", "getitem-indices", "where-condition", "cross-entropy-labels"],
)
@pytest.mark.parametrize("other_device", [_numpy_tensor, lambda: _strict_tensor("CPU_DEVICE")], ids=["numpy", "cpu"])
def test_constant_operands_from_another_device_raise(op, other_device):
    x, other = _strict_tensor("device1"), other_device()
    with pytest.raises(gd.DeviceMismatchError, match="device1"):
        op(x, other)


def test_post_accumulate_grad_hook_runs_once_with_the_whole_gradient(backend, float_dtype):
    w = make([0.5, -1.0, 2.0], float_dtype, requires_grad=True)
    x = make([1.0, 3.0, -2.0], float_dtype)
    seen, order = [], []
    handle = w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy()))
    w.register_post_accumulate_grad_hook(lambda p: order.append("second"))
    loss = (w * x).sum() + (w * w).sum() + w.sum()  # three uses: one call, after the last
    loss.backward()
    want = x.numpy() + 2 * w.numpy() + 1
    assert len(seen) == 1 and order == ["second"]
    np.testing.assert_allclose(seen[0], want)
    handle.remove()
    (w * x).sum().backward()  # accumulates: the remaining hook sees the sum
    assert len(seen) == 1 and order == ["second", "second"]


def test_queue_callback_runs_after_every_hook_and_only_inside_backward(backend):
    a, b = gd.ones((2,), requires_grad=True), gd.ones((2,), requires_grad=True)
    events = []

    def hook(p):
        events.append("a" if p is a else "b")
        if len(events) == 1:
            gd.autograd.queue_callback(lambda: events.append(("end", a.grad is not None, b.grad is not None)))

    a.register_post_accumulate_grad_hook(hook)
    b.register_post_accumulate_grad_hook(hook)
    ((a * 2.0).sum() + (b * 3.0).sum()).backward()
    assert sorted(events[:2]) == ["a", "b"] and events[2] == ("end", True, True)
    with pytest.raises(RuntimeError, match="only be called during a backward pass"):
        gd.autograd.queue_callback(lambda: None)


def test_hooks_only_on_leaves_that_require_grad(backend):
    w = gd.ones((2,), requires_grad=True)
    with pytest.raises(RuntimeError, match="only be registered on leaf tensors"):
        (w * 2.0).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError, match="does not require grad"):
        gd.ones((2,)).register_post_accumulate_grad_hook(print)


# -- arrays saved for backward and changed in place afterwards ----------------------------------
INPLACE = "modified by an inplace operation"


def _mlp_and_batch(float_dtype):
    model = gd.nn.Sequential(gd.nn.Linear(3, 4), gd.nn.Tanh(), gd.nn.Linear(4, 2)).to(float_dtype)
    x = make(np.random.default_rng(0).normal(size=(5, 3)), float_dtype)
    return model, x


def test_backward_after_an_optimizer_step_changed_a_saved_weight_raises(backend, float_dtype):
    model, x = _mlp_and_batch(float_dtype)
    opt = gd.optim.SGD(model.parameters(), lr=0.5)
    loss_a, loss_b = model(x).sum(), model(x).sum()
    loss_a.backward()
    opt.step()
    # PyTorch raises here too; without the check the first layer's gradient came out wrong
    with pytest.raises(RuntimeError, match=rf"{INPLACE}: input 1 of Linear \(shape \(2, 4\)\)"):
        loss_b.backward()


def test_a_forward_after_the_step_backwards_as_usual(backend, float_dtype):
    model, x = _mlp_and_batch(float_dtype)
    opt = gd.optim.SGD(model.parameters(), lr=0.5)
    model(x).sum().backward()
    opt.step()
    opt.zero_grad()
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(
    "change",
    [
        lambda model: model.load_state_dict({k: gd.Tensor(v).numpy() for k, v in model.state_dict().items()}),
        lambda model: gd.nn.init.zeros_(model[2].weight),
        lambda model: gd.nn.init.normal_(model[2].weight),
    ],
    ids=["load_state_dict", "init-constant", "init-drawn"],
)
def test_other_in_place_changes_are_caught(backend, float_dtype, change):
    model, x = _mlp_and_batch(float_dtype)
    loss = model(x).sum()
    change(model)
    with pytest.raises(RuntimeError, match=INPLACE):
        loss.backward()


def test_a_saved_view_of_a_changed_tensor_is_caught(backend, float_dtype):
    # w.T and w[0] share w's memory: a change of w changes what the products saved
    w = make(np.ones((2, 3)), float_dtype, requires_grad=True)
    x = make(np.ones((4, 2)), float_dtype, requires_grad=True)
    for out in ((x @ w).T.sum(), (x @ w.T.T).sum(), (x[:, :1] * w[0]).sum()):
        gd.autograd.increment_version(w)
        with pytest.raises(RuntimeError, match=INPLACE):
            out.backward()


def test_a_change_the_gradient_does_not_read_is_allowed(backend, float_dtype):
    # as PyTorch: y = x @ w.T with x not requiring grad never reads w in backward
    w = make(np.ones((2, 3)), float_dtype, requires_grad=True)
    x = make(np.arange(6.0).reshape(2, 3), float_dtype)
    out = gd.nn.functional.linear(x, w).sum()
    opt = gd.optim.SGD([w], lr=0.1)
    w.grad = make(np.ones((2, 3)), float_dtype)
    opt.step()
    w.grad = None
    out.backward()
    np.testing.assert_allclose(w.grad.numpy(), np.tile(np.arange(6.0).reshape(2, 3).sum(axis=0), (2, 1)))


def test_versions_increase_with_every_step(backend, float_dtype):
    w = make(np.ones(3), float_dtype, requires_grad=True)
    opt = gd.optim.SGD([w], lr=0.1)
    seen = [w._version]
    for _ in range(3):
        (w * w).sum().backward()
        opt.step()
        seen.append(w._version)
    assert seen == sorted(set(seen))


def _refuses(run) -> bool:
    try:
        run()
    except RuntimeError as error:
        assert "modified by an inplace operation" in str(error)
        return True
    return False


def _torch_spelling():
    import torch

    return type("TorchSpelling", (), {"linear": staticmethod(torch.nn.functional.linear),
                                      "exp": staticmethod(torch.exp)})


GDNET_SPELLING = type("GdnetSpelling", (), {"linear": staticmethod(gd.nn.functional.linear),
                                             "exp": staticmethod(gd.exp)})

# (id, loss(lib, w, x), whether x wants a gradient): w changes in place between forward and backward
SCENARIOS = [
    ("linear-input-constant", lambda lib, w, x: lib.linear(x, w).sum(), False),
    ("linear-input-differentiated", lambda lib, w, x: lib.linear(x, w).sum(), True),
    ("mul-by-a-row-of-w", lambda lib, w, x: (x * w[0]).sum(), False),
    ("mul-of-w-by-itself", lambda lib, w, x: (w * w).sum(), False),
    ("transposed-matmul", lambda lib, w, x: (x @ w.T).sum(), True),
    ("sum-then-exp", lambda lib, w, x: lib.exp(w.sum()), False),
]


@pytest.mark.parametrize("loss, x_grad", [pytest.param(f, g, id=i) for i, f, g in SCENARIOS])
def test_in_place_changes_are_refused_where_torch_refuses_them(loss, x_grad):
    torch = pytest.importorskip("torch")
    w_host, x_host = np.arange(6.0).reshape(2, 3) / 6.0, np.ones((4, 3))
    with gd.use_backend("numpy"):
        w, x = make(w_host, requires_grad=True), make(x_host, requires_grad=x_grad)
        ours = loss(GDNET_SPELLING, w, x)
        gd.autograd.increment_version(w)
        refused = _refuses(ours.backward)
    tw, tx = torch.tensor(w_host, requires_grad=True), torch.tensor(x_host, requires_grad=x_grad)
    theirs = loss(_torch_spelling(), tw, tx)
    with torch.no_grad():
        tw.add_(1.0)
    assert refused == _refuses(theirs.backward)


def test_backward_is_first_order_and_says_so(backend, float_dtype):
    x = make([1.0, 2.0], float_dtype, requires_grad=True)
    y = (x * x).sum()
    with pytest.raises(NotImplementedError, match=r"create_graph=True.*first-order"):
        y.backward(create_graph=True)
    y.backward(create_graph=False)
    assert not x.grad.requires_grad and x.grad.is_leaf  # a plain value: no graph to differentiate again
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
