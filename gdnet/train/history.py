"""History: what ``fit`` measured, one row per epoch."""

from __future__ import annotations

import json
import math
from typing import Any, Iterator, Mapping

from ._files import atomic_write


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

    ``history["loss"]`` is a column (one value per epoch); ``history.rows`` the rows.

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

    def __repr__(self) -> str:
        last = self.rows[-1] if self.rows else {}
        figures = ", ".join(f"{k}={v:.4g}" for k, v in last.items() if k != "epoch" and isinstance(v, float))
        return f"History({len(self)} epochs{': last ' + figures if figures else ''})"
