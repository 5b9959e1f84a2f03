"""The one rule for what counts as a number in a record, shared by encoding, derived fields and diagnosis.

A number is a JSON integer or float that is finite and fits the float32 the boosters read (|x| <= 3.4e38);
true and false count as 1 and 0 (flags such as senior_citizen). Anything else is invalid.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FLOAT32_MAX = float(np.finfo(np.float32).max)
NUMBER_MESSAGE = "must be a finite number (|x| <= 3.4e38) or null"


def as_number(value: Any) -> float | None:
    """The value as a float, None for null; ValueError for anything that is not a usable number."""
    if value is None:
        return None
    if isinstance(value, int | float):  # bool is an int
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise ValueError(NUMBER_MESSAGE) from None
        if math.isfinite(number) and abs(number) <= FLOAT32_MAX:
            return number
    raise ValueError(NUMBER_MESSAGE)


def is_number(value: Any) -> bool:
    """A usable number (not null)."""
    try:
        return as_number(value) is not None
    except ValueError:
        return False
