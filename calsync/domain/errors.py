"""The domain's own error: a rule about an event that input broke.

`ValidationError` names the field and says what is wrong, so the web layer can turn it
into a 422 with details and the sync layer can log it. It is a `ValueError` because it is
raised for bad values; code that catches `ValueError` keeps working.
"""

from __future__ import annotations


class ValidationError(ValueError):
    """A value broke a domain rule.

    `field` is the name of the offending field as clients know it (`start`, `end`,
    `timezone`, `recurrence`, `attendees`, ...); `message` says what is wrong in words a
    client can act on.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __repr__(self) -> str:
        return f"ValidationError(field={self.field!r}, message={self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValidationError):
            return NotImplemented
        return (self.field, self.message) == (other.field, other.message)

    def __hash__(self) -> int:
        return hash((self.field, self.message))


class NeverOccurs(ValidationError):
    """A recurrence rule that yields no instance (an impossible BYMONTHDAY, an UNTIL
    before the start, an INTERVAL that never reaches its BY values). The API refuses such
    a rule, but Google stores it and the series still has its start as its one instance
    (RFC 5545 3.8.5.3): expansion drops the rule instead of the series."""


class FieldErrors(ValidationError):
    """Several fields broke rules at once: `problems` holds one `ValidationError` each,
    in the order found. It is itself the first problem (``field``, ``message``), so code
    that handles a single `ValidationError` keeps working; the API names them all."""

    def __init__(self, problems: list[ValidationError]) -> None:
        if not problems:
            raise ValueError("FieldErrors needs at least one problem")
        super().__init__(problems[0].field, problems[0].message)
        self.problems = list(problems)

    def __repr__(self) -> str:
        return f"FieldErrors({self.problems!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldErrors):
            return NotImplemented
        return self.problems == other.problems

    def __hash__(self) -> int:
        return hash(tuple(self.problems))
