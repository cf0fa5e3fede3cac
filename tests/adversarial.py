"""Shared shape of the adversarial tests: each case is a call and what it must do, a clear error or a result.

``Raises(TypeError, "argument name")`` means: the call raises that type with a message matching the regex.
Anything else is the documented result the call must return (compared with ==, or by a predicate when the
expectation is a callable wrapped in `Holds`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import pytest


@dataclass(frozen=True)
class Raises:
    type: type[BaseException]
    match: str


@dataclass(frozen=True)
class Holds:
    """The result must satisfy `predicate` (described by `what` in the failure message)."""

    predicate: Callable[[Any], bool]
    what: str


def case(case_id: str, call: Callable[[], Any], expected: Any):
    return pytest.param(call, expected, id=case_id)


def check(call: Callable[[], Any], expected: Any) -> None:
    if isinstance(expected, Raises):
        with pytest.raises(expected.type) as error:
            call()
        assert re.search(expected.match, str(error.value)), f"message {str(error.value)!r} lacks {expected.match!r}"
    elif isinstance(expected, Holds):
        result = call()
        assert expected.predicate(result), f"{result!r} is not {expected.what}"
    else:
        assert call() == expected
