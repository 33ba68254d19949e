"""Learning-rate schedules with PyTorch's names and semantics.

A scheduler owns the ``lr`` of each of its optimizer's parameter groups. Construct it after the
optimizer (it records each group's ``initial_lr`` and sets the first rate), call
``scheduler.step()`` after ``optimizer.step()`` (per epoch or per batch, as the schedule is
written), read the rates with ``get_last_lr()``, and save it with ``state_dict()`` next to the
optimizer's. Rates are Python floats, so stepping a schedule costs no device work.

    opt = gd.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    warmup = gd.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=5)
    cosine = gd.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=95)
    schedule = gd.optim.lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[5])
    for epoch in range(100):
        train_one_epoch(model, opt)
        schedule.step()
"""

from __future__ import annotations

import copy
import math
import types
from bisect import bisect_right
from collections import Counter
from typing import Any, Callable, Iterable, Sequence

from .optimizer import Optimizer
from .transform import checked_number


def _per_group(name: str, optimizer: Optimizer, value: Any) -> list:
    """``value`` for every parameter group: a list or tuple must have one entry per group."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(f"{name} has {len(value)} values; expected one per parameter group "
                             f"({len(optimizer.param_groups)})")
        return list(value)
    return [value] * len(optimizer.param_groups)


def _check_optimizer(optimizer: Any) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"a learning-rate scheduler needs a gdnet Optimizer; got {type(optimizer).__name__}")


def _factor(name: str, value: Any) -> float:
    """A decay factor (gamma): a finite number >= 0, as a Python float (NaN, -1 or inf refused)."""
    return checked_number(value, name)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(name: str, value: Any) -> None:
    if not _is_int(value) or value <= 0:
        raise ValueError(f"Expected positive integer {name}, but got {value!r}")


def _non_negative_int(name: str, value: Any) -> int:
    if not _is_int(value) or value < 0:
        raise ValueError(f"Expected non-negative integer {name}, but got {value!r}")
    return value


def _choice(name: str, value: Any, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in options:
        expected = " or ".join(repr(option) for option in options)
        raise ValueError(f"Invalid {name}: {value!r} (expected {expected})")
    return value


def _check_last_epoch(value: Any) -> None:
    # -1 starts a schedule; a step index resumes one (PyTorch's convention)
    if not _is_int(value) or value < -1:
        raise ValueError(f"Expected integer last_epoch >= -1 (-1 starts the schedule), but got {value!r}")


def _per_group_numbers(name: str, optimizer: Optimizer, value: Any, **bounds: Any) -> list[float]:
    """``_per_group`` with each value checked by ``checked_number`` (``bounds`` as there)."""
    values = _per_group(name, optimizer, value)
    label = (lambda i: f"{name}[{i}]") if isinstance(value, (list, tuple)) else (lambda i: name)
    return [checked_number(v, label(i), **bounds) for i, v in enumerate(values)]


class LRScheduler:
    """Base class: sets each group's lr to ``get_lr()`` on every ``step()``.

    Subclasses compute the next rates in ``get_lr()`` from ``self.last_epoch`` (the number of
    ``step()`` calls so far, 0 at construction), the current ``group["lr"]`` and
    ``self.base_lrs`` (the groups' ``initial_lr``), as PyTorch's chainable form does.

    Args:
        optimizer: the optimizer whose learning rates this schedule sets.
        last_epoch: index of the last step taken; -1 starts the schedule (other values resume
            one whose groups already hold ``initial_lr``).
    """

    _is_initial = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        _check_optimizer(optimizer)
        _check_last_epoch(last_epoch)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param_groups[{i}] has no 'initial_lr', needed to resume a schedule at "
                                   f"last_epoch={last_epoch}; load the optimizer's state dict first")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The rates for step ``self.last_epoch`` (subclasses)."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The rates the last ``step()`` set, one per parameter group."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance the schedule one step and set every group's lr."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            # jump to ``epoch`` (SequentialLR at a milestone): the closed form, where there is one
            self.last_epoch = epoch
            values = self._closed_form_lr() if hasattr(self, "_closed_form_lr") else self.get_lr()
        self._set_lrs(values)

    def _set_lrs(self, values: Iterable[float]) -> None:
        values = list(values)
        for i, lr in enumerate(values):
            # the optimizer checked its lr once; a schedule (a lambda, say) must not slip it NaN or inf.
            # Signs are left alone: PyTorch's linear three-phase OneCycleLR ends a rounding error below 0
            if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr):
                raise ValueError(f"{type(self).__name__} computed the learning rate {lr!r} for parameter group "
                                 f"{i} at step {self.last_epoch}; expected a finite number")
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    # -- saving ------------------------------------------------------------------------------
    _UNSAVED: tuple[str, ...] = ("optimizer",)

    def state_dict(self) -> dict[str, Any]:
        """Everything the schedule keeps but the optimizer (copied), and its type."""
        state = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in self._UNSAVED}
        state["type"] = type(self).__name__
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by ``state_dict`` of the same scheduler class."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"a scheduler state dict is a dict; got {type(state_dict).__name__}")
        kind = state_dict.get("type", type(self).__name__)
        if kind != type(self).__name__:
            raise ValueError(f"state dict is from a {kind} scheduler; expected {type(self).__name__}")
        missing = [key for key in self.__dict__ if key not in self._UNSAVED and key not in state_dict]
        if missing:
            raise ValueError(f"{type(self).__name__} state dict lacks {missing}; expected what "
                             f"{type(self).__name__}.state_dict() returns")
        self.__dict__.update({k: copy.deepcopy(v) for k, v in state_dict.items() if k != "type"})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, last_lr={self._last_lr})"


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(step).

    Args:
        optimizer: the optimizer.
        lr_lambda: a function of the step count giving a factor, or one function per group.
        last_epoch: see LRScheduler.

    Functions are not saved in ``state_dict`` (callable objects' attributes are).
    """

    _UNSAVED = ("optimizer", "lr_lambdas")

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1):
        _check_optimizer(optimizer)
        self.lr_lambdas = _per_group("lr_lambda", optimizer, lr_lambda)
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"lr_lambda should be a function of the step; got {type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else copy.deepcopy(fn.__dict__)
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("lr_lambdas", [None] * len(self.lr_lambdas))
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "lr_lambdas"})
        for fn, attributes in zip(self.lr_lambdas, saved):
            if attributes is not None:
                fn.__dict__.update(copy.deepcopy(attributes))


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ** (step // step_size): decay by ``gamma`` every ``step_size`` steps.

    Args:
        optimizer: the optimizer.
        step_size: steps between decays (a positive int).
        gamma: the decay factor.
        last_epoch: see LRScheduler.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        _positive_int("step_size", step_size)
        self.step_size = step_size
        self.gamma = _factor("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr = initial_lr * gamma ** (number of milestones <= step).

    Args:
        optimizer: the optimizer.
        milestones: the steps at which to decay (a milestone given twice decays twice).
        gamma: the decay factor.
        last_epoch: see LRScheduler.
    """

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1):
        self.milestones = Counter(milestones)
        for milestone in self.milestones:
            if isinstance(milestone, bool) or not isinstance(milestone, int) or milestone < 0:
                raise ValueError(f"MultiStepLR: milestones must be non-negative integers (steps); got {milestone!r}")
        self.gamma = _factor("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list[float]:
        passed = bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base * self.gamma**passed for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr = initial_lr * gamma ** step.

    Args:
        optimizer: the optimizer.
        gamma: the decay factor per step.
        last_epoch: see LRScheduler.
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = _factor("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class LinearLR(LRScheduler):
    """lr = initial_lr * factor, the factor going linearly from ``start_factor`` to ``end_factor``
    over ``total_iters`` steps and staying there (a warm-up when start_factor < end_factor).

    Args:
        optimizer: the optimizer.
        start_factor: the factor at step 0, in (0, 1].
        end_factor: the factor from step ``total_iters`` on, in [0, 1].
        total_iters: steps of the ramp.
        last_epoch: see LRScheduler.
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        self.start_factor = checked_number(start_factor, "start_factor", 0.0, 1.0, low_open=True)
        self.end_factor = checked_number(end_factor, "end_factor", 0.0, 1.0)
        _positive_int("total_iters", total_iters)
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        change = self.end_factor - self.start_factor
        ratio = 1.0 + change / (self.total_iters * self.start_factor + (self.last_epoch - 1) * change)
        return [lr * ratio for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list[float]:
        reached = min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * (self.start_factor + (self.end_factor - self.start_factor) * reached) for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * step / T_max)) / 2, the cosine part
    of SGDR (Loshchilov & Hutter, 2017, "SGDR: Stochastic Gradient Descent with Warm
    Restarts") without restarts, computed recursively as PyTorch does (so it composes with
    other schedules); past T_max it rises again.

    Args:
        optimizer: the optimizer.
        T_max: steps from initial_lr down to eta_min (a positive int).
        eta_min: the lowest rate.
        last_epoch: see LRScheduler.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        _positive_int("T_max", T_max)
        self.T_max = T_max
        self.eta_min = checked_number(eta_min, "eta_min")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, period, low = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and t > 0:
            return [low + (base - low) * (1 + math.cos(t * math.pi / period)) / 2 for base in self.base_lrs]
        if (t - 1 - period) % (2 * period) == 0:
            return [lr + (base - low) * (1 - math.cos(math.pi / period)) / 2
                    for base, lr in zip(self.base_lrs, self._current_lrs())]
        ratio = (1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period))
        return [ratio * (lr - low) + low for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list[float]:
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov & Hutter, 2017, "SGDR: Stochastic Gradient Descent with Warm Restarts"):
    lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2, where T_cur counts
    steps since the last restart and the period T_i starts at T_0 and is multiplied by T_mult at
    each restart.

    ``step(epoch)`` also takes a (fractional) epoch, e.g. ``step(epoch + i / iters)`` per batch.

    Args:
        optimizer: the optimizer.
        T_0: steps until the first restart (a positive int).
        T_mult: period growth factor per restart (an int >= 1).
        eta_min: the lowest rate.
        last_epoch: see LRScheduler.
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1):
        _positive_int("T_0", T_0)
        if not _is_int(T_mult) or T_mult < 1:
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult!r}")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = checked_number(eta_min, "eta_min")
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        cosine = (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """Advance one step, or jump to ``epoch`` (may be fractional)."""
        self._step_count += 1
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur %= self.T_i
                self.T_i *= self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    # walk the periods in integers: a floating-point log of the restart count can
                    # round down at a restart (log(1000, 10) = 2.9999999999999996), which would land
                    # on the end of the last period (eta_min) instead of the start of the next
                    start, period = 0, self.T_0
                    while epoch >= start + period:
                        start, period = start + period, period * self.T_mult
                    self.T_cur, self.T_i = epoch - start, period
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self._set_lrs(self.get_lr())


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2019, "Super-Convergence: Very Fast Training of Neural
    Networks Using Large Learning Rates"), stepped once per batch: the rate climbs from
    max_lr / div_factor to max_lr over the first ``pct_start`` of the steps, then anneals to
    initial_lr / final_div_factor (with ``three_phase``, back to the start first). With
    ``cycle_momentum`` the momentum (or Adam's beta1) moves the opposite way between
    ``max_momentum`` and ``base_momentum``.

    Args:
        optimizer: the optimizer.
        max_lr: the peak rate (or one per group), a finite number >= 0.
        total_steps: steps in the cycle; or give ``epochs`` and ``steps_per_epoch``.
        pct_start: fraction of the cycle spent climbing, in (0, 1) (in (0, 0.5] with
            ``three_phase``, whose descent takes as long again). A phase of a single step (e.g.
            total_steps=4, pct_start=0.25) takes that step straight to the phase's end value.
        anneal_strategy: "cos" or "linear".
        cycle_momentum: cycle momentum/beta1 too (the optimizer must have one).
        base_momentum, max_momentum: the momentum bounds (or one per group), in [0, 1) for
            Adam's beta1, finite and >= 0 for SGD's momentum.
        div_factor: initial_lr = max_lr / div_factor (a finite number > 0).
        final_div_factor: min_lr = initial_lr / final_div_factor (a finite number > 0).
        three_phase: climb, descend to initial_lr, then anneal to min_lr.
        last_epoch: see LRScheduler (counts batches).
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | Sequence[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | Sequence[float] = 0.85, max_momentum: float | Sequence[float] = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1):
        _check_optimizer(optimizer)
        if total_steps is not None:
            _positive_int("total_steps", total_steps)
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            _positive_int("epochs", epochs)
            _positive_int("steps_per_epoch", steps_per_epoch)
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        # pct_start 0 would skip the climb (initial_lr never used), 1 the annealing; with three
        # phases the climb and the descent each take pct_start of the cycle, so at most half
        top = 0.5 if three_phase else 1.0
        pct_start = checked_number(pct_start, "pct_start", 0.0, top, low_open=True, high_open=not three_phase)
        self.anneal_strategy = _choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
        div_factor = checked_number(div_factor, "div_factor", low_open=True)
        final_div_factor = checked_number(final_div_factor, "final_div_factor", low_open=True)
        up = float(pct_start * self.total_steps) - 1
        if three_phase:
            self._phases = [
                (up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._phases = [
                (up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        peaks = _per_group_numbers("max_lr", optimizer, max_lr)
        _check_last_epoch(last_epoch)
        if last_epoch == -1:
            for peak, group in zip(peaks, optimizer.param_groups):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("optimizer must support momentum or beta1 with `cycle_momentum` option enabled")
            self.use_beta1 = "betas" in optimizer.defaults
            # the optimizer's own range: Adam's beta1 in [0, 1), SGD's momentum a finite number >= 0
            bounds = {"high": 1.0, "high_open": True} if self.use_beta1 else {}
            highs = _per_group_numbers("max_momentum", optimizer, max_momentum, **bounds)
            lows = _per_group_numbers("base_momentum", optimizer, base_momentum, **bounds)
            if last_epoch == -1:
                for high, low, group in zip(highs, lows, optimizer.param_groups):
                    self._set_momentum(group, high)
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict, value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total steps is {self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr_from, lr_to, momentum_from, momentum_to) in enumerate(self._phases):
                if step <= end or i == len(self._phases) - 1:
                    # a phase of one step (pct_start * total_steps = 1) has no width: its step ends it
                    pct = (step - start) / (end - start) if end > start else 1.0
                    lrs.append(self._anneal(group[lr_from], group[lr_to], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[momentum_from], group[momentum_to], pct))
                    break
                start = end
        return lrs


class SequentialLR(LRScheduler):
    """Runs ``schedulers`` one after another, switching at ``milestones`` (e.g. a LinearLR
    warm-up, then CosineAnnealingLR). At a milestone the next schedule restarts from step 0.

    Args:
        optimizer: the optimizer all the schedulers belong to.
        schedulers: the schedules, in order (not ReduceLROnPlateau).
        milestones: the steps at which to switch, one fewer than schedulers: positive integers
            in increasing order.
        last_epoch: see LRScheduler.
    """

    _UNSAVED = ("optimizer", "_schedulers")

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int],
                 last_epoch: int = -1):
        _check_optimizer(optimizer)
        if len(schedulers) < 1:
            raise ValueError("SequentialLR expects at least one scheduler, but got none")
        for i, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, LRScheduler) or isinstance(scheduler, ReduceLROnPlateau):
                raise TypeError(f"SequentialLR cannot run the {type(scheduler).__name__} at index {i}; "
                                "expected a step-driven LRScheduler (not ReduceLROnPlateau)")
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"SequentialLR expects all schedulers to belong to the same optimizer, but the "
                                 f"{type(scheduler).__name__} at index {i} has another one")
        milestones = list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR expects one milestone fewer than schedulers; got {len(schedulers)} "
                             f"schedulers and {len(milestones)} milestones")
        # a milestone out of order, or repeated, would leave a schedule that never runs
        if not all(_is_int(m) and m > 0 for m in milestones) or milestones != sorted(set(milestones)):
            raise ValueError(f"SequentialLR: milestones must be positive integers (steps) in increasing order; got "
                             f"{milestones!r}")
        _check_last_epoch(last_epoch)
        self._schedulers = list(schedulers)
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        # the schedulers' constructors each took a first step: undo them, then take the first one's
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in self._schedulers:
            scheduler.last_epoch -= 1
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("_schedulers", [])
        if len(saved) != len(self._schedulers):
            raise ValueError(f"state dict holds {len(saved)} schedulers; this SequentialLR has {len(self._schedulers)}")
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "_schedulers"})
        for scheduler, state in zip(self._schedulers, saved):
            scheduler.load_state_dict(state)


class ReduceLROnPlateau(LRScheduler):
    """Multiply the rate by ``factor`` when a metric has not improved for ``patience`` steps.

    ``step(metric)`` takes the monitored value (e.g. the validation loss once per epoch). A
    device array or Tensor is read back to the host there: call it where a read is due anyway.

    Args:
        optimizer: the optimizer.
        mode: "min" (lower is better) or "max".
        factor: the reduction factor, in [0, 1).
        patience: steps without improvement tolerated before reducing (an int >= 0).
        threshold: the least change that counts as an improvement (a finite number >= 0).
        threshold_mode: "rel" (better than best -/+ threshold * |best|, so negative metrics work
            too) or "abs" (better than best -/+ threshold).
        cooldown: steps to wait after a reduction before counting again (an int >= 0).
        min_lr: a lower bound on the rate (or one per group), a finite number >= 0.
        eps: reductions smaller than this are skipped (a finite number >= 0).

    Raises:
        ValueError: an argument out of its range above (naming it and the range); at a
            reduction, a rate that is not finite (as every schedule).
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | Sequence[float] = 0.0, eps: float = 1e-8):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        self.factor = checked_number(factor, "factor", 0.0, 1.0, high_open=True)
        self.min_lrs = _per_group_numbers("min_lr", optimizer, min_lr)
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else self.min_lrs[0]
        self.patience = _non_negative_int("patience", patience)
        self.cooldown = _non_negative_int("cooldown", cooldown)
        self.eps = checked_number(eps, "eps")
        self.mode = _choice("mode", mode, ("min", "max"))
        self.threshold = checked_number(threshold, "threshold")
        self.threshold_mode = _choice("threshold_mode", threshold_mode, ("rel", "abs"))
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self.best = math.inf if mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _is_better(self, value: float, best: float) -> bool:
        # "rel" is a fraction of |best|: best * (1 - threshold) would be above a negative best, so
        # a metric that stays at -1.0 would count as improving every step
        margin = self.threshold * abs(best) if self.threshold_mode == "rel" else self.threshold
        if math.isinf(margin):  # the first metric against best = +-inf (inf - inf would be NaN)
            margin = 0.0
        return value < best - margin if self.mode == "min" else value > best + margin

    def step(self, metrics: Any) -> None:  # type: ignore[override]
        """Record this step's metric; reduce the rates after ``patience`` steps without improvement."""
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        if len(self.min_lrs) != len(self.optimizer.param_groups):
            if self.default_min_lr is None:
                raise RuntimeError(f"the optimizer has {len(self.optimizer.param_groups)} parameter groups but "
                                   f"min_lr gave {len(self.min_lrs)}; set scheduler.min_lrs to one per group")
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)
        values = []
        for group, low in zip(self.optimizer.param_groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, low)
            values.append(new if old - new > self.eps else group["lr"])
        # through the check every schedule's rates pass (min_lrs may have been set by hand)
        self._set_lrs(values)
