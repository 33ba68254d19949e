"""One epoch of training and one pass of evaluation for classifiers.

These are sugar over the plain loop in the README, not a framework: the loss, correct-count and
example-count accumulate as device arrays and are read once at the end, so a training step has
no host synchronisation.
"""

from __future__ import annotations

from typing import Any, Callable

from ..autograd import Tensor, no_grad
from ..nn import functional as F

Loss = Callable[[Tensor, Any], Tensor]


class _Tally:
    """Sums of loss and hits over batches, kept on the device until read."""

    def __init__(self) -> None:
        self.loss_sum: Any = None
        self.hits: Any = None
        self.count = 0

    def add(self, loss: Tensor, scores: Tensor, labels: Any, batch: int) -> None:
        n = float(batch)
        loss_sum = loss.data * n
        hits = F.accuracy(scores.detach(), labels).data * n
        self.loss_sum = loss_sum if self.loss_sum is None else self.loss_sum + loss_sum
        self.hits = hits if self.hits is None else self.hits + hits
        self.count += batch

    def read(self) -> tuple[float, float]:
        """(mean loss, accuracy): the one device read."""
        if not self.count:
            raise ValueError("no batches: the loader is empty")
        return float(self.loss_sum) / self.count, float(self.hits) / self.count


def _progress(iterable, total: int, enabled: bool, description: str):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=description, leave=False, unit="batch")


def train_epoch(model, loader, optimizer, loss_fn: Loss = F.cross_entropy, progress: bool = False,
                description: str = "", report_every: int = 50) -> tuple[float, float]:
    """One pass of gradient descent over ``loader``.

    Args:
        model: maps a batch x to (N, C) scores.
        loader: yields (x, labels) on the model's device.
        optimizer: anything with zero_grad() and step().
        loss_fn: ``loss_fn(scores, labels)`` -> mean loss (default cross-entropy).
        progress: show a tqdm bar, with loss and accuracy read every ``report_every`` steps.
    Returns:
        (mean training loss, training accuracy) over the epoch.
    """
    model.train()
    tally = _Tally()
    bar = _progress(loader, len(loader), progress, description)
    for step, (x, y) in enumerate(bar, start=1):
        scores = model(x)
        loss = loss_fn(scores, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        tally.add(loss, scores, y, len(y))
        if progress and step % report_every == 0:
            loss_now, accuracy_now = tally.read()
            bar.set_postfix(loss=f"{loss_now:.4f}", acc=f"{accuracy_now:.2%}")
    return tally.read()


def evaluate(model, loader, loss_fn: Loss = F.cross_entropy) -> tuple[float, float]:
    """(mean loss, accuracy) of ``model`` over ``loader`` in eval mode, without gradients."""
    was_training = model.training
    model.eval()
    tally = _Tally()
    with no_grad():
        for x, y in loader:
            scores = model(x)
            tally.add(loss_fn(scores, y), scores, y, len(y))
    model.train(was_training)
    return tally.read()
