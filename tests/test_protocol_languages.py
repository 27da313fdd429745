"""Protocols in several languages: every text in every listed language, errors that name the field and line,
and one protocol per language whose ids, codes and steps are the same."""

from __future__ import annotations

import pytest
import yaml

from app.study_command import language_note, main
from study.allocation import arms
from study.path import participant_path
from study.protocol.loading import ProtocolError, load_protocol, parse_protocol
from tests.factories import EXAMPLES, example_protocol, write_protocol


def problems(data: dict) -> list[str]:
    with pytest.raises(ProtocolError) as info:
        parse_protocol(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return info.value.problems


def line_of(problem: str) -> int:
    return int(problem.split("(line ")[1].split(")")[0])


@pytest.mark.parametrize("design", ["between", "within"])
def test_the_demo_reads_the_same_in_english_and_differs_only_in_words_in_german(design):
    text = (EXAMPLES / f"{design}.yaml").read_text(encoding="utf-8")
    english, german = parse_protocol(text), parse_protocol(text, language="de")
    assert english.languages == german.languages == ("en", "de")
    assert english.study.title == "Understanding AI skin diagnoses"
    assert german.study.title == "KI-Diagnosen von Hauterkrankungen verstehen"
    assert german.consent.text.startswith("## Informationen für Teilnehmende")
    assert german.debrief.reveal_wrong_ai and english.debrief.reveal_wrong_ai
    en_items, de_items = english.items(), german.items()
    assert list(en_items) == list(de_items)
    for item_id, item in en_items.items():
        translated = de_items[item_id]
        assert item.codes == translated.codes and item.construct == translated.construct
        assert (item.text != translated.text) or item.text.startswith("18")  # every question is translated
    assert german.items()["explanation_satisfaction_1"].text == (
        "Durch die Erklärung verstehe ich, wie das KI-System funktioniert."
    )
    assert german.items()["trust_1"].scale.anchors[5] == "Stimme eher zu"
    assert english.items()["trust_1"].scale.anchors[5] == "Somewhat agree"
    # the English protocol is what the demo was before it had languages
    projected = parse_protocol(yaml.safe_dump(example_protocol(design), allow_unicode=True))
    left_out = {"languages", "instruments"}  # the English-only projection drops the instrument's translation
    assert english.model_dump(exclude=left_out) == projected.model_dump(exclude=left_out)


def test_steps_are_the_same_in_every_language(tmp_path, bundle_dir):
    path = write_protocol(tmp_path, example_protocol("within", languages=True), bundle_dir, "two.yaml")
    loaded = load_protocol(path)
    german = loaded.localized("de")
    assert german.protocol.languages == ("en", "de") and loaded.localized("en") is loaded
    arm = arms(loaded.protocol)[1].id
    en_steps = participant_path(loaded, arm, 7).steps
    de_steps = participant_path(german, arm, 7).steps
    assert len(en_steps) > 10
    assert [(s.key, s.case_id, [i.id for i in s.items]) for s in en_steps] == [
        (s.key, s.case_id, [i.id for i in s.items]) for s in de_steps
    ]
    with pytest.raises(ValueError, match="'fr' is not one of the protocol's languages"):
        loaded.localized("fr")


def test_a_missing_translation_is_named_by_field_and_line():
    data = example_protocol("between", languages=True)
    del data["questionnaires"]["post_block"][1]["text"]["de"]
    data["consent"]["statements"][2]["text"] = "I agree."
    data["questionnaires"]["entry"][0]["options"][1] = {"en": "Medical student", "de": "Student", "fr": "x"}
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    with pytest.raises(ProtocolError) as info:
        parse_protocol(text)
    found = {p.split(" ")[0]: p for p in info.value.problems}
    assert set(found) == {
        "questionnaires.post_block[1].text",
        "consent.statements[2].text",
        "questionnaires.entry[0].options[1]",
    }
    assert "missing ['de']" in found["questionnaires.post_block[1].text"]
    assert "give this text in each, as {en: …, de: …}" in found["consent.statements[2].text"]
    assert "['fr'] not in languages" in found["questionnaires.entry[0].options[1]"]
    lines = text.splitlines()
    assert "I agree." in lines[line_of(found["consent.statements[2].text"]) - 1]
    assert lines[line_of(found["questionnaires.post_block[1].text"]) - 1].strip() == "text:"


def test_a_text_mapping_needs_the_languages_listed():
    data = example_protocol("between")
    data["debrief"] = {"en": "Thanks", "de": "Danke"}
    assert any(p.startswith("debrief.text") and "['de'] not in languages" in p for p in problems(data))
    data = example_protocol("between", languages=True)
    data["languages"] = ["en", "de", "en"]
    assert [p.split(":")[0] for p in problems(data)] == ["languages (line 1)"]  # not every text besides
    data["languages"] = ["en", "German"]
    assert any(p.startswith("languages[1]") and "should match pattern" in p for p in problems(data))


def test_an_instrument_needs_its_wording_in_every_language():
    data = example_protocol("between", languages=True)
    translation = data["instruments"][0]["translations"]["de"]
    del translation["wording"]["3"], translation["anchors"][2], translation["fill"]
    found = "\n".join(problems(data))  # cross-field checks, reported together
    assert "instruments[0].translations.de.wording: give items ['3']" in found
    assert "instruments[0].translations.de.anchors: give points [2]" in found
    assert "instruments[0].translations.de.fill: give ['system']" in found
    data["instruments"][0]["translations"] = {"fr": translation}
    found = "\n".join(problems(data))
    assert "instruments[0].translations.fr: 'fr' is not one of languages ['en', 'de']" in found
    assert "instruments[0].translations.de: give the wording (8 items) and anchors in de" in found


def test_debrief_is_a_text_or_a_text_with_options():
    data = example_protocol("between")
    data["debrief"] = "Thanks."
    plain = parse_protocol(yaml.safe_dump(data))
    assert plain.debrief.text == "Thanks." and not plain.debrief.reveal_wrong_ai
    data["debrief"] = {"reveal_wrong_ai": True}
    revealing = parse_protocol(yaml.safe_dump(data))
    assert revealing.debrief.text == "" and revealing.debrief.reveal_wrong_ai
    data["debrief"] = {"text": "Thanks.", "reveal": True}
    assert any(p.startswith("debrief.reveal") and "Extra inputs" in p for p in problems(data))


def test_validate_names_the_languages_and_any_without_app_words(tmp_path, bundle_dir, capsys):
    data = example_protocol("between", languages=True)
    assert main(["validate", str(write_protocol(tmp_path, data, bundle_dir, "two.yaml"))]) == 0
    assert "  languages: en, de\n" in capsys.readouterr().out
    swedish = parse_protocol(yaml.safe_dump(data, allow_unicode=True)).model_copy(
        update={"languages": ("en", "sv")}
    )
    assert language_note(swedish).startswith("languages: en, sv — the app's own words have no catalog for sv")
