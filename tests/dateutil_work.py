"""Counting the work python-dateutil does, without a clock.

`DateutilWork` counts the lines executed in dateutil's rrule module and in the standard
library's `calendar` (which dateutil calls to carry days into months) while it is active,
on this thread. With a `cap`, the count stops the traced code with `TooMuchWork` once it
is passed, so a test of code that would iterate for minutes fails at once instead.
"""

from __future__ import annotations

import calendar
import sys
from types import FrameType, TracebackType
from typing import Any, Final

import dateutil.rrule

_FILES: Final = frozenset({dateutil.rrule.__file__, calendar.__file__})

LINES_PER_UNIT: Final = 10
"""dateutil lines that one work unit of `calsync.domain.rule_plans` may stand for: the
largest ratio measured over every rule shape is about 6.5 (a YEARLY rule whose day test,
a condition over eleven lines, runs for each of 366 days)."""


class TooMuchWork(Exception):
    """dateutil executed more lines than the cap allowed."""


class DateutilWork:
    """Context manager counting dateutil's executed lines (`lines`) on this thread."""

    def __init__(self, cap: int | None = None) -> None:
        self.cap = cap
        self.lines = 0
        self._previous: Any = None

    def __enter__(self) -> DateutilWork:
        self._previous = sys.gettrace()
        sys.settrace(self._calls)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        sys.settrace(self._previous)

    def _calls(self, frame: FrameType, event: str, arg: object) -> Any:
        if frame.f_code.co_filename in _FILES:
            return self._lines
        return None

    def _lines(self, frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            self.lines += 1
            if self.cap is not None and self.lines > self.cap:
                raise TooMuchWork(f"dateutil executed more than {self.cap} lines")
        return self._lines
