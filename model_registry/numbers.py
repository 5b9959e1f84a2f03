"""The one rule for what counts as a number in a record, shared by encoding, derived fields and diagnosis.

A number is a JSON integer or float that is finite and fits the float32 the boosters read (|x| <= 3.4e38).
Anything else is invalid, true and false included: a boolean is not a number in JSON (API.md: a wrong JSON
type is a 422), and a flag such as senior_citizen is sent as 0 or 1, as the data holds it.
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
    if isinstance(value, int | float) and not isinstance(value, bool):
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
