"""Checks of configuration values, shared by the route options and the server options.

Each says whether a value is acceptable; the caller names the option in its error.
"""

from __future__ import annotations

import math


def is_positive_int(value: object) -> bool:
    """An ``int`` of 1 or more; a bool is an int to Python, but not a size or a count."""
    return type(value) is int and value >= 1


def is_finite_number(value: object, *, zero: bool = False) -> bool:
    """A finite ``int`` or ``float`` above 0 (or at least 0 with ``zero``); not a bool, not NaN."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (value >= 0 if zero else value > 0)
        and value < math.inf
    )
