"""Module and Parameter: containers of learnable arrays, in PyTorch's shape."""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any, Iterator, NamedTuple

from .._creation import as_array_like, filled
from ..autograd import Tensor, as_tensor, increment_version, resolve_dtype


class Parameter(Tensor):
    """A Tensor a Module learns: ``requires_grad`` is on, and Modules collect it."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype}, device={self.device})"


def new_parameter(shape: tuple[int, ...], fill: float = 0.0) -> Parameter:
    """A float32 Parameter of ``shape`` on the active backend holding ``fill``: how a layer makes
    its weights before ``reset_parameters`` draws their values."""
    return Parameter(filled(shape, fill))


def new_buffer(shape: tuple[int, ...], fill: float, dtype: Any = None) -> Tensor:
    """A Tensor of ``shape`` on the active backend holding ``fill``, in ``dtype`` (default
    float32), for ``register_buffer``."""
    return Tensor(filled(shape, fill, dtype))


def check_sizes(name: str, **sizes: Any) -> None:
    """Raise ValueError unless every size is a positive int (784, not 784.5, True or -1)."""
    for key, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name}: {key} must be a positive integer; got {value!r}")


def _few(names: list[str]) -> str:
    return "[" + ", ".join(repr(n) for n in names[:3]) + (", ...]" if len(names) > 3 else "]")


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` found: model entries the state lacked, state entries the model lacks."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of layers and models.

    Assigning a Parameter or a Module to an attribute registers it, so ``parameters()``,
    ``state_dict()`` and ``train()``/``eval()`` reach it. As in PyTorch, a name stays what it
    was registered as: assigning a Tensor (or an array) to a buffer's name replaces the buffer
    (``self.running_mean = self.running_mean * 0.9`` keeps it in ``state_dict()``), and a
    parameter's name takes only a Parameter or None. Subclasses implement ``forward``.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        if not isinstance(value, (Parameter, Module)):
            if name in self._buffers:
                self._buffers[name] = None if value is None else as_tensor(value, f"buffer {name!r}")
                return
            for registry, kind, expected in ((self._parameters, "parameter", "a gd.nn.Parameter"),
                                             (self._modules, "child module", "a gd.nn.Module")):
                if name in registry and value is not None:
                    raise TypeError(f"cannot assign a {type(value).__name__} to the {kind} {name!r}; expected "
                                    f"{expected} or None (delete the attribute first to reuse the name)")
                if name in registry:  # None: the name stays registered, as in PyTorch
                    registry[name] = None
                    object.__setattr__(self, name, None)
                    return
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        # parameters and children are plain attributes too, so forward() reads them without
        # a __getattr__ call (forward runs every step)
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # reached only for names missing from __dict__: buffers, and misspellings
        for registry in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__.get(registry)
            if found is not None and name in found:
                return found[name]
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        registered = False
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                registered = True
        if name in self.__dict__:
            object.__delattr__(self, name)
        elif not registered:
            raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def register_buffer(self, name: str, value: Tensor | None) -> None:
        """State saved in state_dict but not learned (e.g. running statistics)."""
        self._buffers[name] = value

    # -- running -----------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def train(self, mode: bool = True) -> "Module":
        """Training behaviour (dropout on, batch statistics) for this module and its children."""
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        """Evaluation behaviour: the same as ``train(False)``."""
        return self.train(False)

    # -- walking the tree --------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator["Module"]:
        yield from self._modules.values()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                if param is not None and id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        for module_name, module in self.named_modules():
            for name, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buf

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (set to None, as PyTorch's default)."""
        for param in self.parameters():
            param.grad = None

    # -- saving ------------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, Any]":
        """Parameter and buffer arrays by PyTorch-style dotted name (on the model's device;
        the arrays are the live ones, so copy before changing them)."""
        state: OrderedDict[str, Any] = OrderedDict()
        for name, param in self.named_parameters():
            state[name] = param.data
        for name, buf in self.named_buffers():
            state[name] = buf.data
        return state

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into this model's parameters and buffers.

        Values may be host (NumPy) arrays, Tensors, arrays of any backend, or anything NumPy
        reads (a CPU torch tensor after ``.detach()``). Each is copied to the parameter's
        device and dtype; shapes must match exactly.

        Returns:
            ``IncompatibleKeys(missing_keys, unexpected_keys)``, as PyTorch's NamedTuple.
        Raises:
            KeyError: with ``strict`` (the default), keys missing or unexpected.
        Warns:
            UserWarning: with ``strict=False``, when no key matches (nothing is loaded: the state
                is of another model, or its names carry a prefix such as "module.").
        """
        targets = dict(self.named_parameters())
        targets.update(self.named_buffers())
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if strict and (missing or unexpected):
            raise KeyError(
                f"state dict does not match {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        for name, target in targets.items():
            if name not in state:
                continue
            value = state[name]
            shape = tuple(getattr(value, "shape", ()))
            if shape != target.shape:
                raise ValueError(
                    f"state dict entry {name!r} has shape {shape}; expected {target.shape}"
                )
        for name, target in targets.items():
            if name in state:
                target.data = as_array_like(state[name], target.data)
        # new values, as PyTorch's in-place copy: graphs recorded before refuse to backward
        increment_version(target for name, target in targets.items() if name in state)
        if targets and len(missing) == len(targets):
            warnings.warn(
                f"load_state_dict(strict=False) loaded nothing into {type(self).__name__}: none of its "
                f"{len(targets)} keys {_few(list(targets))} is in the state, whose keys are {_few(unexpected)}",
                stacklevel=2)
        return IncompatibleKeys(missing, unexpected)

    def to(self, dtype: Any) -> "Module":
        """Cast floating parameters and buffers to ``dtype`` ('float64', 'float32')."""
        for tensor in list(self.parameters()) + [b for _, b in self.named_buffers()]:
            xp = tensor.xp
            if xp.isdtype(tensor.dtype, "real floating"):
                target = resolve_dtype(xp, dtype)
                tensor.data = xp.astype(tensor.data, target)
        return self

    # -- printing ----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"
