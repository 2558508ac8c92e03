"""calsync.web.auth.tokens: issuing, verifying, and refusing forged or broken JWTs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from hypothesis import given
from hypothesis import strategies as st

from calsync.store.secrets import Secret
from calsync.web.auth.tokens import (
    PUBLIC_MESSAGE,
    Claims,
    InvalidToken,
    JWTConfig,
    JWTConfigError,
    issue_token,
    verify_token,
)


# --- Key material: generated per session, written to temp files, never committed.
@dataclass(frozen=True)
class KeyFiles:
    private_pem: bytes
    public_pem: bytes
    private_file: Path
    public_file: Path


def write_key_files(
    directory: Path, private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
) -> KeyFiles:
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "private.pem").write_bytes(private_pem)
    (directory / "public.pem").write_bytes(public_pem)
    return KeyFiles(private_pem, public_pem, directory / "private.pem", directory / "public.pem")


@pytest.fixture(scope="session")
def rsa_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyFiles:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return write_key_files(tmp_path_factory.mktemp("rsa"), private)


@pytest.fixture(scope="session")
def other_rsa_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyFiles:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return write_key_files(tmp_path_factory.mktemp("rsa-other"), private)


@pytest.fixture(scope="session")
def ed25519_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyFiles:
    return write_key_files(tmp_path_factory.mktemp("ed25519"), ed25519.Ed25519PrivateKey.generate())


NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
ISSUER = "https://calsync.test"
AUDIENCE = "calsync-api"
HS_SECRET = "k" * 16 + "0123456789abcdef-extra"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims at NOW; an override of None removes the claim."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "email": "ada@example.com",
        "role": "user",
        "iat": T,
        "nbf": T,
        "exp": T + 3600,
        "jti": "jti-1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def forge(header: dict[str, Any], payload: Any, sign: Callable[[bytes], bytes]) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def hmac_signer(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda msg: hmac.new(secret, msg, hashlib.sha256).digest()


def rsa_signer(private_pem: bytes) -> Callable[[bytes], bytes]:
    key = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return lambda msg: key.sign(msg, padding.PKCS1v15(), hashes.SHA256())


def ed_signer(private_pem: bytes) -> Callable[[bytes], bytes]:
    key = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.sign


HS = {"alg": "HS256", "typ": "JWT"}
RS = {"alg": "RS256", "typ": "JWT"}


@dataclass(frozen=True)
class Servers:
    hs: JWTConfig
    rs: JWTConfig
    ed: JWTConfig
    rsa: KeyFiles
    other_rsa: KeyFiles
    ed_keys: KeyFiles

    def hs_sign(self, payload: Any, header: dict[str, Any] | None = None) -> str:
        return forge(header or HS, payload, hmac_signer(HS_SECRET.encode()))


@pytest.fixture(scope="module")
def servers(rsa_keys: KeyFiles, other_rsa_keys: KeyFiles, ed25519_keys: KeyFiles) -> Servers:
    common: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE}
    return Servers(
        hs=JWTConfig(secret=Secret(HS_SECRET), **common),
        rs=JWTConfig.from_key_files(
            algorithm="RS256",
            private_key_file=rsa_keys.private_file,
            public_key_file=rsa_keys.public_file,
            **common,
        ),
        ed=JWTConfig.from_key_files(
            algorithm="EdDSA",
            private_key_file=ed25519_keys.private_file,
            public_key_file=ed25519_keys.public_file,
            **common,
        ),
        rsa=rsa_keys,
        other_rsa=other_rsa_keys,
        ed_keys=ed25519_keys,
    )


def valid_hs(s: Servers) -> str:
    return issue_token(s.hs, subject="user-1", email="ada@example.com", role="user", now=NOW)


def swap_payload(token: str, payload: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{b64(json.dumps(payload).encode())}.{signature}"


def flip_first_signature_char(token: str) -> str:
    # The first character carries six real bits; the last may only carry padding bits.
    header, payload, signature = token.split(".")
    first = "B" if signature[0] != "B" else "C"
    return f"{header}.{payload}.{first}{signature[1:]}"


# (case id, server attribute, token factory, expected reason fragment)
Case = tuple[str, str, Callable[[Servers], str], str]

FORGED: list[Case] = [
    # Algorithm attacks
    (
        "alg-none-empty-signature",
        "hs",
        lambda s: forge({"alg": "none"}, claims(), lambda _: b"").rstrip("."),
        "malformed",
    ),
    (
        "alg-none-trailing-dot",
        "hs",
        lambda s: forge({"alg": "none", "typ": "JWT"}, claims(), lambda _: b""),
        "malformed",
    ),
    (
        "alg-none-with-signature",
        "hs",
        lambda s: forge({"alg": "none"}, claims(), lambda _: b"x"),
        "'none'",
    ),
    (
        "alg-None-casing",
        "hs",
        lambda s: forge({"alg": "None"}, claims(), lambda _: b"x"),
        "(unknown)",
    ),
    (
        "alg-missing",
        "hs",
        lambda s: forge({"typ": "JWT"}, claims(), hmac_signer(HS_SECRET.encode())),
        "(missing) is not",
    ),
    (
        "alg-not-a-string",
        "hs",
        lambda s: forge({"alg": ["HS256"]}, claims(), hmac_signer(HS_SECRET.encode())),
        "algorithm",
    ),
    (
        "hs256-signed-with-rs256-public-pem",
        "rs",
        lambda s: forge(HS, claims(role="admin"), hmac_signer(s.rsa.public_pem)),
        "'HS256' is not the pinned RS256",
    ),
    (
        "rs256-token-at-hs256-server",
        "hs",
        lambda s: issue_token(s.rs, subject="user-1", email="a@example.com", role="user", now=NOW),
        "'RS256' is not the pinned HS256",
    ),
    (
        "rs256-signed-by-foreign-key",
        "rs",
        lambda s: forge(RS, claims(), rsa_signer(s.other_rsa.private_pem)),
        "bad signature",
    ),
    (
        "rs256-with-embedded-attacker-jwk",
        "rs",
        lambda s: forge(
            {**RS, "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}},
            claims(),
            rsa_signer(s.other_rsa.private_pem),
        ),
        "",
    ),
    (
        "legacy-EdDSA-alg-at-ed25519-server",
        "ed",
        lambda s: forge({"alg": "EdDSA"}, claims(), ed_signer(s.ed_keys.private_pem)),
        "'EdDSA' is not the pinned Ed25519",
    ),
    (
        "es256-alg-at-hs256-server",
        "hs",
        lambda s: forge({"alg": "ES256"}, claims(), hmac_signer(HS_SECRET.encode())),
        "'ES256'",
    ),
    # Tampering
    (
        "tampered-payload",
        "hs",
        lambda s: swap_payload(valid_hs(s), claims(role="admin")),
        "bad signature",
    ),
    ("tampered-signature", "hs", lambda s: flip_first_signature_char(valid_hs(s)), "bad signature"),
    ("signature-stripped", "hs", lambda s: valid_hs(s).rsplit(".", 1)[0] + ".", "malformed"),
    (
        "foreign-hs256-secret",
        "hs",
        lambda s: forge(HS, claims(), hmac_signer(b"z" * 40)),
        "bad signature",
    ),
    # Time
    (
        "expired",
        "hs",
        lambda s: issue_token(
            s.hs, subject="u", email="a@example.com", role="user", now=NOW - timedelta(hours=2)
        ),
        "expired",
    ),
    ("expired-just-beyond-leeway", "hs", lambda s: s.hs_sign(claims(exp=T - 31)), "expired"),
    ("nbf-in-the-future", "hs", lambda s: s.hs_sign(claims(nbf=T + 120)), "'nbf'"),
    ("iat-in-the-future", "hs", lambda s: s.hs_sign(claims(iat=T + 120, nbf=None)), "'iat'"),
    (
        "issued-in-the-future",
        "hs",
        lambda s: issue_token(
            s.hs, subject="u", email="a@example.com", role="user", now=NOW + timedelta(minutes=5)
        ),
        "invalid claim",
    ),
    ("exp-as-string", "hs", lambda s: s.hs_sign(claims(exp=str(T + 60))), "'exp'"),
    ("exp-as-bool", "hs", lambda s: s.hs_sign(claims(exp=True)), "'exp'"),
    ("exp-nan", "hs", lambda s: s.hs_sign(claims(exp=float("nan"))), "'exp'"),
    ("exp-out-of-range", "hs", lambda s: s.hs_sign(claims(exp=1e300)), "out of range"),
    # Issuer and audience
    ("wrong-issuer", "hs", lambda s: s.hs_sign(claims(iss="https://evil.test")), "'iss'"),
    ("wrong-audience", "hs", lambda s: s.hs_sign(claims(aud="other-api")), "'aud'"),
    ("audience-list-without-ours", "hs", lambda s: s.hs_sign(claims(aud=["a", "b"])), "'aud'"),
    ("issuer-not-a-string", "hs", lambda s: s.hs_sign(claims(iss=[ISSUER])), "'iss'"),
    # Claim content
    ("unknown-role", "hs", lambda s: s.hs_sign(claims(role="superuser")), "'role'"),
    ("role-as-list", "hs", lambda s: s.hs_sign(claims(role=["admin"])), "'role'"),
    ("empty-subject", "hs", lambda s: s.hs_sign(claims(sub="")), "'sub'"),
    ("subject-not-a-string", "hs", lambda s: s.hs_sign(claims(sub=42)), "'sub'"),
    ("email-not-a-string", "hs", lambda s: s.hs_sign(claims(email={"a": 1})), "'email'"),
    ("payload-is-a-list", "hs", lambda s: s.hs_sign([claims()]), "malformed"),
    # Header oddities
    ("typ-not-jwt", "hs", lambda s: s.hs_sign(claims(), {"alg": "HS256", "typ": "JWE"}), "type"),
    (
        "crit-header",
        "hs",
        lambda s: s.hs_sign(claims(), {"alg": "HS256", "crit": ["exp"], "exp": 1}),
        "malformed",
    ),
    (
        "header-not-an-object",
        "hs",
        lambda s: f"{b64(b'[1]')}.{b64(b'{}')}.{b64(b'sig')}",
        "not a JSON object",
    ),
    # Garbage
    ("empty", "hs", lambda s: "", "empty"),
    ("garbage", "hs", lambda s: "not a token", "malformed"),
    ("two-segments", "hs", lambda s: "abc.def", "malformed"),
    ("four-segments", "hs", lambda s: valid_hs(s) + ".abc", "malformed"),
    (
        "base64-but-not-json",
        "hs",
        lambda s: f"{b64(b'nope')}.{b64(b'nope')}.{b64(b'x')}",
        "malformed",
    ),
    ("padding-characters", "hs", lambda s: valid_hs(s).replace(".", "=.", 1), "malformed"),
    ("non-ascii", "hs", lambda s: "é.é.é", "malformed"),
    ("too-long", "hs", lambda s: s.hs_sign(claims(pad="x" * 9000)), "larger than 8192"),
    ("too-long-garbage", "hs", lambda s: "a" * 100_000, "larger than"),
]

REQUIRED = ["iss", "aud", "sub", "exp", "iat", "jti", "email", "role"]
FORGED += [
    (f"missing-{name}", "hs", lambda s, name=name: s.hs_sign(claims(**{name: None})), name)  # type: ignore[misc]
    for name in REQUIRED
]


@pytest.mark.parametrize(
    ("server", "make", "reason"), [c[1:] for c in FORGED], ids=[c[0] for c in FORGED]
)
def test_forged_and_broken_tokens_are_rejected(
    servers: Servers, server: str, make: Callable[[Servers], str], reason: str
) -> None:
    # Given a token that is forged, tampered, stale or broken
    token = make(servers)
    # When the server verifies it, Then it is refused with one exception type
    with pytest.raises(InvalidToken) as caught:
        verify_token(getattr(servers, server), token, now=NOW)
    assert reason in caught.value.reason
    assert caught.value.public_message == PUBLIC_MESSAGE


def test_rejection_reason_never_echoes_the_token(servers: Servers) -> None:
    token = swap_payload(valid_hs(servers), claims(email="secret-marker@example.com"))
    with pytest.raises(InvalidToken) as caught:
        verify_token(servers.hs, token, now=NOW)
    assert "secret-marker" not in str(caught.value)
    assert token not in repr(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize("alg", ["X" * 500, "HS2561", ["HS256"], 7, "rs256"])
def test_an_attacker_chosen_alg_is_not_echoed_in_the_reason(servers: Servers, alg: object) -> None:
    # Reasons key the audit trail's counted rows: one the client chose would be a new row.
    token = forge({"alg": alg}, claims(), lambda _: b"x")
    with pytest.raises(InvalidToken) as caught:
        verify_token(servers.hs, token, now=NOW)
    assert caught.value.reason == "algorithm (unknown) is not the pinned HS256"


@pytest.mark.parametrize("server", ["hs", "rs", "ed"])
def test_issued_token_round_trips(servers: Servers, server: str) -> None:
    config: JWTConfig = getattr(servers, server)
    token = issue_token(config, subject="user-7", email="grace@example.com", role="admin", now=NOW)
    assert verify_token(config, token, now=NOW + timedelta(minutes=59)) == Claims(
        subject="user-7",
        email="grace@example.com",
        role="admin",
        issued_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        token_id=verify_token(config, token, now=NOW).token_id,
    )


def test_issued_claims_are_complete_and_alg_is_pinned(servers: Servers) -> None:
    token = issue_token(servers.ed, subject="u", email="a@example.com", role="user", now=NOW)
    header, payload = (json.loads(base64.urlsafe_b64decode(p + "==")) for p in token.split(".")[:2])
    assert header == {"alg": "Ed25519", "typ": "JWT"}
    assert set(payload) == {"sub", "email", "role", "iss", "aud", "iat", "nbf", "exp", "jti"}
    assert (payload["iss"], payload["aud"]) == (ISSUER, AUDIENCE)
    assert payload["iat"] == payload["nbf"] == T
    assert payload["exp"] == T + 3600


def test_token_ids_are_unique(servers: Servers) -> None:
    ids = {verify_token(servers.hs, valid_hs(servers), now=NOW).token_id for _ in range(50)}
    assert len(ids) == 50


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (timedelta(seconds=3600 + 29), True),  # expired, but within the 30 s leeway
        (timedelta(seconds=3600 + 30), False),
        (timedelta(seconds=-30), True),  # clock skew: the verifier is behind the issuer
        (timedelta(seconds=-31), False),
    ],
)
def test_leeway_bounds(servers: Servers, offset: timedelta, accepted: bool) -> None:
    token = valid_hs(servers)
    if accepted:
        verify_token(servers.hs, token, now=NOW + offset)
    else:
        with pytest.raises(InvalidToken):
            verify_token(servers.hs, token, now=NOW + offset)


def test_custom_lifetime(servers: Servers) -> None:
    token = issue_token(
        servers.hs,
        subject="u",
        email="a@example.com",
        role="user",
        now=NOW,
        lifetime=timedelta(minutes=5),
    )
    assert verify_token(servers.hs, token, now=NOW).expires_at == NOW + timedelta(minutes=5)
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(servers.hs, token, now=NOW + timedelta(minutes=6))


def test_audience_list_containing_ours_is_accepted(servers: Servers) -> None:
    token = servers.hs_sign(claims(aud=["other", AUDIENCE]))
    assert verify_token(servers.hs, token, now=NOW).subject == "user-1"


def test_token_without_nbf_is_accepted(servers: Servers) -> None:
    assert verify_token(servers.hs, servers.hs_sign(claims(nbf=None)), now=NOW).role == "user"


def test_a_verify_only_config_verifies_but_cannot_issue(
    servers: Servers, rsa_keys: KeyFiles
) -> None:
    verifier = JWTConfig(
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithm="RS256",
        public_key_pem=rsa_keys.public_pem.decode(),
    )
    token = issue_token(servers.rs, subject="u", email="a@example.com", role="user", now=NOW)
    assert verify_token(verifier, token, now=NOW).subject == "u"
    assert not verifier.can_issue
    with pytest.raises(JWTConfigError, match="no private key"):
        issue_token(verifier, subject="u", email="a@example.com", role="user", now=NOW)


def test_public_key_is_derived_from_the_private_key(rsa_keys: KeyFiles) -> None:
    config = JWTConfig.from_key_files(
        algorithm="RS256", issuer=ISSUER, audience=AUDIENCE, private_key_file=rsa_keys.private_file
    )
    token = issue_token(config, subject="u", email="a@example.com", role="user", now=NOW)
    assert verify_token(config, token, now=NOW).subject == "u"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"subject": ""}, "non-empty"),
        ({"email": ""}, "non-empty"),
        ({"role": "root"}, "role"),
        ({"lifetime": timedelta(0)}, "lifetime"),
        ({"now": datetime(2030, 1, 1)}, "timezone-aware"),
    ],
)
def test_issue_refuses_bad_arguments(
    servers: Servers, kwargs: dict[str, Any], problem: str
) -> None:
    args: dict[str, Any] = {"subject": "u", "email": "a@example.com", "role": "user", "now": NOW}
    with pytest.raises(ValueError, match=problem):
        issue_token(servers.hs, **{**args, **kwargs})


def test_verify_refuses_a_naive_now(servers: Servers) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_token(servers.hs, valid_hs(servers), now=datetime(2030, 1, 1))


def test_reprs_do_not_show_key_material(servers: Servers, rsa_keys: KeyFiles) -> None:
    assert HS_SECRET not in repr(servers.hs)
    private_body = rsa_keys.private_pem.decode().splitlines()[1]
    assert private_body not in repr(servers.rs)
    assert "**********" in repr(servers.rs)


class TestConfigErrors:
    def test_short_hs256_secret(self) -> None:
        with pytest.raises(JWTConfigError, match="at least 32 bytes") as caught:
            JWTConfig(issuer=ISSUER, audience=AUDIENCE, secret=Secret("short-secret"))
        assert "short-secret" not in str(caught.value)

    def test_hs256_without_secret(self) -> None:
        with pytest.raises(JWTConfigError, match="needs a secret"):
            JWTConfig(issuer=ISSUER, audience=AUDIENCE)

    def test_public_pem_as_hs256_secret(self, rsa_keys: KeyFiles) -> None:
        with pytest.raises(JWTConfigError, match="PEM"):
            JWTConfig(issuer=ISSUER, audience=AUDIENCE, secret=Secret(rsa_keys.public_pem.decode()))

    def test_rsa_key_for_eddsa(self, rsa_keys: KeyFiles) -> None:
        with pytest.raises(JWTConfigError, match="Ed25519"):
            JWTConfig(
                issuer=ISSUER,
                audience=AUDIENCE,
                algorithm="EdDSA",
                public_key_pem=rsa_keys.public_pem.decode(),
            )

    def test_ed25519_key_for_rs256(self, ed25519_keys: KeyFiles) -> None:
        with pytest.raises(JWTConfigError, match="RSA"):
            JWTConfig(
                issuer=ISSUER,
                audience=AUDIENCE,
                algorithm="RS256",
                private_key_pem=Secret(ed25519_keys.private_pem.decode()),
            )

    def test_weak_rsa_key(self) -> None:
        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point of the test
        pem = weak.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with pytest.raises(JWTConfigError, match="2048"):
            JWTConfig(
                issuer=ISSUER, audience=AUDIENCE, algorithm="RS256", public_key_pem=pem.decode()
            )

    def test_mismatched_key_pair(self, rsa_keys: KeyFiles, other_rsa_keys: KeyFiles) -> None:
        with pytest.raises(JWTConfigError, match="do not belong together"):
            JWTConfig(
                issuer=ISSUER,
                audience=AUDIENCE,
                algorithm="RS256",
                private_key_pem=Secret(rsa_keys.private_pem.decode()),
                public_key_pem=other_rsa_keys.public_pem.decode(),
            )

    def test_no_keys_for_rs256(self) -> None:
        with pytest.raises(JWTConfigError, match="needs a public key"):
            JWTConfig(issuer=ISSUER, audience=AUDIENCE, algorithm="RS256")

    def test_secret_with_rs256(self, rsa_keys: KeyFiles) -> None:
        with pytest.raises(JWTConfigError, match="not a shared secret"):
            JWTConfig(
                issuer=ISSUER,
                audience=AUDIENCE,
                algorithm="RS256",
                secret=Secret(HS_SECRET),
                public_key_pem=rsa_keys.public_pem.decode(),
            )

    def test_garbage_pem(self) -> None:
        with pytest.raises(JWTConfigError, match="not a PEM public key") as caught:
            JWTConfig(
                issuer=ISSUER, audience=AUDIENCE, algorithm="RS256", public_key_pem="garbage-xyz"
            )
        assert "garbage-xyz" not in str(caught.value)

    def test_missing_key_file_is_named(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope.pem"
        with pytest.raises(JWTConfigError, match=r"nope\.pem"):
            JWTConfig.from_key_files(
                algorithm="RS256", issuer=ISSUER, audience=AUDIENCE, public_key_file=missing
            )

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"leeway": timedelta(minutes=6)},
            {"leeway": timedelta(seconds=-1)},
            {"lifetime": timedelta(0)},
            {"issuer": ""},
            {"audience": ""},
            {"max_token_bytes": 10},
            {"algorithm": "HS512"},
        ],
    )
    def test_bad_settings(self, kwargs: dict[str, Any]) -> None:
        args: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "secret": Secret(HS_SECRET)}
        with pytest.raises(JWTConfigError):
            JWTConfig(**{**args, **kwargs})


@given(
    st.text(max_size=300)
    | st.binary(max_size=300).map(lambda b: b64(b) + "." + b64(b) + "." + b64(b))
)
def test_arbitrary_input_only_ever_raises_invalid_token(text: str) -> None:
    config = JWTConfig(issuer=ISSUER, audience=AUDIENCE, secret=Secret(HS_SECRET))
    with pytest.raises(InvalidToken):
        verify_token(config, text, now=NOW)


_HS_CONFIG = JWTConfig(issuer=ISSUER, audience=AUDIENCE, secret=Secret(HS_SECRET))
_HS_TOKEN = issue_token(_HS_CONFIG, subject="u", email="a@example.com", role="user", now=NOW)


@given(st.integers(min_value=0, max_value=len(_HS_TOKEN) - 2), st.sampled_from("AQgw_-.x9"))
def test_any_single_character_change_is_detected(position: int, replacement: str) -> None:
    # The last character is excluded: it may carry only base64 padding bits.
    if _HS_TOKEN[position] == replacement:
        replacement = "Z" if replacement != "Z" else "Y"
    mutated = _HS_TOKEN[:position] + replacement + _HS_TOKEN[position + 1 :]
    with pytest.raises(InvalidToken):
        verify_token(_HS_CONFIG, mutated, now=NOW)
