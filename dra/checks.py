"""Argument checks shared by the public functions: one message style, the argument always named.

Wrong types raise TypeError, values of the right type out of range raise ValueError; every message names the
argument, says what it must be and shows what it got. bool is never accepted as a number (``True`` is an int in
Python, but a flag passed where a count belongs is a mistake).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any, Sequence

import numpy as np


def integer(value: Any, name: str, minimum: int | None = None) -> int:
    """`value` as an int (numpy integers too); raises unless it is an integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}.")
    return int(value)


def real(value: Any, name: str, low: float = -math.inf, high: float = math.inf, *,
         low_open: bool = False, high_open: bool = False) -> float:
    """`value` as a finite float in [low, high] (an open end with low_open/high_open); raises otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__}).")
    number = float(value)
    below = number <= low if low_open else number < low
    above = number >= high if high_open else number > high
    if not math.isfinite(number) or below or above:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}.")
    return number


def flag(value: Any, name: str) -> bool:
    """`value` if it is a bool (numpy's too); raises TypeError otherwise."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__}).")
    return bool(value)


def choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """`value` if it is one of `choices`; raises ValueError naming them otherwise."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}.")
    return value


def items(values: Any, name: str, what: str = "items") -> list:
    """`values` as a list; refuses a single string (which would be read character by character) and non-iterables."""
    if isinstance(values, (str, bytes, bytearray)):
        raise TypeError(f"{name} must be a list of {what}, got a single {type(values).__name__}: wrap it as [value].")
    if isinstance(values, dict) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a list of {what}, got {type(values).__name__}.")
    return list(values)
