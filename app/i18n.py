"""The app's own words in the participant's language: gettext message catalogs, made and read with Babel.

English is the source language: every participant-facing string is written in English in the code, wrapped in
``_("…")`` (``ngettext`` for plurals, ``N_`` where it is only marked and translated later).
``app/locale/app.pot`` is the template Babel extracts from the code (``pybabel extract -F app/locale/babel.cfg
-o app/locale/app.pot .``) and ``app/locale/<language>/LC_MESSAGES/app.po`` holds each language's
translations (``pybabel update -i app/locale/app.pot -d app/locale -D app``). The ``.po`` files are what is
edited and shipped: the app compiles each in memory the first time it is needed (Babel's ``read_po`` →
``write_mo`` → the standard library's ``GNUTranslations``), so no compiled ``.mo`` file can be stale and
there is no build step. tests/test_i18n.py fails when the template misses a string of the code or a
catalog misses a translation.

The participant's language is chosen once per rerun (:func:`activate`, from main.py) and kept in the session,
so form callbacks and every helper that draws text read the same one.
"""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Sequence
from pathlib import Path

import streamlit as st
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "app"
SOURCE_LANGUAGE = "en"
LANGUAGE_PARAM = "lang"
"""The URL parameter that picks the participant's language (``?lang=de``), before the browser's."""
_ACTIVE_KEY = "skingen.language"


def catalog_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def languages() -> tuple[str, ...]:
    """The languages the app's own strings are available in: English and each shipped catalog."""
    shipped = sorted(p.name for p in LOCALE_DIR.iterdir() if catalog_path(p.name).is_file())
    return (SOURCE_LANGUAGE, *(code for code in shipped if code != SOURCE_LANGUAGE))


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of ``language``; English (and any language without a catalog) as written."""
    path = catalog_path(language)
    if language == SOURCE_LANGUAGE or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


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
