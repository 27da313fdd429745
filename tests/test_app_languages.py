"""A second language end to end (AppTest): a participant who opens the study with ``?lang=de`` reads the app
and the protocol in German from consent to completion, keeps German after a reload, is exported with
``language = de``, and the completion page names the cases whose AI diagnosis was deliberately wrong."""

from __future__ import annotations

import pytest

from db.models import ConsentRecord, Participant
from study.export import export_frames
from study.refusals import EngineError
from tests.app_driver import AppParticipant
from tests.factories import example_protocol, write_protocol


@pytest.fixture
def bilingual(tmp_path, bundle_dir, make_engine, monkeypatch, database_url):
    """The demo between-subjects protocol as shipped (English and German), registered and served."""
    path = write_protocol(tmp_path, example_protocol("between", languages=True), bundle_dir, "between.yaml")
    engine = make_engine(path)
    monkeypatch.setenv("SKINGEN_DB_URL", database_url)
    monkeypatch.setenv("SKINGEN_PROTOCOL", str(path))
    return engine


def wrong_ai_numbers(engine, token: str) -> list[int]:
    """The page numbers of the participant's cases whose AI diagnosis is not the ground truth, read from
    the bundle's cases and the participant's stored path (not from the page)."""
    cases = {c.case_id: c for c in engine.loaded.bundle.manifest.cases}
    return [
        step.trial_number
        for step in engine.path_of(token)
        if step.kind == "trial" and cases[step.case_id].ai.skin_condition != cases[step.case_id].ground_truth
    ]


def test_a_german_participant_completes_the_study_in_german(bilingual):
    engine = bilingual
    p = AppParticipant({"lang": "de", "PROLIFIC_PID": "de-1", "SESSION_ID": "s1"})
    assert p.page == "consent"
    assert "Informationen für Teilnehmende" in p.text() and "Participant information" not in p.text()
    assert any("documentElement.lang = 'de'" in html.proto.body for html in p.at.get("html"))
    assert p.at.get("form_submit_button")[0].label == "Ich stimme zu – Studie beginnen"
    p.consent()
    assert p.page == "questions" and "Über Sie" in p.text()
    assert "Was beschreibt Ihren medizinischen Hintergrund am besten?" in p.text()
    [expertise, _age] = p.at.radio
    assert expertise.options[0] == "Laie"  # format_func shows the German option; the stored code is 1
    p.advance(value=2)
    assert p.page == "info" and "So funktioniert es" in p.text()
    p.submit()
    trials = 0
    while p.page != "complete":
        if p.page == "trial":
            trials += 1
            step = p.at.session_state["skingen.visit"].position.step
            assert f"Fall {step.trial_number} von {step.trials_total}" in p.text()
            assert "Die Diagnose der KI" in p.text()
            assert "Ich vertraue der Diagnose der KI für diesen Fall." in p.text()
            assert p.at.get("button")[0].label == "Vergrößern"
            if trials == 2:  # a reload keeps the language, even with another ?lang= in the URL
                p = AppParticipant({"token": p.token, "lang": "en"})
                assert "Die Diagnose der KI" in p.text() and "The AI's diagnosis" not in p.text()
        p.advance()
    text = p.text()
    assert "Vielen Dank!" in text and "Ihre Antworten wurden gespeichert" in text
    numbers = wrong_ai_numbers(engine, p.token)
    assert numbers, "the test bundle plants wrong AI diagnoses"
    assert f"In {len(numbers)} Ihrer Fälle war die Diagnose der KI absichtlich falsch" in text
    listed = [
        int(line.split(":")[0].removeprefix("- Fall "))
        for line in text.splitlines()
        if line.startswith("- Fall ")
    ]
    assert listed == numbers

    with engine.db.read() as session:
        participant = session.query(Participant).one()
        record = session.query(ConsentRecord).one()
    assert participant.language == "de"
    assert record.consent_text.startswith("## Informationen für Teilnehmende")  # the text as shown
    participants = export_frames(engine.db)["participants"]
    assert participants["language"].tolist() == ["de"]


def test_without_a_language_the_first_is_used_and_english_pages_reveal_in_english(bilingual):
    engine = bilingual
    p = AppParticipant({"lang": "fr"})  # not offered: the protocol's first language
    assert "Participant information" in p.text()
    p.consent()
    while p.page != "complete":
        p.advance()
    numbers = wrong_ai_numbers(engine, p.token)
    text = p.text()
    assert f"In {len(numbers)} of your cases the AI's diagnosis was deliberately wrong:" in text
    listed = [
        int(line.split(":")[0].removeprefix("- Case "))
        for line in text.splitlines()
        if line.startswith("- Case ")
    ]
    assert listed == numbers
    assert export_frames(engine.db)["participants"]["language"].tolist() == ["en"]


def test_the_engine_keeps_the_language_given_at_consent(bilingual):
    engine = bilingual
    statements = [s.id for s in engine.protocol.consent.statements]
    with pytest.raises(EngineError, match="'fr' is not one of the study's"):
        engine.consent(statements, language="fr")
    german, default = engine.consent(statements, language="de"), engine.consent(statements)
    assert engine.position(german).language == "de" and engine.position(default).language == "en"
    entry = engine.position(german).step
    assert entry.items[0].text == "Was beschreibt Ihren medizinischen Hintergrund am besten?"
    assert engine.position(default).step.items[0].text == "Which best describes your background in medicine?"
