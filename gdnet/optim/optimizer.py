"""Optimizer: parameter groups, per-parameter state, zero_grad, state_dict."""

from __future__ import annotations

import copy
from typing import Any, Iterable

from .._creation import as_array_like
from ..autograd import Tensor


class Optimizer:
    """Base class: holds parameter groups (dicts with "params" and hyperparameters) and the
    per-parameter state. Subclasses give ``defaults`` and implement ``step()``.

    Args:
        params: an iterable of Tensors, or of dicts {"params": [...], **hyperparameters}.
        defaults: hyperparameters for groups that do not set their own.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}  # id(param) -> state
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors; got {type(p).__name__}")
            if not p.requires_grad:
                raise ValueError("optimizer got a tensor that does not require grad")
            if id(p) in seen:
                raise ValueError("a parameter appears more than once in the optimizer's parameter groups")
            seen.add(id(p))
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        group["params"] = params
        self._validate(group)
        self.param_groups.append(group)

    def _validate(self, group: dict[str, Any]) -> None:
        """Raise ValueError naming a hyperparameter out of range (subclasses extend)."""
        if group["lr"] < 0.0:
            raise ValueError(f"Invalid learning rate: {group['lr']} (expected >= 0)")

    def zero_grad(self) -> None:
        """Forget the gradients of every parameter (set to None)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self) -> None:
        raise NotImplementedError

    # -- saving ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{"state": {index: {name: array}}, "param_groups": [{hyperparameters, "params": [index]}]}
        with parameters numbered in group order, as PyTorch does."""
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
        """Restore hyperparameters and state saved by ``state_dict`` of the same optimizer."""
        kind = state_dict.get("type", type(self).__name__)
        if kind != type(self).__name__:
            raise ValueError(f"state dict is from a {kind} optimizer; expected {type(self).__name__}")
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(g["params"]) != len(mine["params"]) for g, mine in zip(groups, self.param_groups)
        ):
            raise ValueError(
                "state dict's parameter groups do not match this optimizer's: "
                f"sizes {[len(g['params']) for g in groups]}, expected {[len(g['params']) for g in self.param_groups]}"
            )
        params = [p for g in self.param_groups for p in g["params"]]
        self.state = {}
        for key, entry in state_dict["state"].items():
            p = params[int(key)]
            self.state[id(p)] = {
                name: as_array_like(v, p.data) if hasattr(v, "shape") and v.shape == p.data.shape else copy.deepcopy(v)
                for name, v in entry.items()
            }
        for mine, saved in zip(self.param_groups, groups):
            for k, v in saved.items():
                if k != "params":
                    mine[k] = v

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"
