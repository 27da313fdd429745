"""Sign-in for raters and researchers: Argon2-hashed secrets, throttled failures, URL session tokens.

Passwords and invite codes are hashed with Argon2id (a slow, memory-hard KDF) and verified by argon2-cffi,
whose comparison is constant-time. Session tokens are 256 random bits, so a SHA-256 is enough to store them.

Failures are throttled per account and per source (client address), so neither guessing one account's
password nor trying one password on many accounts from one place gets far. Streamlit can read cookies but
not set them, so the session token has to live in the URL (docs/app.md): it is short-lived and rotated —
a token older than ``ROTATE_AFTER`` is replaced on the next page run, and an idle session ends after
``SESSION_LIFETIME`` — so a link copied from the address bar or the browser history soon opens nothing.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.models import AuthSession, Event, LoginThrottle, Rater, utcnow
from db.session import Database
from study.tokens import hash_token

FREE_FAILURES = 5
FREE_FAILURES_PER_SOURCE = 20  # one place may hold several raters (a clinic's NAT), so a wider allowance
FIRST_LOCK = timedelta(seconds=30)
LONGEST_LOCK = timedelta(hours=1)
SESSION_LIFETIME = timedelta(minutes=30)  # of one token; a session in use keeps getting new ones
ROTATE_AFTER = timedelta(minutes=5)
ROTATION_GRACE = timedelta(seconds=60)  # the replaced token still serves runs already in flight (other tab)
MIN_PASSWORD_LENGTH = 10
ADMIN_HASH_ENV = "SKINGEN_ADMIN_PASSWORD_HASH"

INVITE_SECRET_BYTES = 24
# "<rater id>.<secrets.token_urlsafe(INVITE_SECRET_BYTES)>": 4 URL-safe characters per 3 bytes
_INVITE = re.compile(rf"(\d+)\.([A-Za-z0-9_-]{{{INVITE_SECRET_BYTES * 4 // 3}}})")
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("dummy password for timing")


class AuthError(ValueError):
    """A refused sign-in; the message is safe to show (it never says which part was wrong)."""


class Throttled(AuthError):
    def __init__(self, retry_after: timedelta) -> None:
        self.retry_after = retry_after
        seconds = max(1, round(retry_after.total_seconds()))
        super().__init__(f"too many failed sign-ins: please wait {seconds} s before trying again")


@dataclass(frozen=True)
class _Limit:
    """One throttle counter a sign-in is checked against: the account's, or the source's."""

    key: str
    free_failures: int


def source_key(source: str) -> str:
    """Throttle key of a client address; hashed, so the table keeps no addresses (personal data)."""
    return "source:" + hash_token(source)[:32]


def rater_key(name: str) -> str:
    """A rater's name as it is matched: case-insensitive (``casefold``: also ß/ss) and blind to extra spaces,
    so "Dr  Example" and "dr example" are one rater at sign-in and at ``raters add``."""
    return " ".join(name.split()).casefold()


def rater_named(session: Session, protocol_id: str, name: str, *, active_only: bool) -> Rater | None:
    """The study's rater called ``name`` (see :func:`rater_key`). Matched in Python, not with SQL ``lower()``:
    SQLite's folds ASCII only, PostgreSQL's every script, and a panel is a handful of rows."""
    query = select(Rater).where(Rater.protocol_id == protocol_id).order_by(Rater.id)
    if active_only:
        query = query.where(Rater.active.is_(True))
    key = rater_key(name)
    return next((r for r in session.scalars(query) if rater_key(r.name) == key), None)


def parse_invite(invite: str) -> tuple[int, str] | None:
    """``(rater id, secret)`` of a one-time link's code ``"<id>.<secret>"``; None when it cannot be one (a
    link cut short or mistyped in an e-mail)."""
    match = _INVITE.fullmatch(invite.strip())
    return (int(match[1]), match[2]) if match else None


InviteState = Literal["open", "used", "invalid", "malformed"]


@dataclass(frozen=True)
class Invite:
    """What a one-time link is now: ``open`` (usable; ``name`` is the rater's sign-in name), ``used`` (the
    rater has set a password with it), ``invalid`` (no such rater, a wrong secret, or a replaced or
    deactivated rater), ``malformed`` (not an invite code at all)."""

    state: InviteState
    name: str = ""


@dataclass(frozen=True)
class Identity:
    role: str  # "rater" or "admin"
    rater_id: int | None


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(stored: str | None, secret: str) -> bool:
    """Constant-time check; with no stored hash it still spends the same time (no user enumeration)."""
    try:
        return _hasher.verify(stored or _DUMMY_HASH, secret) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


class Auth:
    def __init__(self, db: Database, protocol_id: str, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.protocol_id = protocol_id
        self.clock = clock

    # --- throttling ---------------------------------------------------------------------------------------
    def _check_throttle(self, session: Session, key: str) -> LoginThrottle:
        row = session.get(LoginThrottle, key) or LoginThrottle(key=key, failures=0)
        session.add(row)
        now = self.clock()
        if row.locked_until is not None and row.locked_until > now:
            raise Throttled(row.locked_until - now)
        return row

    @staticmethod
    def _limits(key: str, source: str | None) -> list[_Limit]:
        """The account's counter ``key``, and the source's when the client address is known."""
        limits = [_Limit(key, FREE_FAILURES)]
        if source:
            limits.append(_Limit(source_key(source), FREE_FAILURES_PER_SOURCE))
        return limits

    def _failed(self, limits: list[_Limit], role: str, rater_id: int | None) -> None:
        """Record a failure on every counter in its own transaction, so it sticks although the sign-in is
        refused. The append-only audit event says which role and known rater it was — never the typed name
        (a person's name, or a password typed into the wrong field) nor the source address."""
        now = self.clock()
        with self.db.write() as session:
            for limit in limits:
                row = session.get(LoginThrottle, limit.key) or LoginThrottle(key=limit.key, failures=0)
                session.add(row)
                row.failures += 1
                row.last_failure_at = now
                if row.failures >= limit.free_failures:
                    lock = min(FIRST_LOCK * 2 ** (row.failures - limit.free_failures), LONGEST_LOCK)
                    row.locked_until = now + lock
            session.add(Event(at=now, kind="sign_in_failed", detail={"role": role, "rater_id": rater_id}))

    def _new_session(self, session: Session, role: str, rater_id: int | None) -> str:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        session.add(
            AuthSession(
                token_hash=hash_token(token),
                role=role,
                rater_id=rater_id,
                created_at=now,
                expires_at=now + SESSION_LIFETIME,
            )
        )
        return token

    def _sign_in(
        self,
        key: str,
        stored: Callable[[Session], tuple[str | None, int | None]],
        secret: str,
        role: str,
        source: str | None,
        failure: str,
    ) -> str:
        """Check every throttle, then the secret; a refusal says ``failure``, worded for the form it answers.
        A success resets the account's counter, not the source's: signing in to one's own account must not
        clear the way for guesses at others."""
        limits = self._limits(key, source)
        with self.db.write() as session:
            account, *_ = [self._check_throttle(session, limit.key) for limit in limits]
            stored_hash, rater_id = stored(session)
            if verify_secret(stored_hash, secret):
                account.failures = 0
                account.locked_until = None
                session.add(
                    Event(at=self.clock(), kind="sign_in", detail={"role": role, "rater_id": rater_id})
                )
                return self._new_session(session, role, rater_id)
        self._failed(limits, role, rater_id)
        raise AuthError(f"sign-in failed: {failure}")

    # --- raters -------------------------------------------------------------------------------------------
    def sign_in_rater(self, name: str, password: str, *, source: str | None = None) -> str:
        """Sign a rater in by name (any capitalisation, see :func:`rater_key`) and password."""

        def stored(session: Session) -> tuple[str | None, int | None]:
            rater = rater_named(session, self.protocol_id, name, active_only=True)
            return (rater.password_hash, rater.id) if rater else (None, None)

        key = f"rater:{self.protocol_id}:{rater_key(name)}"  # one counter however the name is typed
        failure = "check the name and password"
        return self._sign_in(key, stored, password, "rater", source, failure)

    def invite(self, invite: str, *, source: str | None = None) -> Invite:
        """What the one-time link ``invite`` is, for the page it opens. Only a link whose secret checks out
        learns the rater's name; a wrong secret counts as a failed sign-in (throttled like one)."""
        parsed = parse_invite(invite)
        if parsed is None:
            return Invite("malformed")
        rater_id, secret = parsed
        with self.db.read() as session:
            rater = session.get(Rater, rater_id)
            if rater is None or not rater.active or rater.protocol_id != self.protocol_id:
                return Invite("invalid")
            if rater.invite_hash is None:
                return Invite("used" if rater.password_hash is not None else "invalid")
            stored, name = rater.invite_hash, rater.name
        limits = self._limits(f"invite:{rater_id}", source)
        with self.db.write() as session:
            for limit in limits:
                self._check_throttle(session, limit.key)
        if verify_secret(stored, secret):
            return Invite("open", name)
        self._failed(limits, "rater", rater_id)
        return Invite("invalid")

    def accept_invite(self, invite: str, password: str, *, source: str | None = None) -> str:
        """Use a one-time sign-in link: set the rater's password and sign them in."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AuthError(f"choose a password of at least {MIN_PASSWORD_LENGTH} characters")
        rater_id, secret = parse_invite(invite) or (-1, "")

        def stored(session: Session) -> tuple[str | None, int | None]:
            rater = session.get(Rater, rater_id)
            usable = rater is not None and rater.active and rater.protocol_id == self.protocol_id
            return (rater.invite_hash, rater.id) if usable else (None, None)

        failure = "this sign-in link is not valid (ask the researcher for a new one)"
        token = self._sign_in(f"invite:{rater_id}", stored, secret, "rater", source, failure)
        with self.db.write() as session:
            rater = session.get(Rater, rater_id)
            assert rater is not None
            rater.invite_hash = None  # one use only
            rater.password_hash = hash_secret(password)
            rater.activated_at = self.clock()
        return token

    # --- researchers --------------------------------------------------------------------------------------
    def sign_in_admin(self, password: str, admin_hash: str | None, *, source: str | None = None) -> str:
        if not admin_hash:
            raise AuthError(
                f"no admin password is configured (set {ADMIN_HASH_ENV} or admin_password_hash "
                "in Streamlit secrets; `skingen-study admin-hash` makes one)"
            )

        def stored(_: Session) -> tuple[str | None, int | None]:
            return admin_hash, None

        return self._sign_in("admin", stored, password, "admin", source, "check the password")

    # --- sessions -----------------------------------------------------------------------------------------
    def identity(self, token: str | None) -> Identity | None:
        """Who a URL session token belongs to, checked on every page run; None if unknown or expired."""
        with self.db.read() as session:
            row = self._live_session(session, token)
            return None if row is None else Identity(row.role, row.rater_id)

    def _live_session(self, session: Session, token: str | None) -> AuthSession | None:
        if not token:
            return None
        row = session.scalar(select(AuthSession).where(AuthSession.token_hash == hash_token(token)))
        if row is None or row.expires_at <= self.clock():
            return None
        if row.rater_id is not None:
            rater = session.get(Rater, row.rater_id)
            if rater is None or not rater.active:
                return None
        return row

    def renew(self, token: str | None) -> str | None:
        """The session token to use from now on: ``token`` itself while it is younger than ``ROTATE_AFTER``
        (a read), else a new one (the old one then expires after ``ROTATION_GRACE``); None if not signed in."""
        with self.db.read() as session:
            row = self._live_session(session, token)
            if row is None:
                return None
            if self.clock() - row.created_at < ROTATE_AFTER:
                return token
        with self.db.write() as session:
            row = self._live_session(session, token)
            if row is None:
                return None
            row.expires_at = min(row.expires_at, self.clock() + ROTATION_GRACE)
            return self._new_session(session, row.role, row.rater_id)

    def sign_out(self, token: str) -> None:
        with self.db.write() as session:
            session.execute(delete(AuthSession).where(AuthSession.token_hash == hash_token(token)))
