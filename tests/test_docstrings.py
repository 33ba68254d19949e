"""The public surface documents itself: every function of gdnet.ops and gdnet.nn.functional has
a summary line, its shapes and dtypes, and the errors it raises (as the layers' docstrings do)."""

from __future__ import annotations

import inspect

import pytest

from gdnet import ops
from gdnet.nn import functional as F

NOT_AN_OP = {"tensor_method"}  # the decorator that makes an op's function a Tensor method


def _public_functions(module) -> dict:
    return {name: getattr(module, name) for name in module.__all__
            if inspect.isfunction(getattr(module, name)) and name not in NOT_AN_OP}


@pytest.mark.parametrize("module", [ops, F], ids=["gdnet.ops", "gdnet.nn.functional"])
def test_every_public_function_gives_its_shapes_dtypes_and_errors(module):
    functions = _public_functions(module)
    assert len(functions) > 25
    lacking = {}
    for name, fn in functions.items():
        doc = inspect.getdoc(fn) or ""
        missing = [part for part in ("Shape", "Dtype", "Raises") if part not in doc]
        if not doc.split("\n")[0].strip():
            missing.append("a summary line")
        if missing:
            lacking[name] = missing
    assert lacking == {}


def test_the_surface_lists_every_public_function_it_defines():
    for module in (ops, F):
        defined = {name for name, value in vars(module).items() if inspect.isfunction(value)
                   and value.__module__ == module.__name__ and not name.startswith("_")}
        helpers = {name for name in defined if name.startswith("check_")} | {"padding_row"}
        assert defined - helpers <= set(module.__all__), defined - helpers - set(module.__all__)
