"""One epoch of training and one pass of evaluation for classifiers.

These are sugar over the plain loop in the README, not a framework: the loss and each metric
accumulate as device arrays and are read once at the end, so a training step has no host
synchronisation. ``fit`` runs the same passes.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Callable, Iterable, Mapping

from .. import distributed
from .._backend import get_backend
from ..autograd import Tensor, namespace_of, no_grad
from ..backends import host
from ..nn import functional as F
from ..nn.module import Module

Loss = Callable[[Tensor, Any], Tensor]
# metric(scores, labels) -> the batch's mean as a 0-d Tensor (or array), computed on the device
Metric = Callable[[Tensor, Any], Any]

METRICS: dict[str, Metric] = {"accuracy": F.accuracy}


CLASSIFICATION_LOSSES = (F.cross_entropy, F.nll_loss)


def default_metrics(loader: Any, loss: Loss) -> tuple[str, ...]:
    """("accuracy",) where it means something, else (): where the loader's dataset holds class
    labels (``num_classes``), or, for a loader without a dataset, where the loss is
    cross-entropy or NLL. A regression (mse_loss on float targets) logs its loss alone."""
    dataset = getattr(loader, "dataset", None)
    if dataset is not None and hasattr(dataset, "num_classes"):
        return ("accuracy",) if dataset.num_classes is not None else ()
    return ("accuracy",) if loss in CLASSIFICATION_LOSSES else ()


def resolve_metrics(metrics: Iterable[str | Metric]) -> dict[str, Metric]:
    """Names from ``METRICS`` or functions ``metric(scores, labels)`` -> {log name: function}."""
    if isinstance(metrics, str) or callable(metrics):
        raise TypeError(f"metrics must be a sequence of names or functions, e.g. ('accuracy',); got {metrics!r}")
    resolved: dict[str, Metric] = {}
    for metric in metrics:
        if isinstance(metric, str):
            if metric not in METRICS:
                raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(METRICS)} "
                                 "or a function metric(scores, labels) returning the batch mean")
            name, fn = metric, METRICS[metric]
        elif callable(metric):
            name, fn = getattr(metric, "__name__", type(metric).__name__), metric
        else:
            raise TypeError(f"a metric must be a name or a function; got {type(metric).__name__}")
        if name == "loss" or name in resolved:
            raise ValueError(f"metric name {name!r} is used twice (or is 'loss', which is always logged)")
        resolved[name] = fn
    return resolved


def check_int(name: str, value: Any, low: int) -> int:
    """``value``, refused with a ValueError naming ``name`` unless an int (not a bool) >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {value!r}")
    return value


def _is_model(value: Any) -> bool:
    # a gdnet Module, or anything a pass can call and switch between train() and eval()
    return isinstance(value, Module) or (callable(value) and callable(getattr(value, "train", None))
                                         and callable(getattr(value, "eval", None)))


def _is_pair_of_arrays(value: Any) -> bool:
    """A tuple or list whose items are arrays or Tensors: one (x, labels) batch, not a loader of them."""
    return isinstance(value, (tuple, list)) and bool(value) and all(hasattr(item, "shape") for item in value)


def _is_loader(value: Any) -> bool:
    # a Sequential is iterable too (over its layers): a Module is never a loader; nor is an
    # array, or a batch (x, labels) itself, whose iteration yields rows or arrays, not batches
    return (hasattr(value, "__iter__") and not isinstance(value, Module) and not hasattr(value, "shape")
            and not _is_pair_of_arrays(value))


def _is_optimizer(value: Any) -> bool:
    return callable(getattr(value, "step", None)) and callable(getattr(value, "zero_grad", None))


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, Module):
        return f"{type(value).__name__}, a gdnet.nn.Module"
    if _is_pair_of_arrays(value):
        return (f"a {type(value).__name__} of {len(value)} arrays, one batch (pass [(x, labels)], or "
                "gd.data.DataLoader(gd.data.ArrayDataset(x, labels), batch_size=...))")
    return type(value).__name__


# evaluate's pass has no optimizer (None is an optimizer missing from a training pass)
NO_OPTIMIZER = object()


def check_pass_arguments(function: str, signature: str, model: Any, loaders: Mapping[str, Any],
                         loss: tuple[str, Any], optimizer: Any = NO_OPTIMIZER) -> None:
    """The arguments of a pass, by what each must be: ``model`` a gdnet Module (or callable,
    with train() and eval()), each of ``loaders`` ({argument name: loader}) iterable and not a
    Module, ``loss`` ((argument name, value)) a function, ``optimizer`` (unless NO_OPTIMIZER)
    something with step() and zero_grad(). Two arguments each of the other's kind (fit takes
    the loss before the loader, train_epoch and evaluate after it; the model comes first) are
    named as swapped.

    Raises:
        TypeError: an argument is not of its kind, naming it and the function's signature.
    """
    expected = {
        "model": (model, _is_model, "a gdnet.nn.Module mapping x to scores (callable, with train() and eval())"),
        **{name: (loader, _is_loader, "iterable, yielding (x, labels) batches") for name, loader in loaders.items()},
        loss[0]: (loss[1], callable, "a function loss(scores, labels)"),
    }
    if optimizer is not NO_OPTIMIZER:
        expected["optimizer"] = (optimizer, _is_optimizer, "an optimizer, with step() and zero_grad()")
    wrong = [name for name, (value, is_kind, _) in expected.items() if not is_kind(value)]
    if not wrong:
        return
    # in the order of the signature (keyword arguments not in it, such as val_loader, last)
    position = {name: found.start() if (found := re.search(rf"\b{name}\b", signature)) else len(signature)
                for name in wrong}
    wrong.sort(key=position.__getitem__)
    problems = [f"{name} must be {expected[name][2]}; got {_kind(expected[name][0])}" for name in wrong]
    swapped = [f"({a} and {b} look swapped)" for i, a in enumerate(wrong) for b in wrong[i + 1:]
               if expected[a][1](expected[b][0]) and expected[b][1](expected[a][0])]
    raise TypeError(f"{function}{signature}: " + "; ".join(problems) + "".join(f" {s}" for s in swapped))


def sharded(loader: Any) -> bool:
    """Whether ``loader`` gives each rank of a gdnet.distributed job of several ranks its own
    shard (``DataLoader(distributed=True)``): then values over it are summed over the ranks,
    and every rank must take part. Over other loaders each rank's values are already whole."""
    return bool(getattr(loader, "distributed", False)) and distributed.world_size() > 1


class _Tally:
    """Example-weighted sums of the loss and each metric over batches, kept on the device
    until read; over every rank's batches with ``across_ranks``. ``total`` is the example
    count of the last ``read()``."""

    def __init__(self, metrics: Mapping[str, Metric] | None = None, across_ranks: bool = False) -> None:
        self.metrics = dict(METRICS if metrics is None else metrics)
        self.across_ranks = across_ranks
        self.sums: list[Any] | None = None
        self.count = 0
        self.total = 0

    def add(self, loss: Tensor, scores: Tensor, labels: Any, batch: int) -> None:
        n = float(batch)
        scores = scores.detach()
        values = [loss.data * n]
        for fn in self.metrics.values():
            value = fn(scores, labels)
            values.append((value.data if isinstance(value, Tensor) else value) * n)
        self.sums = values if self.sums is None else [total + v for total, v in zip(self.sums, values)]
        self.count += batch

    def read(self, local: bool = False) -> dict[str, float]:
        """{"loss": mean loss, metric name: mean value}: one device read for all of them. Across
        ranks, over every rank's examples (one all-reduce: every rank must read), unless
        ``local`` (this rank's alone, for a progress bar only rank 0 shows)."""
        names = ["loss", *self.metrics]
        if self.across_ranks and not local:
            values = self._reduced(len(names))
            count = values.pop()
        else:
            count = self.count
            if count:
                first = self.sums[0]
                xp = namespace_of(first)
                values = host.to_list(xp.stack([xp.astype(xp.reshape(s, ()), first.dtype) for s in self.sums]))
        if not count:
            raise ValueError("no batches: the loader is empty")
        self.total = int(count)
        return {name: value / count for name, value in zip(names, values)}

    def _reduced(self, width: int) -> list[float]:
        """Every rank's sums and count; float64 where the device has it (the same dtype on
        every rank, whatever its data), zeros from a rank without examples."""
        backend = get_backend()
        xp, device = backend.xp, backend.device
        dtype = xp.float64 if backend.supports_dtype("float64") else xp.float32
        if self.sums is None:
            sums = xp.zeros((width,), dtype=dtype, device=device)
        else:
            sums = xp.stack([xp.astype(xp.reshape(s, ()), dtype) for s in self.sums])
        count = xp.asarray([float(self.count)], dtype=dtype, device=device)
        return host.to_list(distributed.reduce_array(xp.concat([sums, count]), "sum"))


def check_labels(loader: Any, scores: Tensor, targets: Any) -> None:
    """Class-index targets from ``loader`` must lie below the number of scores per example.

    The loader read its labels' range once, on the host (``DataLoader.label_range``); this
    compares it with ``scores``' shape, so no device value is read (cross-entropy's own check
    reads only where that is free).
    """
    bounds = getattr(loader, "label_range", None)
    if bounds is None or scores.ndim != 2 or getattr(targets, "ndim", None) != 1:
        return
    classes = scores.shape[1]
    if bounds[1] >= classes:
        raise ValueError(
            f"the loader's labels go up to {bounds[1]}, but the model gives {classes} scores per example; "
            f"expected labels in [0, {classes - 1}] (or a model with {bounds[1] + 1} outputs)"
        )


# The bar's layouts. Values go after the bar and the bar takes what width is left, so at 80
# columns an epoch of Fashion-MNIST keeps a bar of about 16 cells and every value whole; the
# finished epoch drops the bar (it is full) for the validation values.
BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}"
BAR_FORMAT_NO_TOTAL = "{desc} {n_fmt} batches [{elapsed}, {rate_fmt}]{postfix}"
BAR_FORMAT_DONE = "{desc} [{elapsed}]{postfix}"
_SHORT_NAMES = {"accuracy": "acc"}


def progress_bar(total: int | None, description: str, leave: bool, file=None, ncols: int | None = None):
    """A tqdm bar counting batches, on standard error (or ``file``), ``ncols`` wide (default:
    as wide as the terminal, following its resizes)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, leave=leave, unit="batch", file=sys.stderr if file is None else file,
                bar_format=BAR_FORMAT if total else BAR_FORMAT_NO_TOTAL, ncols=ncols, dynamic_ncols=ncols is None)


def show_metrics(bar, values: Mapping[str, float], done: bool = False) -> None:
    """Show ``values`` after the bar ("loss 0.4321 acc 0.8712"); ``done``: the pass is over, the
    bar gives way to them."""
    if done:
        bar.bar_format = BAR_FORMAT_DONE
    words = []
    for name, value in values.items():
        prefix, base = ("val_", name[4:]) if name.startswith("val_") else ("", name)
        words.append(f"{prefix}{_SHORT_NAMES.get(base, base)} {value:.4f}")
    bar.set_postfix_str(" ".join(words), refresh=False)


def train_pass(model, loader, optimizer, loss_fn: Loss, metrics: Mapping[str, Metric], bar=None,
               report_every: int = 50, after_step: Callable[[Tensor], bool] | None = None,
               ) -> tuple[dict[str, float], int]:
    """One pass of gradient descent over ``loader``: ({"loss": ..., metric: ...} over the pass,
    examples seen), over every rank's shard when the loader is sharded (``sharded``).

    ``bar`` (a tqdm bar) advances every step and shows the running values every
    ``report_every`` steps (a device read each time). ``after_step(loss)`` runs after every
    step; the pass ends early when it returns True.
    """
    model.train()
    tally = _Tally(metrics, across_ranks=sharded(loader))
    for step, (x, y) in enumerate(loader, start=1):
        scores = model(x)
        if step == 1:
            check_labels(loader, scores, y)
        loss = loss_fn(scores, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        tally.add(loss, scores, y, x.shape[0])
        if bar is not None:
            bar.update(1)
            if step % report_every == 0:
                show_metrics(bar, tally.read(local=True))  # only rank 0 has a bar
        if after_step is not None and after_step(loss):
            break
    return tally.read(), tally.total


def evaluation_pass(model, loader, loss_fn: Loss, metrics: Mapping[str, Metric]) -> dict[str, float]:
    """{"loss": ..., metric: ...} of ``model`` over ``loader`` in eval mode, without gradients
    (over every rank's shard when the loader is sharded: then every rank must call it)."""
    was_training = getattr(model, "training", True)
    model.eval()
    tally = _Tally(metrics, across_ranks=sharded(loader))
    try:
        with no_grad():
            for step, (x, y) in enumerate(loader, start=1):
                scores = model(x)
                if step == 1:
                    check_labels(loader, scores, y)
                tally.add(loss_fn(scores, y), scores, y, x.shape[0])
    finally:
        model.train(was_training)
    return tally.read()


def train_epoch(model, loader, optimizer, loss_fn: Loss = F.cross_entropy, progress: bool = False,
                description: str = "", report_every: int = 50) -> tuple[float, float]:
    """One pass of gradient descent over ``loader``.

    Args:
        model: maps a batch x to (N, C) scores.
        loader: yields (x, labels) on the model's device.
        optimizer: anything with zero_grad() and step().
        loss_fn: ``loss_fn(scores, labels)`` -> mean loss (default cross-entropy).
        progress: show a tqdm bar, with loss and accuracy read every ``report_every`` steps
            (an int >= 1).
    Returns:
        (mean training loss, training accuracy) over the epoch.
    Raises:
        TypeError: an argument is not of its kind (``model`` not a Module, ``loader`` not
            iterable or a Module, ``optimizer`` None or without step()/zero_grad(),
            ``loss_fn`` not a function), before any step.
        ValueError: ``report_every`` is not an int >= 1.
    """
    check_pass_arguments("train_epoch", "(model, loader, optimizer, loss_fn=cross_entropy)", model,
                         {"loader": loader}, ("loss_fn", loss_fn), optimizer)
    check_int("report_every", report_every, 1)
    bar = progress_bar(len(loader), description, leave=False) if progress else None
    try:
        values, _ = train_pass(model, loader, optimizer, loss_fn, METRICS, bar, report_every)
    finally:
        if bar is not None:
            bar.close()
    return values["loss"], values["accuracy"]


def evaluate(model, loader, loss_fn: Loss = F.cross_entropy) -> tuple[float, float]:
    """(mean loss, accuracy) of ``model`` over ``loader`` in eval mode, without gradients.

    Note the order: the loader before the loss, as in ``train_epoch``; ``fit`` takes the loss
    first (``fit(model, loss, optimizer, loader, epochs)``).

    Raises:
        TypeError: ``model`` is not a Module, ``loader`` not iterable (or a Module) or
            ``loss_fn`` not a function (swapped, say).
    """
    check_pass_arguments("evaluate", "(model, loader, loss_fn=cross_entropy)", model, {"loader": loader},
                         ("loss_fn", loss_fn))
    values = evaluation_pass(model, loader, loss_fn, METRICS)
    return values["loss"], values["accuracy"]
