"""The statements of a package that ran, by stage, with ``sys.settrace``.

`LineTracer` records every line event of the code under a root folder (minus the
folders it omits) while it runs, in the thread that starts it and in the threads
started meanwhile (the event loop's executor, the listing's helper thread). Each line
is put in a *stage*: the innermost stage marker on the thread's stack (a function,
given as ``module:qualname``, entered and not yet returned), else the stage the driver
set (`LineTracer.stage`). A helper thread has no markers of its own: its lines go to
the stage of the thread that started the tracer, which is waiting on it. Threads
serving something else (the emulator's, whose stacks hold a frame of an omitted
folder) are not counted.

`statements_run` turns the recorded lines into statements, as coverage.py counts
them: each line is mapped to the innermost statement (``ast``) that spans it, so a
statement written over several lines counts once, and docstrings, comments and blank
lines never count (they raise no line event). Module bodies are not measured: the
driver imports what it measures before it starts (import time is not on any path).
"""

from __future__ import annotations

import ast
import bisect
import functools
import importlib
import sys
import threading
import types
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: A trace function as sys.settrace takes it.
Trace = Any


def code_of(spec: str) -> types.CodeType | None:
    """The code object of ``module:qualname`` (``<locals>`` parts walk nested code);
    None when the module or the name does not exist (an older or newer tree)."""
    module_name, _, qualname = spec.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError:
        return None
    parts = qualname.split(".")
    code: types.CodeType | None = None
    for index, part in enumerate(parts):
        if part == "<locals>":
            continue
        if code is not None:  # a function defined inside the previous one
            code = next(
                (c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == part),
                None,
            )
            if code is None:
                return None
            continue
        found = getattr(found, part, None)
        if found is None:
            return None
        inner = getattr(found, "__wrapped__", found)
        if isinstance(inner, types.FunctionType | types.MethodType):
            code = inner.__code__
        elif index == len(parts) - 1:
            return None
    return code


class LineTracer:
    """Records the lines run under `root` (not under `omit`), by stage.

    `markers` maps ``module:qualname`` to a stage name; names that do not resolve are
    ignored (`code_of`). Use as a context manager around the measured span; `paused`
    stops recording within it.
    """

    def __init__(self, root: Path, omit: Iterable[Path], markers: Mapping[str, str]) -> None:
        self._root = str(root.resolve()) + "/"
        self._omit = tuple(str(p.resolve()) + "/" for p in omit)
        self._markers: dict[types.CodeType, str] = {}
        self.unresolved: list[str] = []
        for spec, stage in markers.items():
            code = code_of(spec)
            if code is None:
                self.unresolved.append(spec)
            else:
                self._markers[code] = stage
        #: stage -> file -> line numbers run
        self.lines: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
        self._ours: dict[str, bool] = {}
        self._stacks: dict[int, list[str]] = {}
        self._main = threading.get_ident()
        self._base = "outside"
        self._on = False

    def __enter__(self) -> LineTracer:
        self._main = threading.get_ident()
        self._on = True
        threading.settrace(self._call)
        sys.settrace(self._call)
        return self

    def __exit__(self, *_exc: object) -> None:
        sys.settrace(None)
        threading.settrace(None)
        self._on = False

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Lines not under a marker go to stage `name` meanwhile."""
        before, self._base = self._base, name
        try:
            yield
        finally:
            self._base = before

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Record nothing meanwhile (tear-down inside the traced span)."""
        self._on = False
        try:
            yield
        finally:
            self._on = True

    def _is_ours(self, filename: str) -> bool:
        ours = self._ours.get(filename)
        if ours is None:
            ours = filename.startswith(self._root) and not filename.startswith(self._omit)
            self._ours[filename] = ours
        return ours

    def _serves_omitted(self, frame: types.FrameType | None) -> bool:
        """Whether a frame of an omitted folder is on this stack (the emulator's threads)."""
        while frame is not None:
            if frame.f_code.co_filename.startswith(self._omit):
                return True
            frame = frame.f_back
        return False

    def _current(self, ident: int) -> str:
        stack = self._stacks.get(ident)
        if stack:
            return stack[-1]
        if ident != self._main:
            main = self._stacks.get(self._main)
            if main:
                return main[-1]
        return self._base

    def _call(self, frame: types.FrameType, event: str, _arg: object) -> Trace:
        if not self._on or event != "call":
            return None
        code = frame.f_code
        marker = self._markers.get(code)
        ours = self._is_ours(code.co_filename) and code.co_name != "<module>"
        if marker is None and not ours:
            return None
        ident = threading.get_ident()
        if ident != self._main and self._serves_omitted(frame):
            return None
        if marker is not None:
            self._stacks.setdefault(ident, []).append(marker)
            return functools.partial(self._marked, ident, code.co_filename if ours else None)
        return functools.partial(self._line, ident, code.co_filename)

    def _line(
        self, ident: int, filename: str, frame: types.FrameType, event: str, _a: object
    ) -> Trace:
        if event == "line" and self._on:
            self.lines[self._current(ident)][filename].add(frame.f_lineno)
        return functools.partial(self._line, ident, filename)

    def _marked(
        self, ident: int, filename: str | None, frame: types.FrameType, event: str, _a: object
    ) -> Trace:
        if event == "return":
            stack = self._stacks.get(ident)
            if stack:
                stack.pop()
            return None
        if event == "line" and filename is not None and self._on:
            self.lines[self._current(ident)][filename].add(frame.f_lineno)
        return functools.partial(self._marked, ident, filename)


@dataclass(frozen=True)
class Statements:
    """The statements of one source file: sorted first lines and their spans."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def statement_at(self, line: int) -> int | None:
        """The first line of the innermost statement spanning `line` (None: none does)."""
        index = bisect.bisect_right(self.starts, line) - 1
        while index >= 0:
            if self.ends[index] >= line:
                return self.starts[index]
            index -= 1
        return None


@functools.cache
def statements_of(filename: str) -> Statements:
    """The statements of `filename` (a decorated definition starts at its first
    decorator; a statement's span ends where its header or its last line does)."""
    tree = ast.parse(Path(filename).read_text(), filename)
    spans: dict[int, int] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt):
            continue
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        end = node.end_lineno or node.lineno
        spans[start] = max(spans.get(start, 0), end)
    starts = tuple(sorted(spans))
    return Statements(starts, tuple(spans[s] for s in starts))


def statements_run(lines: Mapping[str, set[int]]) -> dict[str, set[int]]:
    """Per file, the first lines of the statements that ran, from the lines that did."""
    found: dict[str, set[int]] = {}
    for filename, numbers in lines.items():
        statements = statements_of(filename)
        run = {s for s in map(statements.statement_at, numbers) if s is not None}
        if run:
            found[filename] = run
    return found
