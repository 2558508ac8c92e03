"""`users.sign_in_google` and `users.release_email` on both databases: who a Google account
is, when its email changes, and what an admin's release leaves."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from calsync.domain.accounts import AccountStatus, Role
from calsync.store import users
from calsync.store.tables import User

pytestmark = pytest.mark.integration


def test_a_new_account_is_a_new_user_and_signs_in_again_as_it(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        ann = users.sign_in_google(session, subject="1001", email="Ann@Example.com")
        ben = users.sign_in_google(session, subject="1002", email="ben@example.com")
    with sessions.begin() as session:
        again = users.sign_in_google(session, subject="1001", email="ann@example.com")

    assert again == ann
    assert ann.email == "ann@example.com"
    assert ann.role is Role.USER
    assert ben.id != ann.id


def test_an_email_changed_at_google_follows_unless_another_user_holds_it(
    sessions: sessionmaker[Session],
) -> None:
    # Given Ann and Ben, bound to their accounts
    with sessions.begin() as session:
        ann = users.sign_in_google(session, subject="1001", email="ann@example.com")
        users.sign_in_google(session, subject="1002", email="ben@example.com")

    # When Ann's account signs in with a new address, then with Ben's
    with sessions.begin() as session:
        moved = users.sign_in_google(session, subject="1001", email="ann@new.example")
    with sessions.begin() as session:
        clash = users.sign_in_google(session, subject="1001", email="ben@example.com")

    # Then she is the same user: her email follows the free address, not Ben's
    assert (moved.id, moved.email) == (ann.id, "ann@new.example")
    assert (clash.id, clash.email) == (ann.id, "ann@new.example")
    with sessions() as session:
        emails = {row.google_subject: row.email for row in session.scalars(sa.select(User))}
    assert emails == {"1001": "ann@new.example", "1002": "ben@example.com"}


def test_an_unbound_user_adopts_the_first_account_and_refuses_the_next(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        carol = users.ensure_user(session, "carol@example.com", role=Role.ADMIN)

    with sessions.begin() as session:
        adopted = users.sign_in_google(session, subject="2001", email="carol@example.com")
    with sessions.begin() as session, pytest.raises(users.EmailOfAnotherAccount) as caught:
        users.sign_in_google(session, subject="2002", email="CAROL@example.com")

    assert adopted == carol
    assert (caught.value.user_id, caught.value.email, caught.value.subject) == (
        carol.id,
        "carol@example.com",
        "2002",
    )
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
        assert session.scalar(sa.select(User.google_subject)) == "2001"


def test_a_released_user_keeps_everything_but_the_email_and_is_disabled(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        ann = users.sign_in_google(session, subject="1001", email="ann@example.com")
        ben = users.sign_in_google(session, subject="1002", email="ben@example.com")

    with sessions.begin() as session:
        released = users.release_email(session, ann.id)
    with sessions.begin() as session:
        newcomer = users.sign_in_google(session, subject="1003", email="ann@example.com")
    with sessions.begin() as session:
        returning = users.sign_in_google(session, subject="1001", email="ann@example.com")

    assert released is not None
    email, account = released
    assert email == "ann@example.com"
    assert (account.id, account.email, account.status) == (
        ann.id,
        f"{ann.id}@released.invalid",
        AccountStatus.DISABLED,
    )
    assert newcomer.id not in {ann.id, ben.id}
    # The old account, should it come back, is still the released user (and keeps the
    # placeholder: the email is the newcomer's now)
    assert (returning.id, returning.email) == (ann.id, f"{ann.id}@released.invalid")
    assert returning.status is AccountStatus.DISABLED
    with sessions.begin() as session:
        assert users.release_email(session, newcomer.id) is not None
        assert users.release_email(session, ben.id) is not None
        assert users.find_by_email(session, "ben@example.com") is None
