"""calsync's own bearer tokens: issue and verify JWTs for API callers.

The server pins exactly one signing algorithm (``HS256`` by default, or ``RS256`` /
Ed25519 with PEM keys); a token whose header names any other algorithm, ``none``
included, is rejected before its signature is looked at, which rules out the
classic key-confusion forgeries. Every failure is one exception, :class:`InvalidToken`,
whose ``reason`` is for server logs; clients only ever get :data:`PUBLIC_MESSAGE`.

Built on joserfc (https://jose.authlib.org/). This module does no I/O except in
:meth:`JWTConfig.from_key_files`, and knows nothing of users or HTTP: the web
layer decides what to do with :class:`Claims`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, get_args

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExceededSizeError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import Key, OctKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from calsync.store.secrets import Secret
from calsync.web.auth.moments import utc_moment

__all__ = [
    "PUBLIC_MESSAGE",
    "ROLES",
    "Algorithm",
    "Claims",
    "InvalidToken",
    "JWTConfig",
    "JWTConfigError",
    "Role",
    "issue_token",
    "verify_token",
]

Algorithm = Literal["HS256", "RS256", "EdDSA", "Ed25519"]
Role = Literal["admin", "user"]
ROLES: Final[frozenset[str]] = frozenset(get_args(Role))

#: What a client is told, whatever the reason.
PUBLIC_MESSAGE: Final = "The bearer token is missing, invalid or expired."

# RFC 9864 deprecates the polymorphic "EdDSA" in favour of the fully specified
# "Ed25519" (joserfc warns on "EdDSA"), so both configured names sign as Ed25519.
_HEADER_ALG: Final[dict[str, str]] = {
    "HS256": "HS256",
    "RS256": "RS256",
    "EdDSA": "Ed25519",
    "Ed25519": "Ed25519",
}
_MIN_HMAC_SECRET_BYTES: Final = 32  # RFC 7518 3.2: at least the hash output size
_MIN_RSA_BITS: Final = 2048
_MAX_LEEWAY: Final = timedelta(minutes=5)
_B64URL_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-]+")
_REQUIRED_CLAIMS: Final = ("iss", "aud", "sub", "exp", "iat", "jti", "email", "role")


class JWTConfigError(ValueError):
    """The JWT settings are unusable. Never contains key material."""


class InvalidToken(Exception):
    """A token was rejected. ``reason`` is for server logs only.

    The reason never contains the token, key material or anything else the client chose
    (an ``alg`` is named only when it is a known algorithm): reasons are a small fixed
    set, which the audit trail counts by. Send clients
    :data:`PUBLIC_MESSAGE` instead.
    """

    public_message: Final = PUBLIC_MESSAGE

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Claims:
    """The verified identity a token carries. Times are aware UTC datetimes."""

    subject: str
    email: str
    role: Role
    issued_at: datetime
    expires_at: datetime
    token_id: str


@dataclass(frozen=True)
class JWTConfig:
    """Server-side JWT settings; keys are parsed and checked once, at construction.

    ``HS256`` needs ``secret`` (at least 32 bytes). ``RS256`` (RSA, 2048 bits or
    more) and ``EdDSA``/``Ed25519`` (Ed25519 keys) need ``public_key_pem`` to
    verify and ``private_key_pem`` to issue; a public key is derived from the
    private one when only that is given. A verify-only deployment passes just
    the public key and gets :class:`JWTConfigError` from :func:`issue_token`.

    Raises:
        JWTConfigError: missing or wrong-type keys, a weak secret, a non-positive
            lifetime, or a leeway outside 0..5 minutes.
    """

    issuer: str
    audience: str
    algorithm: Algorithm = "HS256"
    secret: Secret | None = None
    private_key_pem: Secret | None = None
    public_key_pem: str | None = None
    lifetime: timedelta = timedelta(hours=1)
    leeway: timedelta = timedelta(seconds=30)
    max_token_bytes: int = 8 * 1024

    _signing_key: Key | None = field(init=False, repr=False, compare=False)
    _verifying_key: Key = field(init=False, repr=False, compare=False)
    _registry: JWSRegistry = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check_settings()
        signing, verifying = _load_keys(self)
        object.__setattr__(self, "_signing_key", signing)
        object.__setattr__(self, "_verifying_key", verifying)
        object.__setattr__(self, "_registry", JWSRegistry(algorithms=[self.header_alg]))

    @classmethod
    def from_key_files(
        cls,
        *,
        algorithm: Literal["RS256", "EdDSA", "Ed25519"],
        issuer: str,
        audience: str,
        private_key_file: Path | None = None,
        public_key_file: Path | None = None,
        lifetime: timedelta = timedelta(hours=1),
        leeway: timedelta = timedelta(seconds=30),
    ) -> JWTConfig:
        """Read PEM key files (this is the module's only I/O) and build the config.

        Raises:
            JWTConfigError: a file cannot be read, or its key does not fit (the
                message names the file, never its content).
        """
        private_pem = _read_pem(private_key_file) if private_key_file else None
        public_pem = _read_pem(public_key_file) if public_key_file else None
        return cls(
            issuer=issuer,
            audience=audience,
            algorithm=algorithm,
            private_key_pem=Secret(private_pem) if private_pem is not None else None,
            public_key_pem=public_pem,
            lifetime=lifetime,
            leeway=leeway,
        )

    @property
    def header_alg(self) -> str:
        """The one ``alg`` header value this server issues and accepts."""
        return _HEADER_ALG[self.algorithm]

    @property
    def can_issue(self) -> bool:
        """True when a signing key is configured."""
        return self._signing_key is not None

    def _check_settings(self) -> None:
        if self.algorithm not in _HEADER_ALG:
            raise JWTConfigError(f"unsupported JWT algorithm {self.algorithm!r}")
        if not self.issuer or not self.audience:
            raise JWTConfigError("JWT issuer and audience must be non-empty")
        if self.lifetime <= timedelta(0):
            raise JWTConfigError("JWT lifetime must be positive")
        if not timedelta(0) <= self.leeway <= _MAX_LEEWAY:
            raise JWTConfigError("JWT leeway must be between 0 and 5 minutes")
        if self.max_token_bytes < 512:
            raise JWTConfigError("max_token_bytes must be at least 512")


def issue_token(
    config: JWTConfig,
    *,
    subject: str,
    email: str,
    role: str,
    now: datetime | None = None,
    lifetime: timedelta | None = None,
) -> str:
    """Return a signed compact JWT for this user.

    Claims: ``sub``, ``email``, ``role``, ``iss``, ``aud``, ``iat``, ``nbf`` (= ``iat``),
    ``exp`` (``iat`` + ``lifetime`` or the config's), ``jti`` (random, 128 bits).
    Times are whole seconds. It does not record the token anywhere.

    Raises:
        ValueError: empty subject or email, a role outside ``ROLES``, a naive
            ``now``, or a non-positive lifetime.
        JWTConfigError: the config has no signing key.
    """
    signing_key = config._signing_key
    if signing_key is None:
        raise JWTConfigError("this JWT config has no private key; it can verify but not issue")
    if not subject or not email:
        raise ValueError("subject and email must be non-empty")
    if role not in ROLES:
        raise ValueError(f"role must be one of {sorted(ROLES)}")
    ttl = config.lifetime if lifetime is None else lifetime
    if ttl <= timedelta(0):
        raise ValueError("lifetime must be positive")
    issued = int(utc_moment(now).timestamp())
    claims: dict[str, Any] = {
        "iss": config.issuer,
        "aud": config.audience,
        "sub": subject,
        "email": email,
        "role": role,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl.total_seconds()),
        "jti": secrets.token_urlsafe(16),
    }
    header = {"alg": config.header_alg, "typ": "JWT"}
    return jwt.encode(header, claims, signing_key, registry=config._registry)


def verify_token(config: JWTConfig, token: str, *, now: datetime | None = None) -> Claims:
    """Verify ``token`` and return its claims.

    Checks, in order: size (``max_token_bytes``), compact shape, ``alg`` equal to
    the pinned one, ``typ`` absent or ``JWT``, signature, then claims: ``iss`` and
    ``aud`` equal to the config's (a list ``aud`` must contain it), ``sub``,
    ``email``, ``role``, ``jti``, ``iat`` and ``exp`` present and well typed,
    ``exp`` not past and ``iat``/``nbf`` not in the future (both within ``leeway``).
    It does not check revocation or whether the user still exists.

    Raises:
        InvalidToken: for every rejection; see its ``reason``.
        ValueError: ``now`` is naive (a programming error, not a bad token).
    """
    moment = utc_moment(now)
    if not isinstance(token, str) or not token:
        raise InvalidToken("empty token")
    if len(token.encode("utf-8", "surrogatepass")) > config.max_token_bytes:
        raise InvalidToken(f"token larger than {config.max_token_bytes} bytes")
    header = _unverified_header(token)
    alg = header.get("alg")
    if alg != config.header_alg:
        raise InvalidToken(
            f"algorithm {_algorithm_name(alg)} is not the pinned {config.header_alg}"
        )
    if header.get("typ", "JWT") != "JWT":
        raise InvalidToken("token type is not JWT")
    payload = _verified_payload(config, token)
    _validate_claims(config, payload, moment)
    return _to_claims(payload)


def _unverified_header(token: str) -> dict[str, Any]:
    segments = token.split(".")
    if len(segments) != 3 or not all(_B64URL_SEGMENT.fullmatch(s) for s in segments):
        raise InvalidToken("malformed token: not three base64url segments")
    try:
        header = json.loads(_b64url_decode(segments[0]))
    except (ValueError, binascii.Error, RecursionError):
        raise InvalidToken("malformed token: header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise InvalidToken("malformed token: header is not a JSON object")
    return header


def _verified_payload(config: JWTConfig, token: str) -> dict[str, Any]:
    try:
        decoded = jwt.decode(token, config._verifying_key, registry=config._registry)
    except BadSignatureError:
        raise InvalidToken("bad signature") from None
    except ExceededSizeError:
        raise InvalidToken("token part exceeds the size limit") from None
    except JoseError as err:
        raise InvalidToken(f"malformed token: {err.error}") from None
    except (ValueError, TypeError, binascii.Error):
        raise InvalidToken("malformed token: undecodable") from None
    return decoded.claims


def _validate_claims(config: JWTConfig, payload: dict[str, Any], moment: datetime) -> None:
    registry = jwt.JWTClaimsRegistry(
        now=int(moment.timestamp()),
        leeway=int(config.leeway.total_seconds()),
        iss={"essential": True, "value": config.issuer},
        aud={"essential": True, "value": config.audience},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
        email={"essential": True},
        role={"essential": True, "values": sorted(ROLES)},
    )
    try:
        registry.validate(payload)
    except ExpiredTokenError:
        raise InvalidToken("token expired") from None
    except MissingClaimError as err:
        raise InvalidToken(f"missing claim(s): {err.claim}") from None
    except InvalidClaimError as err:
        raise InvalidToken(f"invalid claim {err.claim!r}: {err.description}") from None
    except JoseError as err:
        raise InvalidToken(f"invalid claims: {err.error}") from None
    # joserfc accepts a list for `role` when one element matches, and does not type
    # `email`; calsync's claims are plain strings.
    for name in ("sub", "email", "role", "jti"):
        if not isinstance(payload.get(name), str):
            raise InvalidToken(f"invalid claim {name!r}: not a string")


def _to_claims(payload: dict[str, Any]) -> Claims:
    try:
        issued_at = datetime.fromtimestamp(payload["iat"], tz=UTC)
        expires_at = datetime.fromtimestamp(payload["exp"], tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidToken("invalid claim 'exp' or 'iat': out of range") from None
    role: Role = "admin" if payload["role"] == "admin" else "user"
    return Claims(
        subject=payload["sub"],
        email=payload["email"],
        role=role,
        issued_at=issued_at,
        expires_at=expires_at,
        token_id=payload["jti"],
    )


def _load_keys(config: JWTConfig) -> tuple[Key | None, Key]:
    if config.algorithm == "HS256":
        if config.private_key_pem is not None or config.public_key_pem is not None:
            raise JWTConfigError("HS256 uses a shared secret; PEM keys are for RS256/EdDSA")
        if config.secret is None:
            raise JWTConfigError("HS256 needs a secret (CALSYNC_JWT_SECRET)")
        raw = config.secret.reveal().encode("utf-8")
        if len(raw) < _MIN_HMAC_SECRET_BYTES:
            raise JWTConfigError(
                f"the JWT secret must be at least {_MIN_HMAC_SECRET_BYTES} bytes "
                "(CALSYNC_JWT_SECRET)"
            )
        try:
            key = OctKey.import_key(raw)
        except ValueError:
            raise JWTConfigError("the JWT secret must not be a PEM key") from None
        return key, key
    if config.secret is not None:
        raise JWTConfigError(f"{config.algorithm} uses PEM keys, not a shared secret")
    private = _private_key(config) if config.private_key_pem is not None else None
    if config.public_key_pem is not None:
        public = _public_key(config, config.public_key_pem)
    elif private is not None:
        public = private.public_key()
    else:
        raise JWTConfigError(f"{config.algorithm} needs a public key (and a private key to issue)")
    if private is not None and _public_der(private.public_key()) != _public_der(public):
        raise JWTConfigError("the JWT private and public keys do not belong together")
    return (_jwk(private) if private is not None else None), _jwk(public)


_PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
_PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey


def _private_key(config: JWTConfig) -> _PrivateKey:
    assert config.private_key_pem is not None
    try:
        key = serialization.load_pem_private_key(
            config.private_key_pem.reveal().encode("utf-8"), password=None
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise JWTConfigError("the JWT private key is not an unencrypted PEM private key") from None
    if config.header_alg == "RS256" and isinstance(key, rsa.RSAPrivateKey):
        _check_rsa_size(key.key_size)
        return key
    if config.header_alg == "Ed25519" and isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise JWTConfigError(f"the JWT private key is not {_KEY_KIND[config.header_alg]} key")


def _public_key(config: JWTConfig, pem: str) -> _PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise JWTConfigError("the JWT public key is not a PEM public key") from None
    if config.header_alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
        _check_rsa_size(key.key_size)
        return key
    if config.header_alg == "Ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise JWTConfigError(f"the JWT public key is not {_KEY_KIND[config.header_alg]} key")


_KEY_KIND: Final = {"RS256": "an RSA", "Ed25519": "an Ed25519"}


def _check_rsa_size(key_size: int) -> None:
    if key_size < _MIN_RSA_BITS:
        raise JWTConfigError(f"RS256 keys must have at least {_MIN_RSA_BITS} bits")


def _public_der(key: _PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _jwk(key: _PrivateKey | _PublicKey) -> Key:
    # joserfc imports PEM; serialising here keeps one parsing path for both inputs.
    if isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    else:
        pem = key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return RSAKey.import_key(pem)
    return OKPKey.import_key(pem)


def _read_pem(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as err:
        raise JWTConfigError(
            f"cannot read JWT key file {str(path)!r}: {type(err).__name__}"
        ) from None


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


#: JWS algorithm names (RFC 7518, RFC 8037, RFC 9864) a refusal may name; anything else
#: is "(unknown)", so the reasons stay a small fixed set (they key the audit).
_KNOWN_ALGORITHMS: Final = frozenset(
    {"none", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384"}
    | {"PS512", "ES256", "ES384", "ES512", "ES256K", "EdDSA", "Ed25519", "Ed448"}
)


def _algorithm_name(value: object) -> str:
    if value is None:
        return "(missing)"
    return repr(value) if isinstance(value, str) and value in _KNOWN_ALGORITHMS else "(unknown)"
