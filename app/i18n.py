"""The app's own words in the participant's language: ``_("…")`` looks a string up in the catalog of the
language this session draws in (app/catalogs.py holds the catalogs and how they are made).

Every participant-facing string is written in English in the code and wrapped in ``_()`` (``ngettext`` for
plurals; ``N_`` marks a string defined in one place and translated with ``_`` where it is drawn). The
participant's language is chosen once per rerun (:func:`activate`, from main.py) and kept in the session, so
form callbacks and every helper that draws text read the same one.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from app.catalogs import SOURCE_LANGUAGE, translations

LANGUAGE_PARAM = "lang"
"""The URL parameter that picks the participant's language (``?lang=de``), before the browser's."""
_ACTIVE_KEY = "skingen.language"


def activate(language: str) -> None:
    """Make ``language`` the one this session's strings are drawn in (until the next call)."""
    st.session_state[_ACTIVE_KEY] = language


def active() -> str:
    return st.session_state.get(_ACTIVE_KEY, SOURCE_LANGUAGE)


def _(message: str) -> str:
    """``message`` (English source text) in the session's language."""
    return translations(active()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n``, in the session's language (its own plural rules)."""
    return translations(active()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks a string for the catalog where it is defined; it is translated with :func:`_` where it is drawn."""
    return message


def negotiate(offered: Sequence[str], requested: str | None, accept_language: str | None) -> str:
    """The participant's language among ``offered`` (the first is the fallback).

    ``requested`` is the URL's ``?lang=``; ``accept_language`` the browser's ``Accept-Language`` header
    (``de-CH,de;q=0.9,en;q=0.8``), read by preference weight. Regional variants match their language
    (``de-AT`` → ``de``).
    """
    wanted: list[tuple[float, int, str]] = []
    if requested:
        wanted.append((2.0, 0, requested))
    for index, part in enumerate((accept_language or "").split(","), start=1):
        tag, _sep, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and tag != "*" and weight > 0:
            wanted.append((weight, index, tag))
    for _weight, _index, tag in sorted(wanted, key=lambda w: (-w[0], w[1])):
        code = tag.strip().lower().replace("_", "-").split("-")[0]
        if code in offered:
            return code
    return offered[0]


def requested() -> tuple[str | None, str | None]:
    """What this browser asks for: the URL's ``?lang=`` and the ``Accept-Language`` header (or, without
    one, the browser's own locale, as Streamlit reports it)."""
    url = st.query_params.get(LANGUAGE_PARAM) or None
    header = st.context.headers.get("Accept-Language") or st.context.locale or None
    return url, header
