"""The check every numeric hyperparameter goes through (optimizers, schedules, clipping, layers,
losses): a real number, in range, finite unless infinity means something there."""

from __future__ import annotations

import math
import numbers
from typing import Any


def checked_number(value: Any, label: str, low: float = 0.0, high: float | None = None,
                   high_open: bool = False, allow_inf: bool = False, low_open: bool = False) -> float:
    """``value`` as a Python float (so NumPy scalars never reach the arrays), if it is a real
    number in [low, high] (``low_open`` and ``high_open`` leave out the ends; no upper bound when
    ``high`` is None; no lower bound when ``low`` is -inf) and finite (``allow_inf`` admits
    +-inf where it means something, such as the inf-norm).

    Raises:
        TypeError: not a real number. ValueError: ``Invalid {label}: {value} (expected ...)``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Invalid {label}: {value!r} (expected a real number)")
    number = float(value)
    above = number > low if low_open else number >= low
    if high is None:
        # lr=inf turns every weight into inf or NaN at the first step
        inside = above and (allow_inf or not math.isinf(number))
        bound = "" if low == -math.inf else f" {'>' if low_open else '>='} {low:g}"
        expected = f"a number{bound}" if allow_inf else f"a finite number{bound}"
    else:
        inside = above and (number < high if high_open else number <= high)
        expected = f"a value in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if not inside:  # NaN lands here too
        raise ValueError(f"Invalid {label}: {value} (expected {expected})")
    return number
