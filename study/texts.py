"""Protocol texts in several languages: a text is a string, or a mapping ``{en: …, de: …}`` with one entry per
language the protocol lists in ``languages``.

A protocol is validated once per language (:func:`study.protocol.parse_protocol` passes the languages and the
one wanted as pydantic's validation context): every :data:`Text` field then holds the plain string of that
language, so the app, the export, the codebook and the analysis read ordinary strings. The first language is
the protocol's own: exports, codebook and reports use it; participants see theirs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated

from pydantic import BeforeValidator, Field, ValidationInfo

LANGUAGE_PATTERN = r"^[a-z]{2,3}$"
LanguageCode = Annotated[str, Field(pattern=LANGUAGE_PATTERN, description="ISO 639 code, e.g. en, de.")]
DEFAULT_LANGUAGES: tuple[str, ...] = ("en",)
"""A protocol without ``languages`` is in English, the language of the app's own source strings."""


def validation_context(languages: Sequence[str], language: str | None = None) -> dict[str, object]:
    """The pydantic context that validates a protocol in ``language`` (default: its first)."""
    return {"languages": tuple(languages), "language": language or languages[0]}


def declared_languages(data: object) -> tuple[str, ...]:
    """The ``languages`` a raw protocol mapping lists (its valid codes, each once), or the default when there
    are none: the field's own validation reports what is wrong with it, the texts are checked against these."""
    raw = data.get("languages") if isinstance(data, Mapping) else None
    codes = (
        [c for c in raw if isinstance(c, str) and re.match(LANGUAGE_PATTERN, c)]
        if isinstance(raw, list)
        else []
    )
    return tuple(dict.fromkeys(codes)) or DEFAULT_LANGUAGES


def _context(info: ValidationInfo) -> tuple[tuple[str, ...], str]:
    context = info.context if isinstance(info.context, Mapping) else {}
    languages = tuple(context.get("languages") or DEFAULT_LANGUAGES)
    return languages, str(context.get("language") or languages[0])


def _in_language(value: object, info: ValidationInfo) -> object:
    """A text's string in the language being validated; a mapping must give exactly the listed languages.

    A plain string in a protocol of several languages is refused (it would show one language to everyone),
    except the empty string, which means "none" (no instructions, no help text) in every language.
    """
    languages, language = _context(info)
    if isinstance(value, Mapping):
        given = [str(code) for code in value]
        missing = [code for code in languages if code not in given]
        unknown = [code for code in given if code not in languages]
        if missing or unknown:
            parts = [
                f"missing {missing}" if missing else "",
                f"{unknown} not in languages" if unknown else "",
            ]
            raise ValueError(
                f"give this text in each language of 'languages' {list(languages)}: "
                + "; ".join(p for p in parts if p)
            )
        return value[language]
    if isinstance(value, str) and value and len(languages) > 1:
        example = ", ".join(f"{code}: …" for code in languages)
        raise ValueError(
            f"the protocol lists languages {list(languages)}: give this text in each, as {{{example}}}"
        )
    return value


Text = Annotated[str, BeforeValidator(_in_language)]
"""A participant-facing protocol text: a string, or ``{language: string}`` for every listed language."""
