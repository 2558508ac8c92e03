"""A value that must never be shown: tokens, keys, secrets of the settings.

In the domain, not the store, because every layer passes them (the store encrypts them,
the providers send them to Google, the settings hold them), and a provider knows no
database (issue 20 item 7). `calsync.store.secrets` encrypts them at rest.
"""

from __future__ import annotations

import hmac
from typing import Final, final

__all__ = ["REDACTED", "Secret"]

REDACTED: Final = "**********"


@final
class Secret:
    """A string that does not show itself: ``repr``/``str``/``format`` are redacted.

    ``reveal()`` returns the value; call it only where the value leaves the process
    (an HTTP header, an encryption call). Equality is constant-time. It is not a
    ``str`` subclass on purpose, so string operations cannot leak it by accident.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        """Return the wrapped value."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    def __str__(self) -> str:
        return REDACTED

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Secret:
        return self

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the value somewhere (a queue, a cache) unencrypted.
        raise TypeError("Secret values are not picklable; encrypt them with SecretBox")
