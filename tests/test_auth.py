"""Sign-in: one-time invites, Argon2 hashes, throttled failures, expiring URL sessions, admin password."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from db.models import AuthSession, Event, LoginThrottle, Rater
from study.auth import (
    FIRST_LOCK,
    FREE_FAILURES,
    ROTATE_AFTER,
    ROTATION_GRACE,
    SESSION_LIFETIME,
    Auth,
    AuthError,
    Invite,
    Throttled,
    hash_secret,
)
from study.rating import RatingError, RatingPanel

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


SOURCE_ALLOWANCE = 3  # instead of FREE_FAILURES_PER_SOURCE: each failure costs an Argon2 verification


@pytest.fixture
def small_allowance(monkeypatch):
    import study.auth

    monkeypatch.setattr(study.auth, "FREE_FAILURES_PER_SOURCE", SOURCE_ALLOWANCE)


def test_failures_are_also_throttled_per_source(setup, small_allowance):
    """Spraying one password over many account names from one address is throttled like guessing one."""
    auth, _, _, invite, _ = setup
    auth.accept_invite(invite, PASSWORD)
    for index in range(SOURCE_ALLOWANCE):
        with pytest.raises(AuthError, match="sign-in failed"):
            auth.sign_in_rater(f"name{index}", "spray", source="203.0.113.7")
    with pytest.raises(Throttled):  # a fresh account name from the same place waits too
        auth.sign_in_rater("derm1", PASSWORD, source="203.0.113.7")
    assert auth.identity(auth.sign_in_rater("derm1", PASSWORD, source="198.51.100.1")) is not None
    with auth.db.read() as session:
        keys = set(session.scalars(select(LoginThrottle.key)))
        details = [e.detail for e in session.scalars(select(Event).where(Event.kind == "sign_in_failed"))]
    assert not any("203.0.113.7" in key for key in keys)  # no addresses kept, only their hashes
    assert details and all(set(d) == {"role", "rater_id"} for d in details)  # no names, no addresses
    assert not any("name" in str(d) or "203.0.113.7" in str(d) for d in details)


def test_a_success_does_not_reset_the_sources_counter(setup, small_allowance):
    auth, _, _, invite, _ = setup
    auth.accept_invite(invite, PASSWORD)
    for index in range(SOURCE_ALLOWANCE - 1):
        with pytest.raises(AuthError):
            auth.sign_in_rater(f"other{index}", "guess", source="203.0.113.8")
        auth.sign_in_rater("derm1", PASSWORD, source="203.0.113.8")  # own account in between
    with pytest.raises(AuthError):
        auth.sign_in_rater("someone", "guess", source="203.0.113.8")
    with pytest.raises(Throttled):
        auth.sign_in_rater("derm1", PASSWORD, source="203.0.113.8")


def test_session_tokens_rotate_and_idle_sessions_end(setup):
    auth, _, rater, invite, clock = setup
    first = auth.accept_invite(invite, PASSWORD)
    assert auth.renew(first) == first  # young: kept
    clock[0] += ROTATE_AFTER
    second = auth.renew(first)
    assert second not in (None, first) and auth.identity(second).rater_id == rater.id
    assert auth.identity(first) is not None  # still serves runs in flight for a moment
    clock[0] += ROTATION_GRACE + timedelta(seconds=1)
    assert auth.identity(first) is None and auth.renew(first) is None
    assert auth.identity(second) is not None
    clock[0] += SESSION_LIFETIME  # idle for longer than a token lives
    assert auth.renew(second) is None and auth.renew(None) is None and auth.renew("forged") is None


def test_security_headers_fit_a_proxy_config_line_and_keep_tokens_out_of_referers():
    import re

    from study.http_headers import SECURITY_HEADERS, TLS_HEADERS

    for name, value in {**SECURITY_HEADERS, **TLS_HEADERS}.items():
        assert re.fullmatch(r"[A-Za-z][A-Za-z-]*", name), name
        assert value and not re.search(r'["\r\n\\]', value), (name, value)  # safe in add_header NAME "VALUE"
    assert SECURITY_HEADERS["Referrer-Policy"] == "no-referrer"  # tokens live in URLs
    assert "frame-ancestors 'none'" in SECURITY_HEADERS["Content-Security-Policy"]


def test_rater_names_match_whatever_the_capitalisation(setup):
    """A rater added as "Dr Ana Lopez" signs in as "dr ana lopez" (one throttle counter for both spellings),
    and `raters add` refuses "DR  ANA LOPEZ" as the same person."""
    auth, panel, _, _, _ = setup
    rater, invite = panel.add_rater("Dr Ana Lopez")
    auth.accept_invite(invite, PASSWORD)
    for typed in ("dr ana lopez", "DR ANA LOPEZ", " Dr  Ana Lopez "):
        assert auth.identity(auth.sign_in_rater(typed, PASSWORD)).rater_id == rater.id
    with pytest.raises(RatingError, match=r"a rater named 'Dr Ana Lopez' already exists \(R002\)"):
        panel.add_rater("DR  ANA LOPEZ")
    for _ in range(FREE_FAILURES):
        with pytest.raises(AuthError):
            auth.sign_in_rater("DR ANA LOPEZ", "wrong password")
    with pytest.raises(Throttled):  # the same account, however it is typed
        auth.sign_in_rater("dr ana lopez", PASSWORD)


def test_an_invite_says_what_it_is(setup):
    auth, _, _, invite, _ = setup
    assert auth.invite(invite) == Invite("open", "derm1")
    rater_id, secret = invite.split(".")
    assert auth.invite(f"{rater_id}.{secret[::-1]}") == Invite("invalid")  # wrong secret: no name
    assert auth.invite("999." + secret) == Invite("invalid")
    for cut in (invite[:-5], invite.replace(".", ""), "", "garbage", f"{invite}>"):
        assert auth.invite(cut) == Invite("malformed")
    auth.accept_invite(invite, PASSWORD)
    assert auth.invite(invite) == Invite("used")


def test_sign_in_errors_name_only_the_fields_the_form_has(setup):
    auth, _, _, invite, _ = setup
    with pytest.raises(AuthError) as info:
        auth.sign_in_admin("wrong password", hash_secret(PASSWORD))
    assert str(info.value) == "sign-in failed: check the password"
    with pytest.raises(AuthError) as info:
        auth.accept_invite(invite[:-1] + "x", PASSWORD)
    assert "name" not in str(info.value) and "link is not valid" in str(info.value)
