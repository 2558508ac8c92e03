"""Two mistakes that compile silently into wrong SQL, found in SQL text.

- A comparison of a column with itself (``user_id = user_id``): always true, so the
  statement reads or changes rows of other users.
- A subquery in ``RETURNING``: SQLite compiles ``RETURNING`` with unqualified column
  names, so the subquery cannot be correlated with the row being returned. That is how
  the pull once read the first user's Google token for every user's calendar.

`tests/unit/store/test_statements_compile.py` applies them to the statements built at
import time, compiled for both databases; `tests/conftest.py` to every statement any
test executes.
"""

from __future__ import annotations

import re

__all__ = ["sql_mistakes"]

#: ``a = a``, ``t.a != t.a``, ``a IS a``...: a name compared with the very same name (not
#: an assignment such as ``n = n + 1``).
SELF_COMPARISON = re.compile(
    r"(?<![\w.\"])(\"?[A-Za-z_][\w]*\"?(?:\.\"?[A-Za-z_]\w*\"?)?)\s*"
    r"(=|!=|<>|<=|>=|<|>|IS NOT|IS)\s*\1(?![\w.\"(])(?!\s*[-+*/|%])"
)
#: ``RETURNING ... (SELECT``: a subquery among the returned values.
SUBQUERY_IN_RETURNING = re.compile(r"\bRETURNING\b[^;]*?\(\s*SELECT\b", re.IGNORECASE | re.DOTALL)


def sql_mistakes(sql: str) -> list[str]:
    """What is wrong with the SQL text `sql` (nothing: an empty list)."""
    found = [
        f"compares {match.group(1)} with itself: {match.group(0)!r}"
        for match in SELF_COMPARISON.finditer(sql)
    ]
    if SUBQUERY_IN_RETURNING.search(sql):
        found.append("a subquery in RETURNING")
    return found
