"""Forged and broken JWTs all get 401 through HTTP, in the API's error shape."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from calsync.domain.accounts import Role
from calsync.store.tables import AuditEvent
from tests.integration.accounts.conftest import App

pytestmark = pytest.mark.integration


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def hs256(secret: bytes) -> Callable[[bytes], bytes]:
    import hashlib
    import hmac

    return lambda message: hmac.new(secret, message, hashlib.sha256).digest()


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def rs256(message: bytes) -> bytes:
    return RSA_KEY.sign(message, padding.PKCS1v15(), hashes.SHA256())


def cases(app: App, subject: str) -> dict[str, str]:
    settings = app.services.settings
    secret = (settings.jwt_secret or "").encode()
    now = int(time.time())

    def claims(**changes: Any) -> dict[str, Any]:
        base = {
            "iss": settings.jwt_issuer,
            "aud": settings.jwt_audience,
            "sub": subject,
            "email": "victim@example.com",
            "role": "admin",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
        }
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    hs = {"alg": "HS256", "typ": "JWT"}
    good = forge(hs, claims(), hs256(secret))
    head, _, signature = good.split(".")
    escalated = b64(json.dumps(claims(role="admin", sub=str(uuid.uuid4()))).encode())
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "alg none": forge({"alg": "none", "typ": "JWT"}, claims(), lambda _: b""),
        "alg none without signature": good.rsplit(".", 1)[0].replace(head, b64(b'{"alg":"none"}'))
        + ".",
        "wrong secret": forge(hs, claims(), hs256(b"not-the-secret" * 4)),
        "RS256 token to an HS256 server": forge({"alg": "RS256", "typ": "JWT"}, claims(), rs256),
        "HS256 signed with a public key": forge(hs, claims(), hs256(public_pem)),
        "tampered payload": f"{head}.{escalated}.{signature}",
        "tampered signature": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "expired": forge(hs, claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600), hs256(secret)),
        "not yet valid": forge(hs, claims(nbf=now + 3600, iat=now + 3600), hs256(secret)),
        "wrong issuer": forge(hs, claims(iss="https://evil.example"), hs256(secret)),
        "wrong audience": forge(hs, claims(aud="another-api"), hs256(secret)),
        "missing subject": forge(hs, claims(sub=None), hs256(secret)),
        "missing expiry": forge(hs, claims(exp=None), hs256(secret)),
        "missing issued-at": forge(hs, claims(iat=None), hs256(secret)),
        "unknown user": forge(hs, claims(sub=str(uuid.uuid4())), hs256(secret)),
        "unknown role": forge(hs, claims(role="root"), hs256(secret)),
        "garbage": "not.a.jwt",
        "oversized": "a" * 9000,
    }


def test_every_forged_or_broken_token_gets_401(app: App) -> None:
    account, _ = app.user("victim@example.com", Role.USER)
    table = cases(app, str(account.id))

    answers = {
        name: app.client.get("/me", headers={"Authorization": f"Bearer {token}"})
        for name, token in table.items()
    }

    wrong = {name: r.status_code for name, r in answers.items() if r.status_code != 401}
    assert wrong == {}
    for response in answers.values():
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # Every failure is counted; those with the same reason share a row (audit.record_repeated)
    with app.services.sessions() as session:
        failures = session.scalar(
            sa.select(sa.func.sum(AuditEvent.count)).where(AuditEvent.action == "auth_failed")
        )
    assert failures == len(table)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Token abc"])
def test_malformed_authorization_headers_get_401(app: App, header: str) -> None:
    response = app.client.get("/me", headers={"Authorization": header})
    assert response.status_code == 401


def test_no_token_gets_401_and_a_valid_one_gets_the_caller(app: App) -> None:
    assert app.client.get("/me").status_code == 401

    account, headers = app.user("someone@example.com")
    me = app.client.get("/me", headers=headers)

    assert me.status_code == 200
    assert me.json()["id"] == str(account.id)
    assert me.json()["status"] == "active"
