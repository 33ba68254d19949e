"""Training: ``fit`` (the loop with metrics, validation, callbacks and a progress bar), its
History and callbacks; checkpoints (``save``, ``load``, ``load_into``: safetensors files that
resume a run exactly); and ``train_epoch``/``evaluate``, the passes fit is made of. Metrics
accumulate on the device and are read once per pass."""

from .callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    JSONLinesLogger,
    LearningRateScheduler,
    ModelCheckpoint,
    TerminateOnNaN,
)
from .checkpoint import Checkpoint, CheckpointError, load, load_into, save
from .fitting import FitRun, fit
from .history import History
from .loop import METRICS, evaluate, train_epoch

__all__ = [
    "METRICS", "CSVLogger", "Callback", "Checkpoint", "CheckpointError", "EarlyStopping", "FitRun", "History",
    "JSONLinesLogger", "LearningRateScheduler", "ModelCheckpoint", "TerminateOnNaN", "evaluate", "fit", "load",
    "load_into", "save", "train_epoch",
]
