"""Encryption at rest for stored secrets (OAuth tokens), and a redacting wrapper.

This module owns two things:

- :class:`SecretBox`, authenticated symmetric encryption of small strings under a
  list of Fernet keys (``CALSYNC_ENCRYPTION_KEYS``, comma separated, newest first)
  via :class:`cryptography.fernet.MultiFernet`. New ciphertexts always use the
  newest key; every configured key can decrypt; :meth:`SecretBox.rotate` moves a
  ciphertext to the newest key so old keys can be retired (``calsync rotate-keys``).
- :class:`Secret` (defined in `calsync.domain.secret`, re-exported here), a string
  wrapper whose ``repr`` and ``str`` are redacted, for passing tokens around in memory
  without leaking them into logs or tracebacks.

It does no I/O and reads no environment: the caller passes the setting's value.
See https://cryptography.io/en/latest/fernet/#cryptography.fernet.MultiFernet
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from calsync.domain.secret import REDACTED, Secret

__all__ = [
    "ENCRYPTION_KEYS_SETTING",
    "REDACTED",
    "Secret",
    "SecretBox",
    "SecretConfigError",
    "SecretDecryptError",
]

ENCRYPTION_KEYS_SETTING: Final = "CALSYNC_ENCRYPTION_KEYS"


class SecretConfigError(ValueError):
    """The encryption keys setting is missing or malformed. Never contains key material."""


class SecretDecryptError(Exception):
    """A ciphertext could not be decrypted with any configured key.

    Raised for tampered or truncated ciphertexts, ciphertexts made under a key that
    is no longer configured, and non-UTF-8 plaintexts. Carries no content.
    """

    def __init__(self) -> None:
        super().__init__("stored secret could not be decrypted with any configured key")


@final
class SecretBox:
    """Encrypts and decrypts short strings under a newest-first list of Fernet keys.

    Thread-safe (Fernet is). Ciphertexts are URL-safe base64 ``bytes`` that carry
    their creation time; this class never expires them (no TTL): stored OAuth
    tokens stay readable until their key is removed from the list.
    """

    __slots__ = ("_multi", "_newest")

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        """Build from keys, newest first.

        Raises:
            SecretConfigError: no keys, or a key is not 32 url-safe base64-encoded
                bytes. The message gives the key's position, never its value.
        """
        if isinstance(keys, str | bytes):
            raise TypeError("keys must be a sequence of keys, not one string")
        if not keys:
            raise SecretConfigError("no encryption keys given; at least one Fernet key is needed")
        fernets = [_fernet(key, position=i + 1, total=len(keys)) for i, key in enumerate(keys)]
        self._newest = fernets[0]
        self._multi = MultiFernet(fernets)

    @classmethod
    def from_setting(cls, value: str) -> SecretBox:
        """Build from the ``CALSYNC_ENCRYPTION_KEYS`` value: comma separated, newest first.

        Blank entries and surrounding whitespace are ignored.

        Raises:
            SecretConfigError: naming ``CALSYNC_ENCRYPTION_KEYS`` and the bad key's
                position; the key material is not echoed.
        """
        keys = [part.strip() for part in value.split(",") if part.strip()]
        if not keys:
            raise SecretConfigError(
                f"{ENCRYPTION_KEYS_SETTING} is empty: set it to one or more Fernet keys, "
                "comma separated, newest first (generate one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            )
        try:
            return cls(keys)
        except SecretConfigError as err:
            raise SecretConfigError(f"{ENCRYPTION_KEYS_SETTING}: {err}") from None

    @staticmethod
    def generate_key() -> str:
        """Return a fresh random Fernet key (for embedded mode and operators)."""
        return Fernet.generate_key().decode("ascii")

    def encrypt(self, plaintext: str) -> bytes:
        """Encrypt ``plaintext`` (UTF-8) under the newest key; returns the Fernet token."""
        return self._multi.encrypt(plaintext.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        """Decrypt a token made under any configured key.

        Raises:
            SecretDecryptError: tampered, foreign-key, malformed or non-UTF-8 token.
        """
        try:
            return self._multi.decrypt(token).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError, TypeError, ValueError):
            raise SecretDecryptError() from None

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt a token under the newest key, keeping its original timestamp.

        Rotating a token that is already current is harmless (it gets a fresh IV).

        Raises:
            SecretDecryptError: no configured key can decrypt the token.
        """
        try:
            return self._multi.rotate(token)
        except (InvalidToken, TypeError, ValueError):
            raise SecretDecryptError() from None

    def is_current(self, token: bytes) -> bool:
        """Return True if the newest key alone decrypts ``token``.

        False means the token needs :meth:`rotate` or is undecryptable; this method
        does not tell those apart and never raises for bad input.
        """
        try:
            self._newest.decrypt(token)
        except (InvalidToken, TypeError, ValueError):
            return False
        return True

    def __repr__(self) -> str:
        return f"SecretBox(keys={REDACTED})"


def _fernet(key: str | bytes, *, position: int, total: int) -> Fernet:
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        # `from None`: the underlying binascii error could quote part of the key.
        raise SecretConfigError(
            f"key {position} of {total} is not a valid Fernet key "
            "(expected 32 url-safe base64-encoded bytes)"
        ) from None
