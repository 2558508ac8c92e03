"""What the ``calsync`` command tells the operator when it fails: an exception in, one
line on stderr out (`operator_error`, `fail`), and the progress lines of long commands."""

from __future__ import annotations

import sys
from collections.abc import Callable


def operator_error(exc: BaseException) -> str | None:
    """One line saying what the operator must fix, for the failures that are theirs to
    fix (a dependency down, a key file missing, a secret no key decrypts); ``None`` for
    anything else. Never echoes a setting's value: a database URL holds a password."""
    from cryptography.fernet import InvalidToken
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import DBAPIError, OperationalError

    from calsync.store.migrate import MigrationRefused
    from calsync.store.secrets import SecretDecryptError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OperationalError | DBAPIError):
            reason = _first_line(str(current.orig)) if current.orig else type(current).__name__
            return f"cannot use the database (CALSYNC_DATABASE_URL): {reason}"
        if isinstance(current, RedisConnectionError | RedisTimeoutError):
            return f"cannot reach Redis (CALSYNC_REDIS_URL): {_first_line(str(current))}"
        if isinstance(current, MigrationRefused):
            return f"migration refused: {current}"
        if isinstance(current, SecretDecryptError | InvalidToken):
            return (
                "a stored secret decrypts under no key of CALSYNC_ENCRYPTION_KEYS: keep the"
                " key it was encrypted with in the list (newest first) and run again"
            )
        if isinstance(current, FileNotFoundError | PermissionError) and current.filename:
            return f"cannot read {current.filename}: {current.strerror}"
        if isinstance(current, ConnectionError):
            return f"cannot connect: {_first_line(str(current)) or type(current).__name__}"
        current = current.__cause__ or current.__context__
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def fail(message: str) -> None:
    """Write ``calsync: <message>`` on stderr (the caller returns the status)."""
    print(f"calsync: {message}", file=sys.stderr)


def progress(what: str) -> Callable[[int, int], None]:
    """A progress reporter that writes ``calsync: <what>: done/total`` lines to stderr."""

    def report(done: int, total: int) -> None:
        print(f"calsync: {what}: {done}/{total}", file=sys.stderr, flush=True)

    return report
