"""Optimizers (parameter groups, PyTorch's step() over chains of update transforms),
learning-rate schedules and gradient clipping."""

from . import lr_scheduler, transform
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .clip import clip_grad_norm_, clip_grad_value_
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam", "Optimizer", "RAdam", "RMSprop", "SGD",
    "clip_grad_norm_", "clip_grad_value_", "lr_scheduler", "optimizers", "transform",
]


def optimizers() -> dict[str, type[Optimizer]]:
    """Every optimizer this package exports (its ``__all__``), by its name in lower case ("sgd",
    "adamw", ...): the gdnet command's --optimizer choices, so exporting one is all it takes."""
    exported = (globals()[name] for name in __all__)
    return {cls.__name__.lower(): cls for cls in exported
            if isinstance(cls, type) and issubclass(cls, Optimizer) and cls is not Optimizer}
