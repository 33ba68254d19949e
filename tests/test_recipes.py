"""CONTRIBUTING's recipes check themselves.

Coverage: every layer gd.nn exports runs in a row of a table that is gradient-checked and in one
compared with PyTorch; every Function (primitive) of gdnet runs in a gradient-checked row. Rows
run once, forward, on the numpy backend, while Module.__call__ and Function.__call__ note their
classes (cheap: the tables' own tests do the checking).

Recipes followed literally, each for a toy: a primitive (Square), a layer (Scale) and an
optimizer (Rprop, which torch.optim has and gdnet lacks); each test checks the machinery picks
the toy up (coverage, Tensor methods, the gdnet command's choices) and runs the tables' own tests
on its rows. The backend recipe's toy is tests/test_backend.py's ToyBackend (a Backend subclass
and a registry entry): found by its arrays, chosen by "auto", listed by gdnet info, the command
and the test matrix.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np
import pytest
import test_activations_losses as activations_table
import test_conv
import test_input_checks
import test_nn
import test_normalization
import test_ops
import test_optim
import test_recurrent
from conftest import make

import gdnet as gd
from gdnet import cli, nn, ops, optim
from gdnet.autograd import Function, as_tensor, check_dtype_matches, namespace_of
from gdnet.nn import init
from gdnet.nn.module import Module, check_sizes, new_parameter
from gdnet.optim.transform import Transform, chain, checked_number, full_like, zeros_like


def _tensor(host) -> gd.Tensor:
    return make(host, "float32", requires_grad=True)


def _recurrent(row) -> Any:
    inputs = test_recurrent._tiny_inputs(row, "float32")
    return test_recurrent._call(row.make(gd.nn), row, inputs[0], inputs[1:])


# table -> (its rows, one row run forward, gradient-checked, compared with PyTorch)
TABLES: dict[str, tuple[Callable[[], list], Callable[[Any], Any], bool, bool]] = {
    "test_ops.CASES": (lambda: test_ops.CASES, lambda c: c.fn(*test_ops._gd_inputs(c, "float32")), True, True),
    "test_nn.LAYERS": (lambda: test_nn.LAYERS, lambda r: r[1]()(_tensor(r[3])), True, True),
    "test_nn.FUNCTIONAL": (lambda: test_nn.FUNCTIONAL, lambda r: r[1](_tensor(test_nn.A(3, 4)), None), True, True),
    "test_nn.LOSSES": (lambda: test_nn.LOSSES,
                       lambda r: r[1](_tensor(test_nn.N(5, 4)), test_nn._targets(r[4], "float32")[0]), True, True),
    "test_conv.LAYERS": (lambda: test_conv.LAYERS, lambda r: r[1]()(_tensor(r[3])), True, True),
    "test_normalization.LAYERS": (lambda: test_normalization.LAYERS, lambda r: r[1]()(_tensor(r[3])), True, True),
    "test_activations_losses.ACTIVATIONS": (lambda: activations_table.ACTIVATIONS, lambda r: r[1](_tensor(r[3])),
                                            True, True),
    "test_activations_losses.LOSSES": (
        lambda: activations_table.LOSSES,
        lambda r: activations_table._call(r[1], _tensor(r[3]), _tensor(r[4]), "mean", "gd"), True, True),
    "test_activations_losses.CONTRASTIVE": (lambda: activations_table.CONTRASTIVE,
                                            lambda r: r[1](*map(_tensor, r[3]), reduction="mean"), True, True),
    "test_recurrent.GRADCHECK_ROWS": (lambda: test_recurrent.GRADCHECK_ROWS, _recurrent, True, False),
    "test_recurrent.ROWS": (lambda: test_recurrent.ROWS, _recurrent, False, True),
}
# what no table row can hold, and the tests that check it instead (they must exist)
LAYERS_ELSEWHERE = {"Embedding": ("test_recurrent", "test_embedding_gradcheck", "test_embedding_matches_torch")}
FUNCTIONS_ELSEWHERE = {"SyncNormalize": ("test_normalization", "test_sync_batchnorm_gradcheck_in_a_world_of_one")}


def ran(tables=None) -> dict[str, tuple[set[type], set[type]]]:
    """table -> (the Module classes, the Function classes) its rows ran."""
    found = {}
    module_call, function_call = Module.__call__, Function.__call__
    with pytest.MonkeyPatch.context() as patch, gd.use_backend("numpy"):
        for name, (rows, run, _, _) in (tables or TABLES).items():
            modules: set[type] = set()
            functions: set[type] = set()

            def noting_module(self, *args, _seen=modules, **kwargs):
                _seen.add(type(self))
                return module_call(self, *args, **kwargs)

            def noting_function(self, *args, _seen=functions):
                _seen.add(type(self))
                return function_call(self, *args)

            patch.setattr(Module, "__call__", noting_module)
            patch.setattr(Function, "__call__", noting_function)
            for row in rows():
                run(row)
            found[name] = (modules, functions)
    return found


def _elsewhere(exempt: dict) -> set[str]:
    for module_name, *tests in exempt.values():
        module = sys.modules.get(module_name) or __import__(module_name)
        assert all(callable(getattr(module, test, None)) for test in tests), (module_name, tests)
    return set(exempt)


def layers_without_rows(found=None) -> set[str]:
    """The Module classes gd.nn exports that no gradient-checked row runs, or no row compared
    with PyTorch (``found``: what ``ran()`` gave)."""
    found = ran() if found is None else found
    checked = set().union(*(found[t][0] for t, (_, _, grad, _) in TABLES.items() if grad and t in found))
    compared = set().union(*(found[t][0] for t, (_, _, _, torch) in TABLES.items() if torch and t in found))
    exported = {name for name in nn.__all__
                if isinstance(getattr(nn, name), type) and issubclass(getattr(nn, name), Module)} - {"Module"}
    return {name for name in exported if getattr(nn, name) not in checked & compared} - _elsewhere(LAYERS_ELSEWHERE)


def _gdnet_functions() -> set[type]:
    """Every Function subclass defined in a gdnet module (and still there, by that name)."""
    found, stack = set(), [Function]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            module = sys.modules.get(sub.__module__)
            if sub.__module__.startswith("gdnet.") and getattr(module, sub.__name__, None) is sub:
                found.add(sub)
    return found


def functions_without_cases(found=None) -> set[str]:
    """The primitives of gdnet that no gradient-checked row runs."""
    found = ran() if found is None else found
    checked = set().union(*(found[t][1] for t, (_, _, grad, _) in TABLES.items() if grad and t in found))
    return {cls.__name__ for cls in _gdnet_functions() - checked} - _elsewhere(FUNCTIONS_ELSEWHERE)


@pytest.fixture(scope="module")
def found():
    return ran()


def test_every_exported_layer_runs_in_a_gradient_checked_row_and_a_row_compared_with_torch(found):
    assert len(found["test_nn.LAYERS"][0]) > 5 and nn.Linear in found["test_nn.LAYERS"][0]
    assert layers_without_rows(found) == set()


def test_every_primitive_runs_in_a_gradient_checked_row(found):
    assert ops.Linear in found["test_ops.CASES"][1] and len(_gdnet_functions()) > 30
    assert functions_without_cases(found) == set()


# -- a primitive: ops.py (class, its function, its Tensor method), a row in test_ops.CASES ---------
class Square(Function):
    """a * a (the toy primitive of the recipe)."""

    saves = (0,)

    def forward(self, xp, a):
        self.a = a
        return a * a

    def backward(self, g):
        return (2.0 * self.a * g,)


def test_a_new_primitive_by_the_recipe(monkeypatch):
    # 1. gdnet/ops.py: the class, its function right after it, a Tensor method where PyTorch has one
    Square.__module__ = "gdnet.ops"
    monkeypatch.setattr(ops, "Square", Square, raising=False)
    monkeypatch.setattr(gd.Tensor, "square", None, raising=False)  # removed again after the test
    monkeypatch.setitem(ops.TENSOR_METHODS, "square", None)

    @ops.tensor_method("square")
    def square(a):
        return Square()(as_tensor(a))

    assert ops.TENSOR_METHODS["square"] is square and gd.Tensor.square is square
    assert functions_without_cases() == {"Square"}  # the coverage test would fail until step 2
    # 2. tests/test_ops.py: a row in CASES
    case = test_ops.Case("square", lambda a: a.square(), (test_ops.N(3, 4),))
    monkeypatch.setattr(test_ops, "CASES", [*test_ops.CASES, case])
    assert functions_without_cases() == set()
    with gd.use_backend("numpy") as backend:
        test_ops.test_gradcheck(case, backend, "float64")
        test_ops.test_output_and_gradients_stay_on_device_and_dtype(case, backend, "float32")
        test_ops.test_matches_torch(case, backend)


# -- a layer: layers.py, nn/__init__.py, a layer-table row, test_input_checks rows ---------------
class Scale(Module):
    """y = x * weight, one learned factor per feature (the toy layer of the recipe).

    Args:
        features: size of the last axis.

    Shape:
        input (..., features) -> output (..., features); weight (features,).

    Example:
        >>> gd.nn.Scale(3)(gd.ones((2, 3))).shape
        (2, 3)
    """

    def __init__(self, features: int):
        super().__init__()
        check_sizes("Scale", features=features)
        self.features = features
        self.weight = new_parameter((features,))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.uniform_(self.weight, 0.5, 1.5)

    def forward(self, x):
        x = as_tensor(x)
        check_dtype_matches("Scale", x, self.weight)
        return x * self.weight

    def extra_repr(self) -> str:
        return f"features={self.features}"


def _torch_scale(torch):
    class TorchScale(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(4))

        def forward(self, x):
            return x * self.weight

    return TorchScale()


def test_a_new_layer_by_the_recipe(monkeypatch):
    # 1. gdnet/nn/layers.py: the class above; 2. gdnet/nn/__init__.py: export it
    monkeypatch.setattr(nn, "Scale", Scale, raising=False)
    monkeypatch.setattr(nn, "__all__", [*nn.__all__, "Scale"])
    assert layers_without_rows() == {"Scale"}  # the coverage tests would fail until steps 3 and 4
    with pytest.raises(AssertionError):
        test_input_checks.test_every_layer_is_in_the_table()
    # 3. tests/test_nn.py: a row in the layer table; 4. tests/test_input_checks.py: its rows
    row = ("scale", lambda: nn.Scale(4), _torch_scale, test_nn.N(3, 4))
    monkeypatch.setattr(test_nn, "LAYERS", [*test_nn.LAYERS, row])
    checks = ("Scale", lambda: nn.Scale(4), (3, 4), "any")
    monkeypatch.setattr(test_input_checks, "TAKES_A_TENSOR", [*test_input_checks.TAKES_A_TENSOR, checks])
    with pytest.raises(AssertionError):  # it has weights: a WITH_PARAMETERS row too
        test_input_checks.test_every_layer_with_parameters_has_a_dtype_row()
    dtypes = ("Scale", lambda: nn.Scale(4), (3, 4), "Scale: input has dtype {got} and weight has dtype float32")
    monkeypatch.setattr(test_input_checks, "WITH_PARAMETERS", [*test_input_checks.WITH_PARAMETERS, dtypes])
    assert layers_without_rows() == set()
    test_input_checks.test_every_layer_is_in_the_table()
    test_input_checks.test_every_layer_with_parameters_has_a_dtype_row()
    with gd.use_backend("numpy") as backend:
        test_nn.test_layer_gradcheck(backend, "float64", *row[1:])
        test_nn.test_layer_output_stays_on_device_and_dtype(backend, *row[1:])
        test_nn.test_layer_matches_torch(backend, *row[1:])
        test_input_checks.test_arrays_of_the_backend_are_taken_wherever_a_tensor_is(backend, *checks[1:])
        test_input_checks.test_python_lists_are_refused_naming_gd_tensor(backend, *checks[1:])
        test_input_checks.test_an_integer_input_to_a_float_layer_is_refused_naming_both_dtypes(backend, *dtypes[1:])
        test_input_checks.test_a_float64_input_to_a_float32_model_is_refused_naming_both_dtypes(
            backend, "float64", *dtypes[1:])


# -- an optimizer: optim/<name>.py, optim/__init__.py, rows in tests/test_optim.py ---------------
def scale_by_rprop() -> Transform:
    """Rprop's step (Riedmiller & Braun, 1993), as torch.optim.Rprop: a step size per element that
    grows by etas[1] while the gradient keeps its sign and shrinks by etas[0] when it flips (that
    step then moves nothing), kept within step_sizes; the update is -sign(gradient) * step."""

    def init(param, group):
        return {"prev": zeros_like(param), "step_size": full_like(param, group["lr"])}

    def update(u, state, param, group):
        xp = namespace_of(u)
        (shrink, grow), (low, high) = group["etas"], group["step_sizes"]
        turn = u * state["prev"]
        step = state["step_size"] * xp.where(turn > 0, grow, xp.where(turn < 0, shrink, 1.0))
        state["step_size"] = step = xp.clip(step, min=low, max=high)
        state["prev"] = grad = xp.where(turn < 0, 0.0, u)
        return -xp.sign(grad) * step

    def check(group):
        group["lr"] = checked_number(group["lr"], "learning rate")
        for key in ("etas", "step_sizes"):
            pair = group[key]
            if not (isinstance(pair, tuple) and len(pair) == 2 and 0 < pair[0] <= pair[1]):
                raise ValueError(f"Invalid {key}: {pair!r} (expected a pair 0 < low <= high)")

    return Transform(init, update, check)


class Rprop(optim.Optimizer):
    """Resilient backpropagation (Riedmiller & Braun, 1993): ``chain(scale_by_rprop())``."""

    transform = chain(scale_by_rprop())

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
        super().__init__(params, dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes)))


RPROP_ROWS = [
    ("rprop-default", "Rprop", {}, None),
    ("rprop-custom", "Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-4, 1.0)), None),
    ("rprop-two-groups", "Rprop", dict(lr=0.01), [(["weight"], {"etas": (0.4, 1.1)}), (["bias"], {"lr": 0.05})]),
]
RPROP_BAD = [("Rprop", dict(etas=(0.0, 1.2)), ValueError, "Invalid etas"),
             ("Rprop", dict(step_sizes=(-1.0, 1.0)), ValueError, "Invalid step_sizes")]


def test_a_new_optimizer_by_the_recipe(monkeypatch):
    # 1. gdnet/optim/rprop.py: the link and the class above; 2. gdnet/optim/__init__.py: export it
    monkeypatch.setattr(optim, "Rprop", Rprop, raising=False)
    monkeypatch.setattr(optim, "__all__", [*optim.__all__, "Rprop"])
    assert optim.optimizers()["rprop"] is Rprop
    args = cli.make_parser().parse_args(["train", "--optimizer", "rprop", "--lr", "0.02"])  # the command offers it
    assert type(cli.make_optimizer(args, [gd.zeros((2,), requires_grad=True)])) is Rprop
    with pytest.raises(ValueError, match="Rprop takes no weight_decay"):
        cli.make_optimizer(cli.make_parser().parse_args(["train", "--optimizer", "rprop", "--weight-decay", "0.1"]),
                           [gd.zeros((2,), requires_grad=True)])
    with pytest.raises(AssertionError):  # the coverage test would fail until step 3
        test_optim.test_every_exported_optimizer_has_rows()
    # 3. tests/test_optim.py: rows in ROWS, an entry in DESCENT, BAD rows for its settings
    monkeypatch.setattr(test_optim, "ROWS", [*test_optim.ROWS, *RPROP_ROWS])
    for row_id, name, kwargs, groups in RPROP_ROWS:
        monkeypatch.setitem(test_optim.ROW, row_id, (name, kwargs, groups))
    for table in (test_optim.DESCENT, test_optim.ROSENBROCK):
        monkeypatch.setitem(table, "Rprop", dict(lr=0.05))
    monkeypatch.setattr(test_optim, "BAD", [*test_optim.BAD, *RPROP_BAD])
    test_optim.test_every_exported_optimizer_has_rows()
    with gd.use_backend("numpy") as backend:
        for row_id, *_ in RPROP_ROWS:  # 100 steps equal torch.optim.Rprop's, and resume mid-run
            test_optim.test_matches_torch_and_resumes_mid_run(backend, "float64", row_id)
        for problem, start in ((test_optim._quadratic, np.zeros((2, 3))),
                               (test_optim._rosenbrock, np.array([-1.2, 1.0]))):
            test_optim.test_each_optimizer_descends(backend, "float64", "Rprop", problem, start)
        test_optim.test_gradients_are_never_written(backend, "float64", "Rprop")
        for bad in RPROP_BAD:
            test_optim.test_bad_hyperparameters(backend, *bad)
