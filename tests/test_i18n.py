"""The app's message catalogs: every participant-facing string goes through them, and every shipped language
translates every string (app/catalogs.py, app/i18n.py, app/locale)."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from app import catalogs, i18n

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = catalogs.LOCALE_DIR / "app.pot"

# The modules that draw what participants read (the consent, question, case, completion and error pages and
# the helpers they call). Raters' and researchers' pages are English-only (docs/app.md "Languages").
PARTICIPANT_MODULES = [
    "app/views/consent.py",
    "app/views/questions.py",
    "app/views/info.py",
    "app/views/trial.py",
    "app/views/complete.py",
    "app/views/error.py",
    "app/items.py",
    "app/layout.py",
    "app/conversation.py",
    "app/main.py",
]
# Streamlit calls that draw text, and the keyword arguments that carry text a participant reads.
DRAWING = {
    "title", "header", "subheader", "markdown", "write", "caption", "text", "error", "warning", "info",
    "success", "button", "form_submit_button", "link_button", "checkbox", "radio", "selectbox", "text_area",
    "text_input", "number_input", "chat_input", "progress", "expander", "dialog", "toast", "spinner", "image",
    "Page", "set_page_config",
}  # fmt: skip
TEXT_KEYWORDS = {"label", "body", "placeholder", "help", "caption", "captions", "text", "title", "page_title"}
# Literal text that is no language: Streamlit markdown directives and the hidden test hook's markup.
MARKUP = re.compile(r":material/\w+:|:\w+\[|</?\w+[^>]*>|#skingen-run|\{[^}]*\}")
ALLOWED: set[str] = set()  # literal strings a participant module may draw as they are (none so far)


def _template_ids() -> set[str]:
    with TEMPLATE.open("rb") as source:
        return {_id(m.id) for m in read_po(source) if m.id}


def _id(message_id: str | tuple[str, ...]) -> str:
    return message_id[0] if isinstance(message_id, tuple) else message_id


def test_the_template_holds_exactly_the_strings_of_the_code():
    """app.pot is extracted from the code: a new or changed string needs `pybabel extract` (docs/app.md)."""
    method_map, options_map = parse_mapping_cfg((catalogs.LOCALE_DIR / "babel.cfg").open())
    # only the packages the mapping names: a CI checkout holds .venv and node_modules beside them
    searched = lambda path: Path(path).relative_to(ROOT).parts[:1] in {(), ("app",), ("study",)}  # noqa: E731
    found = extract_from_dir(ROOT, method_map, options_map, directory_filter=searched)
    in_code = {_id(message) for _f, _l, message, *_ in found}
    in_template = _template_ids()
    assert in_code - in_template == set(), "strings missing from app/locale/app.pot: run pybabel extract"
    assert in_template - in_code == set(), "app/locale/app.pot holds strings the code no longer has"


@pytest.mark.parametrize(
    "language", [code for code in catalogs.languages() if code != catalogs.SOURCE_LANGUAGE]
)
def test_every_catalog_translates_every_string(language):
    with catalogs.catalog_path(language).open("rb") as source:
        catalog = read_po(source, locale=language)
    assert {_id(m.id) for m in catalog if m.id} == _template_ids(), f"run pybabel update for {language}"
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings) and not message.fuzzy, f"{language}: {ids[0]!r} is not translated"
        fields = {f for text in ids for _t, f, *_ in string.Formatter().parse(text) if f}
        for text in strings:
            assert {f for _t, f, *_ in string.Formatter().parse(text) if f} == fields, (
                f"{language}: {text!r} must keep the placeholders {sorted(fields)} of {ids[0]!r}"
            )


def test_german_is_drawn_from_the_compiled_catalog():
    german = catalogs.translations("de")
    assert german.gettext("Next") == "Weiter"
    assert german.ngettext(
        "You can ask {count} more question about this case.",
        "You can ask {count} more questions about this case.",
        2,
    ) == ("Sie können noch {count} Fragen zu diesem Fall stellen.")
    assert catalogs.translations("en").gettext("Next") == "Next"
    assert set(catalogs.languages()) >= {"en", "de"}


def _literal_text(node: ast.expr) -> str:
    """The words a string argument spells out as written in the code ('' for a call or a name)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_literal_text(value) for value in node.values)
    if isinstance(node, ast.BinOp):
        return _literal_text(node.left) + _literal_text(node.right)
    if isinstance(node, ast.List | ast.Tuple):
        return " ".join(_literal_text(element) for element in node.elts)
    return ""


def bare_strings(source: str) -> list[tuple[int, str]]:
    """(line, text) of each literal with words that a Streamlit drawing call gets without the catalog."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in DRAWING:
            continue
        texts = [*node.args[:1], *(k.value for k in node.keywords if k.arg in TEXT_KEYWORDS)]
        for argument in texts:
            text = _literal_text(argument)
            if re.search(r"[A-Za-z]{2}", MARKUP.sub("", text)) and text not in ALLOWED:
                found.append((argument.lineno, text))
    return found


@pytest.mark.parametrize("module", PARTICIPANT_MODULES)
def test_participant_pages_draw_no_string_past_the_catalog(module):
    assert bare_strings((ROOT / module).read_text(encoding="utf-8")) == []


def test_the_scan_finds_a_bare_string():
    """The scan above can fail: literal labels, f-strings and markdown with words are caught; translated,
    markup-only and computed arguments are not."""
    source = """
st.button("Next", type="primary")
st.markdown(f"**Why:** {reason}")
box.chat_input(placeholder="Ask away")
st.markdown(_("Next"))
st.markdown(f"**{heading}**  \\n:small[:gray[{note}]]")
st.caption(f":material/autorenew: {text}")
st.form("form:consent")
"""
    assert [line for line, _text in bare_strings(source)] == [2, 3, 4]


@pytest.mark.parametrize(
    ("requested", "header", "expected"),
    [
        ("de", None, "de"),
        (None, "de-CH,de;q=0.9,en;q=0.8", "de"),
        (None, "fr-FR,fr;q=0.9,en;q=0.8,de;q=0.7", "en"),
        (None, "en;q=0.2,de;q=0.9", "de"),
        ("fr", "fr", "en"),  # neither offered: the first language
        ("DE", None, "de"),
        (None, "*", "en"),
        (None, "de;q=0", "en"),
        (None, "de;q=abc, en", "en"),
    ],
)
def test_the_language_comes_from_the_url_then_the_browser(requested, header, expected):
    assert i18n.negotiate(("en", "de"), requested, header) == expected
