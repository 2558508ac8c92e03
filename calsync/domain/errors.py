"""The domain's own errors: what a use case refuses, in words a client can act on.

`ValidationError` (several at once: `FieldErrors`) names the field and says what is
wrong, so the web layer can turn it into a 422 with details and the sync layer can log
it. It is a `ValueError` because it is raised for bad values; code that catches
`ValueError` keeps working. The use cases of `calsync.events` refuse the rest with
`NotFound` (what the caller names does not exist for them), `Forbidden` (it exists, but
the caller or Google may not change it so), `Stale` (the caller's version is not the
current one), `NotConnectedYet` (the calendars a sign-in connects are not listed yet)
and `IdempotencyKeyReused`. None of them knows HTTP: `calsync.web.errors`
is the one place that maps them to statuses and the API's error bodies (decision HE2).
"""

from __future__ import annotations


class ValidationError(ValueError):
    """A value broke a domain rule.

    `field` is the name of the offending field as clients know it (`start`, `end`,
    `timezone`, `recurrence`, `attendees`, ...); `message` says what is wrong in words a
    client can act on. `issue` says what kind of problem it is, as the API's error
    details name it: ``invalid`` (the default), ``required``, ``unknown`` (no such
    field), ``read_only`` (set by calsync), ``forbidden`` (a `Forbidden`'s problems).
    """

    def __init__(self, field: str, message: str, *, issue: str = "invalid") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.issue = issue

    def __repr__(self) -> str:
        shown = f"field={self.field!r}, message={self.message!r}"
        if self.issue != "invalid":
            shown += f", issue={self.issue!r}"
        return f"ValidationError({shown})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValidationError):
            return NotImplemented
        return (self.field, self.message, self.issue) == (other.field, other.message, other.issue)

    def __hash__(self) -> int:
        return hash((self.field, self.message, self.issue))


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


class Refused(Exception):
    """A use case refused a request: `message` says why, in words a client can act on;
    `problems` name the fields concerned, if any (in the order found). The subclasses
    say how; a plain `Refused` is never raised."""

    def __init__(self, message: str, problems: list[ValidationError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems or ())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, {self.problems!r})"


class NotFound(Refused):
    """What the caller names does not exist, or is not theirs (another user's event is
    not found, never forbidden: its existence is not told)."""


class Forbidden(Refused):
    """What the caller names exists and is theirs to see, but neither they nor, for a
    change Google allows nobody (decisions K2, K3), anyone may change it so."""


class NotConnectedYet(Refused):
    """The user signed in with calendar access, but their calendars are not listed yet
    (the connection the sign-in queued has not run): the same request succeeds soon."""


class Stale(Refused):
    """The version the caller holds (``If-Match``) is no longer the current one."""


class IdempotencyKeyReused(Refused):
    """An idempotency key came again with another request than the one it first named."""
