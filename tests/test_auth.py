"""Sign-in: one-time invites, Argon2 hashes, throttled failures, expiring URL sessions, admin password."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from db.models import AuthSession, Rater
from study.auth import FIRST_LOCK, FREE_FAILURES, SESSION_LIFETIME, Auth, AuthError, Throttled, hash_secret
from study.rating import RatingPanel

PASSWORD = "correct horse battery"


@pytest.fixture
def setup(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    clock = [datetime(2026, 3, 1, tzinfo=UTC)]
    panel = RatingPanel(engine.db, engine.loaded, clock=lambda: clock[0])
    auth = Auth(engine.db, engine.protocol.study.id, clock=lambda: clock[0])
    rater, invite = panel.add_rater("derm1")
    return auth, panel, rater, invite, clock


def test_invite_sets_password_once_and_secrets_are_hashed(setup):
    auth, panel, rater, invite, _ = setup
    with pytest.raises(AuthError, match="at least 10 characters"):
        auth.accept_invite(invite, "short")
    token = auth.accept_invite(invite, PASSWORD)
    assert auth.identity(token).rater_id == rater.id and auth.identity(token).role == "rater"
    with pytest.raises(AuthError, match="sign-in failed"):
        auth.accept_invite(invite, PASSWORD)  # one-time
    with panel.db.read() as session:
        stored = session.get(Rater, rater.id)
        assert stored.invite_hash is None and stored.password_hash.startswith("$argon2id$")
        assert PASSWORD not in stored.password_hash
        assert token not in {s.token_hash for s in session.scalars(select(AuthSession))}
    assert auth.identity(auth.sign_in_rater("derm1", PASSWORD)).rater_id == rater.id


def test_forged_invites_and_wrong_passwords_are_refused_alike(setup):
    auth, _, rater, invite, _ = setup
    for bad in (f"{rater.id}.wrong", "999.x", "garbage", ""):
        with pytest.raises(AuthError, match="sign-in failed"):
            auth.accept_invite(bad, PASSWORD)
    auth.accept_invite(invite, PASSWORD)
    for name, password in (("derm1", "wrong password"), ("nobody", PASSWORD)):
        with pytest.raises(AuthError, match="sign-in failed: check the name and password"):
            auth.sign_in_rater(name, password)


def test_repeated_failures_are_throttled_with_backoff(setup):
    auth, _, _, invite, clock = setup
    auth.accept_invite(invite, PASSWORD)
    for _ in range(FREE_FAILURES):
        with pytest.raises(AuthError):
            auth.sign_in_rater("derm1", "wrong password")
    with pytest.raises(Throttled) as info:
        auth.sign_in_rater("derm1", PASSWORD)  # even the right password waits
    assert info.value.retry_after == FIRST_LOCK
    clock[0] += FIRST_LOCK + timedelta(seconds=1)
    with pytest.raises(AuthError):
        auth.sign_in_rater("derm1", "wrong again")
    with pytest.raises(Throttled) as info:
        auth.sign_in_rater("derm1", PASSWORD)
    assert info.value.retry_after == 2 * FIRST_LOCK  # doubles
    clock[0] += 2 * FIRST_LOCK + timedelta(seconds=1)
    assert auth.identity(auth.sign_in_rater("derm1", PASSWORD)) is not None  # success resets the count
    with pytest.raises(AuthError):
        auth.sign_in_rater("derm1", "wrong password")
    assert auth.identity(auth.sign_in_rater("derm1", PASSWORD)) is not None


def test_sessions_expire_and_end_with_the_rater(setup):
    auth, panel, rater, invite, clock = setup
    token = auth.accept_invite(invite, PASSWORD)
    assert auth.identity(None) is None and auth.identity("forged") is None
    clock[0] += SESSION_LIFETIME + timedelta(seconds=1)
    assert auth.identity(token) is None
    token = auth.sign_in_rater("derm1", PASSWORD)
    panel.add_rater("substitute", replace=rater.id)  # the old rater is retired
    assert auth.identity(token) is None
    with pytest.raises(AuthError):  # retired raters can't sign in either
        auth.sign_in_rater("derm1", PASSWORD)


def test_admin_sign_in(setup):
    auth, _, _, _, _ = setup
    admin_hash = hash_secret("researcher password")
    with pytest.raises(AuthError, match="no admin password is configured"):
        auth.sign_in_admin("anything", None)
    with pytest.raises(AuthError, match="sign-in failed"):
        auth.sign_in_admin("guess", admin_hash)
    token = auth.sign_in_admin("researcher password", admin_hash)
    assert auth.identity(token).role == "admin" and auth.identity(token).rater_id is None
    auth.sign_out(token)
    assert auth.identity(token) is None
