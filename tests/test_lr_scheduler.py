"""Learning-rate schedules: PyTorch's rate sequences over 100 steps (one table row per schedule),
state round trips mid-run, the effect on the optimizer, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make

import gdnet as gd
from gdnet import optim
from gdnet.optim import lr_scheduler

STEPS = 100
LRS = (0.1, 0.05)  # the two parameter groups' rates


class Halving:
    """A callable object as lr_lambda: its attributes are saved in the state dict."""

    def __init__(self, every):
        self.every = every

    def __call__(self, step):
        return 0.5 ** (step // self.every)


def _plateau_losses():
    """Falls, stalls, falls a little, stalls: the same numbers for both libraries."""
    rng = np.random.default_rng(7)
    losses = np.concatenate([1.0 / (1.0 + np.arange(20)), np.full(25, 0.05), np.linspace(0.05, 0.03, 15),
                             np.full(40, 0.03)])
    return [float(v) for v in losses + rng.normal(0.0, 1e-4, size=losses.shape)]


LOSSES = _plateau_losses()


def _each_step(scheduler, step):
    scheduler.step()


def _with_loss(scheduler, step):
    scheduler.step(LOSSES[step])


def _with_accuracy(scheduler, step):
    scheduler.step(1.0 - LOSSES[step])


def _fractional_epochs(scheduler, step):
    scheduler.step(step / 7.0)


# (id, optimizer, make(scheduler module, optimizer) -> scheduler, how to step it); the
# optimizer is built with the same name in torch.optim and gdnet.optim, with two groups
ROWS = [
    ("step", "SGD", lambda S, o: S.StepLR(o, step_size=7, gamma=0.5), _each_step),
    ("multistep", "SGD", lambda S, o: S.MultiStepLR(o, milestones=[10, 30, 30, 75], gamma=0.3), _each_step),
    ("exponential", "SGD", lambda S, o: S.ExponentialLR(o, gamma=0.97), _each_step),
    ("cosine", "SGD", lambda S, o: S.CosineAnnealingLR(o, T_max=30, eta_min=1e-3), _each_step),
    ("cosine-warm-restarts", "SGD", lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=1e-4),
     _each_step),
    ("cosine-warm-restarts-fixed", "SGD", lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=13), _each_step),
    ("cosine-warm-restarts-fractional", "SGD", lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
     _fractional_epochs),
    ("linear-warmup", "SGD", lambda S, o: S.LinearLR(o, start_factor=0.1, total_iters=20), _each_step),
    ("linear-decay", "SGD", lambda S, o: S.LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=40), _each_step),
    ("one-cycle", "SGD", lambda S, o: S.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=STEPS), _each_step),
    ("one-cycle-adam-linear-three-phase", "Adam",
     lambda S, o: S.OneCycleLR(o, max_lr=0.01, epochs=10, steps_per_epoch=10, anneal_strategy="linear",
                               three_phase=True, pct_start=0.25), _each_step),
    ("one-cycle-no-momentum", "SGD",
     lambda S, o: S.OneCycleLR(o, max_lr=0.3, total_steps=STEPS, cycle_momentum=False, div_factor=10.0),
     _each_step),
    ("lambda", "SGD", lambda S, o: S.LambdaLR(o, lr_lambda=[lambda t: 0.95**t, Halving(9)]), _each_step),
    ("sequential-warmup-cosine", "SGD",
     lambda S, o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=10), S.CosineAnnealingLR(o, T_max=90)],
                                 milestones=[10]), _each_step),
    ("sequential-three", "SGD",
     lambda S, o: S.SequentialLR(o, [S.ExponentialLR(o, gamma=0.9), S.StepLR(o, step_size=5, gamma=0.7),
                                     S.CosineAnnealingLR(o, T_max=20, eta_min=1e-3)], milestones=[20, 50]),
     _each_step),
    ("plateau-min", "SGD", lambda S, o: S.ReduceLROnPlateau(o, patience=3, cooldown=2, factor=0.5), _with_loss),
    ("plateau-max-abs", "SGD",
     lambda S, o: S.ReduceLROnPlateau(o, mode="max", threshold=1e-3, threshold_mode="abs", patience=2, factor=0.3,
                                      min_lr=[1e-3, 1e-2]), _with_accuracy),
]
ROW = {row_id: rest for row_id, *rest in ROWS}


def test_every_schedule_has_a_row():
    made = set()
    for name, build, _ in ROW.values():
        opt = _gdnet_optimizer(name)
        made |= {type(s).__name__ for s in _nested(build(lr_scheduler, opt))}
    public = {name for name, value in vars(lr_scheduler).items()
              if isinstance(value, type) and issubclass(value, lr_scheduler.LRScheduler)
              and value is not lr_scheduler.LRScheduler}
    assert made == public
    assert public >= {"StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
                      "LinearLR", "OneCycleLR", "ReduceLROnPlateau", "LambdaLR", "SequentialLR"}


def _nested(scheduler):
    yield scheduler
    for inner in getattr(scheduler, "_schedulers", []):
        yield from _nested(inner)


def _gdnet_optimizer(name):
    groups = [{"params": [make([1.0, 2.0], "float32", requires_grad=True)], "lr": lr} for lr in LRS]
    return getattr(optim, name)(groups, lr=LRS[0], **({"momentum": 0.9} if name == "SGD" else {}))


def _torch_optimizer(name):
    torch = pytest.importorskip("torch")
    groups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in LRS]
    return getattr(torch.optim, name)(groups, lr=LRS[0], **({"momentum": 0.9} if name == "SGD" else {}))


def _record(opt):
    """What a schedule may move: each group's lr and its momentum (or beta1)."""
    return [(g["lr"], g["momentum"] if "momentum" in g else g["betas"][0]) for g in opt.param_groups]


def _run(opt, scheduler, drive, steps, start=0):
    rates, moved = [], []
    for step in range(start, start + steps):
        opt.step()
        drive(scheduler, step)
        rates.append(scheduler.get_last_lr())
        moved.append(_record(opt))
    return rates, moved


@pytest.mark.parametrize("row", ROW)
def test_matches_torch(row):
    name, build, drive = ROW[row]
    torch_opt = _torch_optimizer(name)
    torch_scheduler = build(pytest.importorskip("torch").optim.lr_scheduler, torch_opt)
    opt = _gdnet_optimizer(name)
    scheduler = build(lr_scheduler, opt)
    np.testing.assert_allclose(np.array(_record(opt)), np.array(_record(torch_opt), dtype=float), rtol=1e-12)
    np.testing.assert_allclose(scheduler.get_last_lr(), np.array(torch_scheduler.get_last_lr(), dtype=float),
                               rtol=1e-12)
    theirs, their_moved = _run(torch_opt, torch_scheduler, drive, STEPS)
    ours, moved = _run(opt, scheduler, drive, STEPS)
    np.testing.assert_allclose(np.array(ours), np.array(theirs, dtype=float), rtol=1e-6, atol=0)
    np.testing.assert_allclose(np.array(moved), np.array(their_moved, dtype=float), rtol=1e-6, atol=0)
    assert len({tuple(r) for r in ours}) > 1, "the schedule never moved the rate"


@pytest.mark.parametrize("row", ROW)
def test_state_dict_round_trip_mid_run_equals_uninterrupted(row):
    name, build, drive = ROW[row]
    opt = _gdnet_optimizer(name)
    uninterrupted = _run(opt, build(lr_scheduler, opt), drive, STEPS)
    opt = _gdnet_optimizer(name)
    scheduler = build(lr_scheduler, opt)
    first = _run(opt, scheduler, drive, STEPS // 2)
    saved_opt, saved = opt.state_dict(), scheduler.state_dict()
    fresh = _gdnet_optimizer(name)
    resumed_scheduler = build(lr_scheduler, fresh)  # as PyTorch advises: the scheduler first
    fresh.load_state_dict(saved_opt)
    resumed_scheduler.load_state_dict(saved)
    second = _run(fresh, resumed_scheduler, drive, STEPS - STEPS // 2, start=STEPS // 2)
    assert first[0] + second[0] == uninterrupted[0]
    assert first[1] + second[1] == uninterrupted[1]


def test_the_optimizer_steps_with_the_scheduled_rate(backend, float_dtype):
    w = make([1.0], float_dtype, requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    scheduler = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for expected in (0.0, -0.5, -0.75):
        w.grad = make([1.0], float_dtype)
        opt.step()
        scheduler.step()
        assert w.tolist() == [expected]


def test_get_last_lr_is_a_copy():
    opt = _gdnet_optimizer("SGD")
    scheduler = lr_scheduler.ExponentialLR(opt, gamma=0.5)
    scheduler.get_last_lr()[0] = 123.0
    assert scheduler.get_last_lr() == list(LRS)
    assert [g["initial_lr"] for g in opt.param_groups] == list(LRS)


def test_lambda_functions_are_left_out_of_the_state_dict_and_objects_kept():
    opt = _gdnet_optimizer("SGD")
    scheduler = lr_scheduler.LambdaLR(opt, [lambda t: 1.0, Halving(3)])
    saved = scheduler.state_dict()
    assert saved["lr_lambdas"] == [None, {"every": 3}] and saved["type"] == "LambdaLR"
    other = lr_scheduler.LambdaLR(_gdnet_optimizer("SGD"), [lambda t: 1.0, Halving(5)])
    other.load_state_dict(saved)
    assert other.lr_lambdas[1].every == 3


def test_plateau_reads_a_tensor_metric(backend):
    opt = _gdnet_optimizer("SGD")
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    for loss in (1.0, 2.0, 3.0):
        scheduler.step(gd.tensor(loss))
    assert scheduler.get_last_lr() == pytest.approx([LRS[0] / 4, LRS[1] / 4])


# -- bad input ----------------------------------------------------------------------------------
def _sgd():
    return _gdnet_optimizer("SGD")


def _adam():
    return _gdnet_optimizer("Adam")


def _sequential(milestones):
    opt = _sgd()
    parts = [lr_scheduler.ExponentialLR(opt, 0.9), lr_scheduler.StepLR(opt, 2), lr_scheduler.ExponentialLR(opt, 0.5)]
    return lr_scheduler.SequentialLR(opt, parts, milestones=milestones)


BAD = [
    ("not-an-optimizer", lambda: lr_scheduler.StepLR(object(), step_size=1), TypeError, "needs a gdnet Optimizer"),
    ("step-size", lambda: lr_scheduler.StepLR(_sgd(), step_size=0), ValueError, "positive integer step_size"),
    ("t-max", lambda: lr_scheduler.CosineAnnealingLR(_sgd(), T_max=2.5), ValueError, "positive integer T_max"),
    ("t-mult", lambda: lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=5, T_mult=0), ValueError,
     "integer T_mult >= 1"),
    ("start-factor", lambda: lr_scheduler.LinearLR(_sgd(), start_factor=0.0), ValueError,
     r"Invalid start_factor: 0.0 \(expected a value in \(0, 1\]\)"),
    ("end-factor", lambda: lr_scheduler.LinearLR(_sgd(), end_factor=1.5), ValueError, "Invalid end_factor: 1.5"),
    ("lambda-count", lambda: lr_scheduler.LambdaLR(_sgd(), [lambda t: 1.0]), ValueError,
     r"lr_lambda has 1 values; expected one per parameter group \(2\)"),
    ("lambda-not-callable", lambda: lr_scheduler.LambdaLR(_sgd(), 0.5), TypeError, "function of the step"),
    ("one-cycle-length", lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1), ValueError,
     r"either total_steps OR \(epochs AND steps_per_epoch\)"),
    ("one-cycle-pct", lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1, total_steps=10, pct_start=1.5), ValueError,
     r"Invalid pct_start: 1.5 \(expected a value in \(0, 1\)\)"),
    ("one-cycle-pct-zero", lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, 10, pct_start=0.0), ValueError,
     r"Invalid pct_start: 0.0 \(expected a value in \(0, 1\)\)"),
    ("one-cycle-pct-one", lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, 10, pct_start=1.0), ValueError,
     "Invalid pct_start: 1.0"),
    ("one-cycle-pct-nan", lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, 10, pct_start=math.nan), ValueError,
     "Invalid pct_start: nan"),
    ("one-cycle-pct-three-phase", lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, 10, pct_start=0.6, three_phase=True),
     ValueError, r"Invalid pct_start: 0.6 \(expected a value in \(0, 0.5\]\)"),
    ("one-cycle-anneal", lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, 10, anneal_strategy="cubic"), ValueError,
     r"Invalid anneal_strategy: 'cubic' \(expected 'cos' or 'linear'\)"),
    ("one-cycle-div-factor-zero", lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, 10, div_factor=0.0), ValueError,
     r"Invalid div_factor: 0.0 \(expected a finite number > 0\)"),
    ("one-cycle-div-factor-negative", lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, 10, div_factor=-25.0), ValueError,
     "Invalid div_factor: -25.0"),
    ("one-cycle-div-factor-inf", lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, 10, div_factor=math.inf), ValueError,
     "Invalid div_factor: inf"),
    ("one-cycle-final-div-factor-zero", lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, 10, final_div_factor=0),
     ValueError, r"Invalid final_div_factor: 0 \(expected a finite number > 0\)"),
    ("one-cycle-final-div-factor-nan", lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, 10, final_div_factor=math.nan),
     ValueError, "Invalid final_div_factor: nan"),
    ("one-cycle-max-lr-negative", lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=[0.1, -0.1], total_steps=10),
     ValueError, r"Invalid max_lr\[1\]: -0.1 \(expected a finite number >= 0\)"),
    ("one-cycle-max-lr-inf", lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=math.inf, total_steps=10), ValueError,
     "Invalid max_lr: inf"),
    ("one-cycle-beta1-one", lambda: lr_scheduler.OneCycleLR(_adam(), 0.1, 10, max_momentum=1.0), ValueError,
     r"Invalid max_momentum: 1.0 \(expected a value in \[0, 1\)\)"),
    ("one-cycle-momentum-negative", lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, 10, base_momentum=-0.5), ValueError,
     r"Invalid base_momentum: -0.5 \(expected a finite number >= 0\)"),
    ("one-cycle-total-steps", lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, total_steps=0), ValueError,
     "positive integer total_steps"),
    ("one-cycle-epochs", lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, epochs=2.5, steps_per_epoch=3), ValueError,
     "positive integer epochs"),
    ("warm-restarts-t0-zero", lambda: lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=0), ValueError,
     "Expected positive integer T_0, but got 0"),
    ("warm-restarts-t0-float", lambda: lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=2.5), ValueError,
     "Expected positive integer T_0, but got 2.5"),
    ("warm-restarts-t-mult-float", lambda: lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=5, T_mult=1.5),
     ValueError, "integer T_mult >= 1, but got 1.5"),
    ("warm-restarts-eta-min-negative", lambda: lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), 5, eta_min=-1e-3),
     ValueError, r"Invalid eta_min: -0.001 \(expected a finite number >= 0\)"),
    ("warm-restarts-eta-min-nan", lambda: lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), 5, eta_min=math.nan),
     ValueError, "Invalid eta_min: nan"),
    ("warm-restarts-eta-min-inf", lambda: lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), 5, eta_min=math.inf),
     ValueError, "Invalid eta_min: inf"),
    ("linear-start-factor-nan", lambda: lr_scheduler.LinearLR(_sgd(), start_factor=math.nan), ValueError,
     "Invalid start_factor: nan"),
    ("linear-end-factor-text", lambda: lr_scheduler.LinearLR(_sgd(), end_factor="1"), TypeError,
     "Invalid end_factor: '1' .expected a real number."),
    ("linear-total-iters", lambda: lr_scheduler.LinearLR(_sgd(), total_iters=0), ValueError,
     "positive integer total_iters"),
    ("last-epoch-below-minus-one", lambda: lr_scheduler.ExponentialLR(_sgd(), 0.9, last_epoch=-2), ValueError,
     r"Expected integer last_epoch >= -1 \(-1 starts the schedule\), but got -2"),
    ("last-epoch-float", lambda: lr_scheduler.StepLR(_sgd(), 2, last_epoch=1.5), ValueError,
     "integer last_epoch >= -1 .*but got 1.5"),
    ("sequential-milestones-order", lambda: _sequential(milestones=[6, 3]), ValueError,
     r"milestones must be positive integers \(steps\) in increasing order; got \[6, 3\]"),
    ("sequential-milestones-repeated", lambda: _sequential(milestones=[3, 3]), ValueError,
     "in increasing order; got \\[3, 3\\]"),
    ("sequential-milestone-zero", lambda: _sequential(milestones=[0, 3]), ValueError, "positive integers"),
    ("sequential-milestone-float", lambda: _sequential(milestones=[2.5, 3]), ValueError, "positive integers"),
    ("one-cycle-momentum", lambda: lr_scheduler.OneCycleLR(optim.Adagrad([make([1.0], "float32", requires_grad=True)]),
                                                           0.1, 10), ValueError, "must support momentum or beta1"),
    ("plateau-factor", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), factor=1.0), ValueError, "Invalid factor: 1.0"),
    ("plateau-mode", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), mode="lowest"), ValueError,
     r"Invalid mode: 'lowest' \(expected 'min' or 'max'\)"),
    ("plateau-threshold-mode", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), threshold_mode="pct"), ValueError,
     r"Invalid threshold_mode: 'pct' \(expected 'rel' or 'abs'\)"),
    ("plateau-mode-not-text", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), mode=None), ValueError,
     "Invalid mode: None"),
    ("plateau-factor-negative", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), factor=-0.5), ValueError,
     r"Invalid factor: -0.5 \(expected a value in \[0, 1\)\)"),
    ("plateau-factor-nan", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), factor=math.nan), ValueError,
     "Invalid factor: nan"),
    ("plateau-factor-text", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), factor="0.5"), TypeError,
     "Invalid factor: '0.5' .expected a real number."),
    ("plateau-min-lr-negative", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), min_lr=-1e-3), ValueError,
     r"Invalid min_lr: -0.001 \(expected a finite number >= 0\)"),
    ("plateau-min-lr-inf", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), min_lr=math.inf), ValueError,
     "Invalid min_lr: inf"),
    ("plateau-min-lr-per-group", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), min_lr=[0.0, math.nan]), ValueError,
     r"Invalid min_lr\[1\]: nan"),
    ("plateau-eps-negative", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), eps=-1e-8), ValueError,
     r"Invalid eps: -1e-08 \(expected a finite number >= 0\)"),
    ("plateau-eps-nan", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), eps=math.nan), ValueError, "Invalid eps: nan"),
    ("plateau-threshold-negative", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), threshold=-0.1), ValueError,
     r"Invalid threshold: -0.1 \(expected a finite number >= 0\)"),
    ("plateau-threshold-nan", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), threshold=math.nan), ValueError,
     "Invalid threshold: nan"),
    ("plateau-patience-negative", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), patience=-1), ValueError,
     "Expected non-negative integer patience, but got -1"),
    ("plateau-patience-float", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), patience=2.5), ValueError,
     "Expected non-negative integer patience, but got 2.5"),
    ("plateau-cooldown-negative", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), cooldown=-2), ValueError,
     "Expected non-negative integer cooldown, but got -2"),
    ("plateau-cooldown-bool", lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), cooldown=True), ValueError,
     "Expected non-negative integer cooldown, but got True"),
    ("resume-without-initial-lr", lambda: lr_scheduler.StepLR(_sgd(), step_size=2, last_epoch=5), KeyError,
     "initial_lr"),
    ("step-gamma-negative", lambda: lr_scheduler.StepLR(_sgd(), 2, gamma=-0.5), ValueError,
     r"Invalid gamma: -0.5 \(expected a finite number >= 0\)"),
    ("step-gamma-nan", lambda: lr_scheduler.StepLR(_sgd(), 2, gamma=math.nan), ValueError, "Invalid gamma: nan"),
    ("multi-step-gamma-negative", lambda: lr_scheduler.MultiStepLR(_sgd(), [2], gamma=-1), ValueError,
     "Invalid gamma: -1"),
    ("multi-step-gamma-nan", lambda: lr_scheduler.MultiStepLR(_sgd(), [2], gamma=math.nan), ValueError,
     "Invalid gamma: nan"),
    ("multi-step-milestone", lambda: lr_scheduler.MultiStepLR(_sgd(), [2, 4.5]), ValueError,
     "milestones must be non-negative integers .*; got 4.5"),
    ("exponential-gamma-negative", lambda: lr_scheduler.ExponentialLR(_sgd(), gamma=-0.9), ValueError,
     "Invalid gamma: -0.9"),
    ("exponential-gamma-nan", lambda: lr_scheduler.ExponentialLR(_sgd(), gamma=math.nan), ValueError,
     "Invalid gamma: nan"),
    ("exponential-gamma-inf", lambda: lr_scheduler.ExponentialLR(_sgd(), gamma=math.inf), ValueError,
     "Invalid gamma: inf"),
    ("exponential-gamma-text", lambda: lr_scheduler.ExponentialLR(_sgd(), gamma="0.9"), TypeError,
     "Invalid gamma: '0.9' .expected a real number."),
    ("cosine-eta-min", lambda: lr_scheduler.CosineAnnealingLR(_sgd(), 5, eta_min=math.nan), ValueError,
     "Invalid eta_min: nan"),
    ("lambda-nan", lambda: lr_scheduler.LambdaLR(_sgd(), lambda t: math.nan), ValueError,
     "LambdaLR computed the learning rate nan for parameter group 0 at step 0; expected a finite number"),
    ("state-dict-empty", lambda: lr_scheduler.StepLR(_sgd(), 2).load_state_dict({}), ValueError,
     r"StepLR state dict lacks \[.*'step_size'.*\]"),
    ("state-dict-not-a-dict", lambda: lr_scheduler.StepLR(_sgd(), 2).load_state_dict([]), TypeError,
     "state dict is a dict; got list"),
]


@pytest.mark.parametrize("build, error, message", [pytest.param(*rest, id=i) for i, *rest in BAD])
def test_bad_input(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_plateau_rates_pass_the_finite_rate_check():
    """ReduceLROnPlateau sets its rates through the same check as every schedule: a rate written
    into a group by hand that is not finite is refused at the next reduction (as ExponentialLR
    refuses it at its next step), leaving the groups as they were."""
    opt = _sgd()
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    scheduler.step(1.0)
    for bad in (math.inf, math.nan):
        opt.param_groups[1]["lr"] = bad
        with pytest.raises(ValueError, match=f"ReduceLROnPlateau computed the learning rate {bad} for parameter "
                                             "group 1 at step 2; expected a finite number"):
            scheduler.step(2.0)
        assert opt.param_groups[0]["lr"] == LRS[0] and scheduler.get_last_lr() == list(LRS)
        scheduler.last_epoch -= 1
    opt.param_groups[1]["lr"] = LRS[1]
    scheduler.step(3.0)
    assert scheduler.get_last_lr() == pytest.approx([LRS[0] / 2, LRS[1] / 2])


def test_sequential_refuses_bad_parts():
    opt = _sgd()
    with pytest.raises(ValueError, match="one milestone fewer than schedulers"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.ExponentialLR(opt, 0.9)], milestones=[3])
    with pytest.raises(TypeError, match="ReduceLROnPlateau"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.ExponentialLR(opt, 0.9), lr_scheduler.ReduceLROnPlateau(opt)],
                                  milestones=[3])
    with pytest.raises(ValueError, match="same optimizer"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.ExponentialLR(_sgd(), 0.9)], milestones=[])
    with pytest.raises(ValueError, match="at least one scheduler"):
        lr_scheduler.SequentialLR(opt, [], milestones=[])


def test_one_cycle_refuses_to_step_past_its_end():
    scheduler = lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1, total_steps=3)
    for _ in range(3):
        scheduler.step()
    with pytest.raises(ValueError, match="Tried to step 4 times. The specified number of total steps is 3"):
        scheduler.step()


def test_a_state_dict_from_another_scheduler():
    opt = _sgd()
    saved = lr_scheduler.StepLR(opt, step_size=3).state_dict()
    with pytest.raises(ValueError, match="state dict is from a StepLR scheduler; expected ExponentialLR"):
        lr_scheduler.ExponentialLR(opt, gamma=0.9).load_state_dict(saved)


def test_warm_restarts_refuse_a_negative_epoch():
    scheduler = lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=3)
    with pytest.raises(ValueError, match="non-negative epoch"):
        scheduler.step(-1.0)
    assert math.isclose(scheduler.get_last_lr()[0], LRS[0])


# -- schedules at their edges ----------------------------------------------------------------------
def _sgd_on(float_dtype, lr=1.0):
    return optim.SGD([make([1.0], float_dtype, requires_grad=True)], lr=lr, momentum=0.9)


def _anneal(start, end, pct):
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


@pytest.mark.parametrize("total_steps, pct_start", [(4, 0.25), (10, 0.1), (2, 0.5)])
def test_one_cycle_with_a_warm_up_of_one_step(backend, float_dtype, total_steps, pct_start):
    # PyTorch divides by the phase's width, 0 here; the one step ends the warm-up at max_lr
    opt = _sgd_on(float_dtype)
    scheduler = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=total_steps, pct_start=pct_start)
    rates = [opt.param_groups[0]["lr"]]
    for _ in range(total_steps - 1):
        opt.param_groups[0]["params"][0].grad = make([0.0], float_dtype)
        opt.step()
        scheduler.step()
        rates.append(opt.param_groups[0]["lr"])
    low = 1.0 / 25.0 / 1e4
    expected = [1.0] + [_anneal(1.0, low, step / (total_steps - 1)) for step in range(1, total_steps)]
    np.testing.assert_allclose(rates, expected, rtol=1e-12)
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.95)  # the end of the cycle


def test_one_cycle_three_phases_with_one_step_phases(backend, float_dtype):
    opt = _sgd_on(float_dtype)
    scheduler = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=4, pct_start=0.25, three_phase=True)
    rates = [scheduler.get_last_lr()[0]]
    for _ in range(3):
        scheduler.step()
        rates.append(scheduler.get_last_lr()[0])
    assert all(math.isfinite(r) for r in rates) and rates[0] == 1.0 and rates[-1] == pytest.approx(4e-6)


@pytest.mark.parametrize("mode, sign", [("min", 1.0), ("min", -1.0), ("max", 1.0), ("max", -1.0)])
def test_plateau_counts_a_flat_metric_as_no_improvement_on_both_sides_of_zero(backend, float_dtype, mode, sign):
    # PyTorch's best * (1 - threshold) lies above a negative best, so -1.0 forever looked better
    opt = _sgd_on(float_dtype)
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, mode=mode, patience=2)
    rates = []
    for _ in range(8):
        scheduler.step(sign)
        rates.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(rates, [1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.01, 0.01])


@pytest.mark.parametrize("mode, better", [("min", -1.0002), ("max", -0.9998)])
def test_plateau_relative_threshold_for_negative_metrics(backend, float_dtype, mode, better):
    # a change of more than threshold * |best| counts, one of less does not
    opt = _sgd_on(float_dtype)
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, mode=mode, patience=0, threshold=1e-4)
    scheduler.step(-1.0)
    scheduler.step(better)
    assert opt.param_groups[0]["lr"] == 1.0
    scheduler.step(better + (-0.00005 if mode == "min" else 0.00005))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


@pytest.mark.parametrize("epoch, restart_lr", [(111, True), (11, True), (1, True), (110, False), (112, False)])
def test_warm_restarts_find_the_restart_in_integers(backend, float_dtype, epoch, restart_lr):
    # periods 1, 10, 100, ...: restarts at 1, 11, 111; log(1000, 10) rounds to 2.9999999999999996
    opt = _sgd_on(float_dtype)
    scheduler = lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=1, T_mult=10, eta_min=0.01)
    scheduler.step(epoch)
    rate = opt.param_groups[0]["lr"]
    assert (rate == 1.0) == restart_lr
    stepped = lr_scheduler.CosineAnnealingWarmRestarts(_sgd_on(float_dtype), T_0=1, T_mult=10, eta_min=0.01)
    for _ in range(epoch):
        stepped.step()
    assert stepped.get_last_lr()[0] == pytest.approx(rate, rel=1e-12)
