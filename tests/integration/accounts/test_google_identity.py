"""Google sign-in matches users on the Google account (``sub``), not on the email: an
account that takes a given-up email never inherits the old user, until an admin decides.
The whole OAuth dance runs against the emulator, through HTTP, on both modes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from calsync.config import Settings
from calsync.domain.accounts import Role
from calsync.store.tables import AuditEvent, Event, OAuthToken, User
from calsync.sync.connect import connect_user
from tests.conftest import FakeGoogle
from tests.integration.accounts.conftest import App, running_app
from tests.integration.accounts.test_google_sign_in import consent

pytestmark = pytest.mark.integration


@pytest.fixture(params=["embedded", "production"])
def app(request: pytest.FixtureRequest, fake_google: FakeGoogle) -> Iterator[App]:
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    yield from running_app(fake_google.settings_for(settings))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sub_of(fake_google: FakeGoogle, email: str) -> str:
    (sub,) = [u["sub"] for u in fake_google.control.users() if u["email"] == email]
    return str(sub)


def user_row(app: App, user_id: str | uuid.UUID) -> User:
    with app.services.sessions() as session:
        row = session.get(User, uuid.UUID(str(user_id)))
        assert row is not None
        session.expunge(row)
        return row


def events_of(app: App, user_id: str | uuid.UUID) -> list[str]:
    with app.services.sessions() as session:
        return sorted(
            session.scalars(sa.select(Event.title).where(Event.user_id == uuid.UUID(str(user_id))))
        )


def audit_rows(app: App, action: str) -> list[AuditEvent]:
    with app.services.sessions() as session:
        rows = list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))
        session.expunge_all()
        return rows


def signed_in(app: App, email: str) -> dict[str, Any]:
    answer = consent(app, email)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_the_same_google_account_keeps_its_user(app: App, fake_google: FakeGoogle) -> None:
    # Given two people who signed in
    alice = signed_in(app, "alice@example.com")
    bob = signed_in(app, "bob@example.com")

    # When each signs in again
    alice_again = signed_in(app, "alice@example.com")
    bob_again = signed_in(app, "bob@example.com")

    # Then each keeps their own user, bound to their Google account's sub
    assert alice_again["user"]["id"] == alice["user"]["id"]
    assert bob_again["user"]["id"] == bob["user"]["id"]
    assert alice["user"]["id"] != bob["user"]["id"]
    assert user_row(app, alice["user"]["id"]).google_subject == sub_of(
        fake_google, "alice@example.com"
    )
    assert user_row(app, bob["user"]["id"]).google_subject == sub_of(fake_google, "bob@example.com")


def test_an_account_that_takes_a_given_up_email_is_refused_until_an_admin_decides(
    app: App, fake_google: FakeGoogle
) -> None:
    # Given Alice, an admin with an event, and Bob, a user, who signed in through Google
    _, boss = app.user("boss@example.com", Role.ADMIN)
    alice = signed_in(app, "alice@example.com")
    alice_id = alice["user"]["id"]
    promoted = app.client.patch(f"/admin/users/{alice_id}", headers=boss, json={"role": "admin"})
    assert promoted.status_code == 200
    connect_user(app.services, uuid.UUID(alice_id))
    created = app.client.post(
        "/events",
        headers=bearer(alice["token"]),
        json={
            "title": "board meeting",
            "start_time": "2031-03-04T10:00:00Z",
            "end_time": "2031-03-04T11:00:00Z",
        },
    )
    assert created.status_code == 201, created.text
    event_id = created.json()["id"]
    bob = signed_in(app, "bob@example.com")
    with app.services.sessions() as session:
        tokens_before = session.scalar(
            sa.select(OAuthToken.access_token_encrypted).where(
                OAuthToken.user_id == uuid.UUID(alice_id)
            )
        )
    old_sub = sub_of(fake_google, "alice@example.com")

    # When Alice's Google account is deleted and someone else creates one with her email
    new_sub = fake_google.control.recreate_user("alice@example.com")["sub"]
    refused = consent(app, "alice@example.com")

    # Then the sign-in is refused with a clear 409 and no token
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "email_of_another_account"
    assert "another Google account" in refused.json()["error"]["message"]
    assert "token" not in refused.json()
    # And audited against Alice's user, naming the new account
    (row,) = audit_rows(app, "sign_in_refused")
    assert row.subject_id == uuid.UUID(alice_id)
    assert row.details == {
        "reason": "email of another Google account",
        "email": "alice@example.com",
        "google_subject": new_sub,
    }
    # And Alice's user, tokens and events are untouched
    kept = user_row(app, alice_id)
    assert (kept.email, kept.role, kept.status) == ("alice@example.com", "admin", "active")
    assert kept.google_subject == old_sub != new_sub
    with app.services.sessions() as session:
        tokens_after = session.scalar(
            sa.select(OAuthToken.access_token_encrypted).where(
                OAuthToken.user_id == uuid.UUID(alice_id)
            )
        )
    assert tokens_after == tokens_before
    assert events_of(app, alice_id) == ["board meeting"]
    # And refusing again adds a row each time (each is a completed Google consent)
    assert consent(app, "alice@example.com").status_code == 409
    assert len(audit_rows(app, "sign_in_refused")) == 2

    # When an admin decides the new account is someone else
    released = app.client.post(f"/admin/users/{alice_id}/release-email", headers=boss)

    # Then Alice's user is detached from the email and disabled, her data kept
    assert released.status_code == 200, released.text
    assert released.json()["email"] == f"{alice_id}@released.invalid"
    assert released.json()["status"] == "disabled"
    assert released.json()["role"] == "admin"
    assert events_of(app, alice_id) == ["board meeting"]
    (decision,) = audit_rows(app, "email_released")
    assert decision.subject_id == uuid.UUID(alice_id)
    assert decision.details == {
        "email": "alice@example.com",
        "now": f"{alice_id}@released.invalid",
    }
    # And the new account signs in as a fresh user with role user
    newcomer = signed_in(app, "alice@example.com")
    assert newcomer["user"]["id"] not in {alice_id, bob["user"]["id"]}
    assert newcomer["user"]["role"] == "user"
    assert newcomer["user"]["email"] == "alice@example.com"
    assert user_row(app, newcomer["user"]["id"]).google_subject == new_sub
    # And its token reaches none of Alice's data or rights
    new_headers = bearer(newcomer["token"])
    assert app.client.get(f"/events/{event_id}", headers=new_headers).status_code == 404
    listed = app.client.get("/events", headers=new_headers)
    assert listed.status_code == 200
    assert listed.json()["events"] == []
    assert app.client.get("/admin/users", headers=new_headers).status_code == 403
    # And the old token no longer works (the user is disabled); Bob's still does
    assert app.client.get("/me", headers=bearer(alice["token"])).status_code == 401
    assert app.client.get("/me", headers=bearer(bob["token"])).status_code == 200
    # And the newcomer keeps their user on the next sign-in
    assert signed_in(app, "alice@example.com")["user"]["id"] == newcomer["user"]["id"]


def test_a_user_from_before_subjects_adopts_the_first_account_that_signs_in(
    app: App, fake_google: FakeGoogle
) -> None:
    # Given users created by email only (calsync token, or stored before subjects were)
    carol, _ = app.user("carol@example.com", Role.ADMIN)
    dave, _ = app.user("dave@example.com")

    # When Carol's Google account signs in
    first = signed_in(app, "carol@example.com")

    # Then it is Carol's user, which is now bound to that account; Dave's is still unbound
    assert first["user"]["id"] == str(carol.id)
    assert first["user"]["role"] == "admin"
    assert user_row(app, carol.id).google_subject == sub_of(fake_google, "carol@example.com")
    assert user_row(app, dave.id).google_subject is None
    # And another account with her email afterwards is refused
    fake_google.control.recreate_user("carol@example.com")
    assert consent(app, "carol@example.com").status_code == 409
    assert user_row(app, carol.id).email == "carol@example.com"


def test_a_disabled_user_cannot_sign_in(app: App) -> None:
    alice = signed_in(app, "alice@example.com")
    with app.services.sessions.begin() as session:
        row = session.get(User, uuid.UUID(alice["user"]["id"]))
        assert row is not None
        row.status = "disabled"

    refused = consent(app, "alice@example.com")

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "account_disabled"
    (row,) = audit_rows(app, "sign_in_refused")
    assert row.details == {"reason": "disabled user"}
    assert row.subject_id == uuid.UUID(alice["user"]["id"])


def test_release_email_is_for_admins_on_known_users_not_themselves(app: App) -> None:
    boss_account, boss = app.user("boss@example.com", Role.ADMIN)
    worker, worker_headers = app.user("worker@example.com")

    assert (
        app.client.post(f"/admin/users/{boss_account.id}/release-email", headers=worker_headers)
    ).status_code == 403
    own = app.client.post(f"/admin/users/{boss_account.id}/release-email", headers=boss)
    assert own.status_code == 409
    assert (
        app.client.post(f"/admin/users/{uuid.uuid4()}/release-email", headers=boss).status_code
        == 404
    )
    assert app.client.post("/admin/users/x/release-email", headers=boss).status_code == 404
    # Nothing changed, and nothing was audited
    assert user_row(app, worker.id).email == "worker@example.com"
    assert user_row(app, boss_account.id).status == "active"
    assert audit_rows(app, "email_released") == []
