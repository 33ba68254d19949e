"""Optimizer: parameter groups, per-parameter state, step(), zero_grad, state_dict."""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable

from .._creation import as_array_like
from ..autograd import _ONE_DEVICE, NO_SCOPE, Tensor, device_scope, enable_grad, increment_version
from ..fast_paths import lookup
from .transform import Transform, zeros_like


class Optimizer:
    """Base class: parameter groups (dicts with "params" and hyperparameters), per-parameter
    state, and PyTorch's ``step()`` surface over an update rule written as a ``Transform``.

    A subclass sets ``transform`` (a chain, see ``gdnet.optim.transform``) and passes its
    defaults to ``__init__``; the base validates groups with ``transform.check``, keeps each
    parameter's state (``state["step"]`` counts its updates) and applies
    ``p.data += transform.update(grad, state, p.data, group)`` in place. A subclass may name a
    fast path (``fast_path``, see ``gdnet.fast_paths``) that updates all parameters of a group
    in one call, and call it in ``_fast_step``.

    Args:
        params: an iterable of Tensors, or of dicts {"params": [...], **hyperparameters}.
        defaults: hyperparameters for groups that do not set their own.
    """

    transform: Transform | None = None
    # name of a fast path (gdnet.fast_paths) a backend may register for the whole update of a
    # group's parameters (see _fast_step)
    fast_path: str | None = None

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]):
        if callable(getattr(params, "parameters", None)) and not isinstance(params, (list, tuple)):
            raise TypeError(
                f"params should be an iterable of Tensors or of dicts (parameter groups); got the "
                f"{type(params).__name__} itself: pass model.parameters(), e.g. "
                f"{type(self).__name__}(model.parameters(), lr=...)"
            )
        if isinstance(params, (Tensor, dict, set)):
            raise TypeError(
                "params should be an iterable of Tensors or of dicts (parameter groups), in a stable "
                f"order; got {type(params).__name__} (pass a list, e.g. model.parameters())"
            )
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}  # id(param) -> state
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            if not isinstance(group, dict):
                raise TypeError(f"parameter groups must all be dicts; got a {type(group).__name__} among them")
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group {"params": [...], **hyperparameters}; missing hyperparameters take the defaults."""
        if "params" not in group:
            raise ValueError(f"a parameter group needs a 'params' entry; got keys {sorted(group)}")
        group = dict(group)
        params = group["params"]
        if isinstance(params, set):
            raise TypeError("a group's params must be in a stable order (a list or tuple); got a set")
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors; got {type(p).__name__}")
            if not p.requires_grad:
                raise ValueError("optimizer got a tensor that does not require grad")
            if not p.is_leaf:
                raise ValueError("optimizer can only optimize leaf tensors (parameters); got an operation's result")
            if id(p) in seen:
                raise ValueError("a parameter appears more than once in the optimizer's parameter groups")
            seen.add(id(p))
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        group["params"] = params
        self._validate(group)
        self.param_groups.append(group)

    def _validate(self, group: dict[str, Any]) -> None:
        """Raise ValueError naming a hyperparameter out of range; store numbers as Python floats."""
        if self.transform is not None:
            self.transform.check(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient: None, or (``set_to_none=False``) new zero arrays
        (never zeroed in place: gradient arrays may be shared)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else Tensor(zeros_like(p.grad.data))

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient, in place, on its device.

        Args:
            closure: optional; re-evaluates the model and returns the loss (called first, with
                gradients recorded), as in PyTorch.
        Returns:
            the closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        if self.transform is None:
            raise NotImplementedError(f"{type(self).__name__} sets no transform and does not override step()")
        states = self.state
        for group in self.param_groups:
            params, grads, group_states = [], [], []
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                data = p.data
                state = states.get(id(p))
                if state is None:
                    state = states[id(p)] = self.transform.init(data, group)
                    state["step"] = 0
                state["step"] += 1
                params.append(data)
                grads.append(grad.data)
                group_states.append(state)
            if not params:
                continue
            scope = device_scope(params[0])
            if scope is NO_SCOPE:
                self._update(params, grads, group_states, group)
            else:
                with scope:
                    self._update(params, grads, group_states, group)
        self._mark_updated()
        return loss

    def _mark_updated(self) -> None:
        """Tell autograd the parameters changed in place: a graph recorded before this step that
        saved one of them now refuses to backward, instead of giving a wrong gradient."""
        increment_version(p for group in self.param_groups for p in group["params"] if p.grad is not None)

    def _update(self, params: list, grads: list, states: list[dict], group: dict) -> None:
        """One group's update, in place: the fast path where it applies, else the chain."""
        kernel = self._kernel(params, grads)
        if kernel is not None and self._fast_step(kernel, params, grads, states, group):
            return
        update = self.transform.update
        for data, grad, state in zip(params, grads, states):
            data += update(grad, state, data, group)

    def _kernel(self, params: list, grads: list) -> Callable[..., Any] | None:
        """The fast path of the arrays' backend for this optimizer, where every parameter and
        gradient is an array of one type on one device and each gradient has its parameter's
        dtype; else None (the reference chain runs)."""
        if self.fast_path is None:
            return None
        first = params[0]
        kernel = lookup(self.fast_path, first)
        if kernel is None:
            return None
        kind = type(first)
        device = None if kind in _ONE_DEVICE else first.device
        for data, grad in zip(params, grads):
            if type(data) is not kind or type(grad) is not kind or grad.dtype != data.dtype:
                return None
            if device is not None and data.device != device:
                return None
        return kernel

    def _fast_step(self, kernel: Callable[..., Any], params: list, grads: list, states: list[dict],
                   group: dict) -> bool:
        """Run the backend's ``kernel`` for all of a group's parameters (the whole update, in
        place); False where it does not apply, so the reference chain runs instead."""
        return False

    # -- saving ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{"type", "state": {index: {name: value}}, "param_groups": [{hyperparameters, "params":
        [index]}]} with parameters numbered in group order, as PyTorch does. State arrays are
        the live ones (copy them, e.g. to the host, to keep a snapshot)."""
        index = {}
        groups = []
        for group in self.param_groups:
            entry = {k: v for k, v in group.items() if k != "params"}
            entry["params"] = []
            for p in group["params"]:
                index[id(p)] = len(index)
                entry["params"].append(index[id(p)])
            groups.append(entry)
        state = {index[pid]: dict(s) for pid, s in self.state.items() if pid in index}
        return {"type": type(self).__name__, "state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and state saved by ``state_dict`` of the same optimizer class
        over parameters of the same shapes; arrays are copied onto each parameter's device."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"an optimizer state dict is a dict; got {type(state_dict).__name__}")
        absent = [key for key in ("state", "param_groups") if key not in state_dict]
        if absent or not isinstance(state_dict["state"], dict):
            raise ValueError(
                f"optimizer state dict lacks {absent}; expected what {type(self).__name__}.state_dict() returns: "
                f"keys 'state' and 'param_groups' (got {sorted(state_dict)})"
            )
        kind = state_dict.get("type", type(self).__name__)
        if kind != type(self).__name__:
            raise ValueError(f"state dict is from a {kind} optimizer; expected {type(self).__name__}")
        groups = state_dict["param_groups"]
        if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) and "params" in g for g in groups):
            raise ValueError("state dict's param_groups must be a list of dicts, each with a 'params' list")
        if len(groups) != len(self.param_groups) or any(
            len(g["params"]) != len(mine["params"]) for g, mine in zip(groups, self.param_groups)
        ):
            raise ValueError(
                "state dict's parameter groups do not match this optimizer's: "
                f"sizes {[len(g['params']) for g in groups]}, expected {[len(g['params']) for g in self.param_groups]}"
            )
        params = [p for g in self.param_groups for p in g["params"]]
        state = {}
        for key, entry in state_dict["state"].items():
            index = int(key) if isinstance(key, int) or (isinstance(key, str) and key.isdigit()) else -1
            if not 0 <= index < len(params):
                raise ValueError(
                    f"state dict holds state for parameter {key!r}; this optimizer's parameters are numbered "
                    f"0 to {len(params) - 1}"
                )
            p = params[index]
            restored = {}
            for name, value in entry.items():
                if hasattr(value, "shape"):
                    if tuple(value.shape) != p.shape:
                        raise ValueError(
                            f"state dict's {name!r} for parameter {key} has shape {tuple(value.shape)}; "
                            f"expected {p.shape}, the parameter's"
                        )
                    restored[name] = as_array_like(value, p.data)
                else:
                    restored[name] = copy.deepcopy(value)
            state[id(p)] = restored
        loaded = []
        for mine, saved in zip(self.param_groups, groups):
            group = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            group["params"] = mine["params"]
            self._validate(group)
            loaded.append(group)
        for mine, group in zip(self.param_groups, loaded):
            mine.update(group)
        self.state = state

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"
