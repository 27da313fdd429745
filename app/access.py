"""Who is using the app: participants (URL token), raters and researchers (signed-in URL sessions).

The three audiences get different page sets (``main.py``), and every rater or researcher page checks the
role again itself, on every run, through :func:`require` — a page requested directly, a forged or expired
session, or a participant's token grants nothing.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import streamlit as st

from app.context import configured_engine
from study.auth import ADMIN_HASH_ENV, Auth, Identity

AREA_PARAM = "area"
SESSION_PARAM = "session"
INVITE_PARAM = "invite"
AREAS = ("rate", "admin", "explore")
_AREA_KEY = "skingen.area"
_SESSION_KEY = "skingen.session"


def area() -> str:
    """``participant``, ``rate``, ``admin`` or ``explore``: from ``?area=`` or the URL path (``/admin``), read once.

    The area stays in the URL (page switches clear query parameters), so a reload lands in the same place.
    """
    if _AREA_KEY not in st.session_state:
        requested = st.query_params.get(AREA_PARAM, "") or urlparse(st.context.url or "").path.strip("/")
        if INVITE_PARAM in st.query_params:
            requested = "rate"
        st.session_state[_AREA_KEY] = (
            requested.split("/")[0] if requested.split("/")[0] in AREAS else "participant"
        )
    chosen = st.session_state[_AREA_KEY]
    if chosen != "participant" and st.query_params.get(AREA_PARAM) != chosen:
        st.query_params[AREA_PARAM] = chosen
    return chosen


def auth() -> Auth:
    engine = configured_engine()
    return Auth(engine.db, engine.protocol.study.id)


def admin_password_hash() -> str | None:
    """The researchers' Argon2 hash: environment first, then Streamlit secrets. Never a default."""
    from_env = os.environ.get(ADMIN_HASH_ENV)
    if from_env:
        return from_env
    try:
        return st.secrets.get("admin_password_hash")
    except FileNotFoundError:
        return None


def session_token() -> str | None:
    """The signed-in session: from the URL (reloads) or this tab's state (page switches clear the URL)."""
    token = st.query_params.get(SESSION_PARAM) or st.session_state.get(_SESSION_KEY)
    if token:
        st.session_state[_SESSION_KEY] = token
        if st.query_params.get(SESSION_PARAM) != token:
            st.query_params[SESSION_PARAM] = token
    return token or None


def identity() -> Identity | None:
    """Who is signed in; renews the session token in the URL once it is old enough (see study.auth)."""
    token = session_token()
    renewed = auth().renew(token)
    if renewed is None:
        return None
    if renewed != token:
        start_session(renewed)
    return auth().identity(renewed)


PROXY_ADDRESS_HEADER = "X-Real-IP"


def client_source() -> str | None:
    """The client's address, for per-source sign-in throttling. Streamlit reports no address for a local
    peer; behind the local nginx of our deployment that peer is the proxy, which sets ``X-Real-IP`` to the
    real client (the header is trusted only then — from a remote peer it could be forged)."""
    peer = st.context.ip_address
    if isinstance(peer, str):  # not None: a remote peer (AppTest's mocked runtime gives a mock: no address)
        return peer
    return st.context.headers.get(PROXY_ADDRESS_HEADER) or None


def start_session(token: str) -> None:
    """Keep the signed-in session in the URL, so a reload stays signed in (like participants' tokens)."""
    st.session_state[_SESSION_KEY] = token
    st.query_params[SESSION_PARAM] = token
    st.query_params.pop(INVITE_PARAM, None)


def sign_out() -> None:
    token = session_token()
    if token:
        auth().sign_out(token)
    st.session_state.pop(_SESSION_KEY, None)
    st.query_params.pop(SESSION_PARAM, None)


def message(error: Exception) -> str:
    """A refusal's message as a sentence: its first letter raised, the rest as written (``str.capitalize``
    would lower names such as SKINGEN_ADMIN_PASSWORD_HASH or a rater's)."""
    text = str(error)
    return text[:1].upper() + text[1:]


def require(role: str) -> Identity:
    """Stop this page unless a valid session of ``role`` is signed in (checked on every run)."""
    who = identity()
    if who is None or who.role != role:
        st.error("Please sign in to see this page.")
        st.stop()
    return who
