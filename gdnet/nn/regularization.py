"""L1 and L2 weight penalties to add to a loss.

Which parameters: the ``weight`` of every Linear, Conv1d and Conv2d layer in the model, and
nothing else. Biases and the scale and shift of normalisation layers are left out, as is usual
in PyTorch code (their size is not what overfits, and penalising a normalisation layer's weight
fights the normalisation).
"""

from __future__ import annotations

from typing import Iterator

from .. import ops
from .._creation import filled
from ..autograd import Tensor
from .conv import _ConvNd
from .layers import Linear
from .module import Module, Parameter

PENALISED = (Linear, _ConvNd)


def penalised_weights(model: Module) -> Iterator[Parameter]:
    """The weights the penalties cover: each Linear/Conv layer's ``weight``, once each."""
    seen: set[int] = set()
    for module in model.modules():
        weight = module._parameters.get("weight") if isinstance(module, PENALISED) else None
        if weight is not None and id(weight) not in seen:
            seen.add(id(weight))
            yield weight


def _total(model: Module, per_weight) -> Tensor:
    if not isinstance(model, Module):
        raise TypeError(f"weight penalties take a Module (the model); got {type(model).__name__}")
    total = None
    for weight in penalised_weights(model):
        term = ops.reduce_sum(per_weight(weight))
        total = term if total is None else total + term
    if total is None:  # a model without such layers: a zero on the active backend
        return Tensor(filled((), 0))
    return total


def l1_penalty(model: Module) -> Tensor:
    """sum(|w|) over the weights of the model's Linear and Conv layers (biases excluded).

    A 0-d Tensor in the graph: ``loss = cross_entropy(...) + 1e-4 * l1_penalty(model)``. Its
    gradient is sign(w) (0 at w == 0, as PyTorch's abs).
    """
    # |w| = w * sign(w) with the sign a constant: gradient sign(w), no sqrt or kink issues
    return _total(model, lambda w: w * Tensor(w.xp.sign(w.data)))


def l2_penalty(model: Module) -> Tensor:
    """sum(w ** 2) over the weights of the model's Linear and Conv layers (biases excluded).

    A 0-d Tensor in the graph, without the factor 1/2: ``lam * l2_penalty(model)`` adds
    ``2 * lam * w`` to each weight's gradient, the same as SGD's ``weight_decay=2 * lam`` on
    those weights only.
    """
    return _total(model, lambda w: w * w)
