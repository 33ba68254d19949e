"""Training: ``fit`` (the loop with metrics, validation, callbacks and a progress bar), its
History and callbacks, and ``train_epoch``/``evaluate``, the passes it is made of. Metrics
accumulate on the device and are read once per pass."""

from .callbacks import Callback, LearningRateScheduler
from .fitting import FitRun, fit
from .history import History
from .loop import METRICS, evaluate, train_epoch

__all__ = ["METRICS", "Callback", "FitRun", "History", "LearningRateScheduler", "evaluate", "fit", "train_epoch"]
