"""History: what ``fit`` measured, one row per epoch."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

from .._io import atomic_write, existing_parent

# columns that are not curves of a metric
_NOT_CURVES = ("epoch", "seconds", "examples_per_second")


def finite_or_none(value: Any) -> Any:
    """``value`` with non-finite floats as None, so JSON written from it is standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class History:
    """Per-epoch metrics of a training run.

    Each row is a dict: "epoch" (counted from 1), "loss" and each metric over the training
    pass ("accuracy"), the same on the validation set with a ``val_`` prefix when there is one,
    "lr" (the first parameter group's rate during the epoch; "lr_1", ... for other groups),
    "seconds" (the training pass) and "examples_per_second".

    ``history["loss"]`` is a column (one value per epoch); ``history.rows`` the rows;
    ``to_dict()``/``to_json()`` save it; ``plot("curves.png")`` draws it (with matplotlib).

    Attributes:
        rows: one dict per epoch, in order.
        stop_reason: why training ended before its last epoch (a callback's words), or None.
    """

    def __init__(self, rows: Any = ()) -> None:
        self.rows: list[dict[str, Any]] = [dict(row) for row in rows]
        self.stop_reason: str | None = None

    def append(self, epoch: int, logs: Mapping[str, Any]) -> None:
        self.rows.append({"epoch": epoch, **logs})

    def keys(self) -> list[str]:
        """Column names, in the order they first appear."""
        names: dict[str, None] = {}
        for row in self.rows:
            names.update(dict.fromkeys(row))
        return list(names)

    def __getitem__(self, key: str) -> list[Any]:
        if key not in self.keys():
            raise KeyError(f"the history has no {key!r}; it has {self.keys()}")
        return [row.get(key, math.nan) for row in self.rows]

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    # -- saving ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, list[Any]]:
        """Columns: {"epoch": [1, 2, ...], "loss": [...], ...}."""
        return {key: self[key] for key in self.keys()}

    def to_json(self, path: str | None = None) -> str:
        """The columns as standard JSON (NaN and infinities as null); also written to ``path``."""
        text = json.dumps({key: [finite_or_none(v) for v in column] for key, column in self.to_dict().items()})
        if path is not None:
            atomic_write(path, [text.encode()])
        return text

    @classmethod
    def from_dict(cls, columns: Mapping[str, list[Any]]) -> "History":
        """The History whose ``to_dict()`` is ``columns`` (None values become NaN)."""
        lengths = {key: len(column) for key, column in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"history columns must all have one value per epoch; got lengths {lengths}")
        count = next(iter(lengths.values()), 0)
        return cls([{key: (math.nan if columns[key][i] is None else columns[key][i]) for key in columns}
                    for i in range(count)])

    @classmethod
    def from_json(cls, text: str) -> "History":
        """The History ``to_json()`` wrote."""
        return cls.from_dict(json.loads(text))

    # -- plotting ----------------------------------------------------------------------------
    def figure(self, title: str | None = None):
        """A matplotlib Figure with one panel per logged value (loss first, then each metric),
        training and validation curves against the epoch. Needs matplotlib (no pyplot: nothing
        global changes)."""
        if not self.rows:
            raise ValueError("nothing to plot: the history has no epochs")
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as exc:
            raise ImportError("History.plot needs matplotlib; install it with `pip install matplotlib` (or "
                              "`pip install -e '.[plot]'` in the gdnet checkout)") from exc
        names = [k for k in self.keys() if k not in _NOT_CURVES and not k.startswith(("val_", "lr"))]
        figure = Figure(figsize=(4.5 * len(names), 3.6), layout="constrained")
        FigureCanvasAgg(figure)  # the Agg canvas draws without a display
        epochs = self["epoch"]
        for axes, name in zip(figure.subplots(1, len(names), squeeze=False)[0], names):
            axes.plot(epochs, self[name], marker="o", label="training")
            if f"val_{name}" in self:
                axes.plot(epochs, self[f"val_{name}"], marker="o", label="validation")
            axes.set(title=name, xlabel="epoch", ylabel=name)
            axes.xaxis.get_major_locator().set_params(integer=True)  # no epoch 1.5
            axes.grid(alpha=0.3)
            axes.legend()
        if title:
            figure.suptitle(title)
        return figure

    def plot(self, path: str | os.PathLike, title: str | None = None, dpi: int = 100) -> Path:
        """Draw the loss and accuracy (and other metrics') curves, training and validation, into
        an image file: PNG, or the format ``path``'s suffix names (svg, pdf, ...). Written
        atomically; returns the path.

        Raises:
            ImportError: matplotlib is missing (``pip install matplotlib``).
            FileNotFoundError: ``path``'s directory does not exist.
        """
        existing_parent(path)
        figure = self.figure(title)
        image = io.BytesIO()
        figure.savefig(image, format=Path(path).suffix[1:].lower() or "png", dpi=dpi)
        atomic_write(path, [image.getvalue()])
        return Path(path)

    def __repr__(self) -> str:
        last = self.rows[-1] if self.rows else {}
        figures = ", ".join(f"{k}={v:.4g}" for k, v in last.items() if k != "epoch" and isinstance(v, float))
        return f"History({len(self)} epochs{': last ' + figures if figures else ''})"
