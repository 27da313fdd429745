"""The app's message catalogs on disk: which languages its own words exist in, each compiled for gettext.

English is the source language: every participant-facing string is written in English in the code, wrapped in
``_("…")`` (app/i18n.py). ``app/locale/app.pot`` is the template Babel extracts from the code (``pybabel
extract -F app/locale/babel.cfg --no-location --sort-output -o app/locale/app.pot .``) and
``app/locale/<language>/LC_MESSAGES/app.po`` holds each language's translations (``pybabel update -i
app/locale/app.pot -d app/locale -D app``). The ``.po`` files are what is edited and shipped: the app compiles
each in memory the first time it is needed (Babel's ``read_po`` → ``write_mo`` → the standard library's
``GNUTranslations``), so no compiled ``.mo`` file can be stale and there is no build step. tests/test_i18n.py
fails when the template misses a string of the code or a catalog misses a translation.

No Streamlit here: the commands (``skingen-study validate``) read it too.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "app"
SOURCE_LANGUAGE = "en"


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
