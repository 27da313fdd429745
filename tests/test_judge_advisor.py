"""Judge–advisor trials (protocol ``trial.advice: after_initial``): the participant's own diagnosis first, stored
before the AI's advice is shown and never changed after it; bots, export and codebook follow."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from db.models import Event, Response
from study.allocation import arms
from study.codebook import item_codebook
from study.export import export_frames
from study.path import AnswerError, participant_path
from study.protocol.loading import ProtocolError, load_protocol
from study.refusals import AnswerLocked, EngineError, StepConflict
from study.simulate import AdviceTaking, Policy, simulate
from tests.app_driver import AppParticipant
from tests.participants import ENTRY, TICKED, answers_for


@pytest.fixture
def judge_advisor_file(protocol_file):
    def make(design: str = "between", **changes):
        return protocol_file(design, trial={"advice": "after_initial"}, **changes)

    return make


def _to_first_trial(engine):
    token = engine.consent(TICKED, {})
    position = engine.submit(token, "entry", ENTRY)
    return token, engine.submit(token, position.step.key, {})  # past the instructions


def _responses(engine) -> list[tuple[str, str, str]]:
    with engine.db.read() as session:
        return sorted(session.execute(select(Response.step_key, Response.item_id, Response.value)).all())


def test_the_option_is_validated_by_field(protocol_file, tmp_path):
    with pytest.raises(ProtocolError) as refused:
        load_protocol(protocol_file(trial={"advice": "afterwards"}))
    assert "trial.advice" in str(refused.value) and "after_initial" in str(refused.value)
    # no diagnosis item to ask twice
    with pytest.raises(ProtocolError) as refused:
        load_protocol(
            protocol_file(
                trial={"advice": "after_initial"},
                questionnaires__trial=[
                    {"id": "trust_1", "text": "Trust?", "type": "likert", "scale": {"points": 5}}
                ],
            )
        )
    assert "trial.advice: after_initial" in str(refused.value) and "no diagnosis item" in str(refused.value)
    # an item already named like an initial answer
    clash = {"id": "own_diagnosis_initial", "text": "Why?", "type": "free_text", "required": False}
    with pytest.raises(ProtocolError) as refused:
        load_protocol(protocol_file(trial={"advice": "after_initial"}, questionnaires__post=[clash]))
    assert "'own_diagnosis_initial' is the initial answer of diagnosis item 'own_diagnosis'" in str(
        refused.value
    )
    assert load_protocol(protocol_file()).protocol.trial.advice == "with_case"  # the default: today's trial


def test_each_trial_is_two_steps_the_first_without_advice(judge_advisor_file):
    loaded = load_protocol(judge_advisor_file("within"))
    path = participant_path(loaded, arms(loaded.protocol)[0].id, 7)
    trials = [s for s in path if s.kind == "trial"]
    assert len(trials) == 2 * 6  # 6 cases, two halves each
    for first, second in zip(trials[::2], trials[1::2], strict=True):
        assert first.key == second.key + ".initial" and second.initial_step == first.key
        assert (first.case_id, first.condition, first.trial_number) == (
            second.case_id,
            second.condition,
            second.trial_number,
        )
        assert not first.advice and second.advice
        assert [i.id for i in first.items] == ["own_diagnosis_initial"]
        assert first.items[0].confidence == second.items[0].confidence
        assert "own_diagnosis" in [i.id for i in second.items]  # the final answer, with the other items


def test_first_answer_is_stored_then_locked(judge_advisor_file, make_engine):
    engine = make_engine(judge_advisor_file())
    token, position = _to_first_trial(engine)
    first = position.step
    assert first.key.endswith(".initial") and not first.advice
    # the final half's items cannot be sent with the first half
    with pytest.raises(AnswerError) as refused:
        engine.submit(
            token,
            first.key,
            {"own_diagnosis_initial": "eczema", "own_diagnosis_initial_confidence": 2, "trust_1": 4},
        )
    assert refused.value.errors["trust_1"].code == "unknown_item"
    entry = _responses(engine)
    assert [step for step, _, _ in entry] == ["entry", "entry"]
    position = engine.submit(
        token, first.key, {"own_diagnosis_initial": "eczema", "own_diagnosis_initial_confidence": 2}
    )
    second = position.step
    assert second.initial_step == first.key and second.advice
    stored = _responses(engine)
    assert len(stored) == len(entry) + 2
    assert (first.key, "own_diagnosis_initial", "eczema") in stored
    assert engine.answers(token, first.key) == {
        "own_diagnosis_initial": "eczema",
        "own_diagnosis_initial_confidence": "2",
    }
    assert engine.answers(token, second.key) == {}  # not passed yet: nothing to show
    # a reload lands on the second half, as the database says
    assert engine.position(token).step.key == second.key

    # crafted submits after the advice: a changed first answer is refused, nothing written
    events_before = _count(engine, Event)
    with pytest.raises(AnswerLocked):
        engine.submit(
            token, first.key, {"own_diagnosis_initial": "psoriasis", "own_diagnosis_initial_confidence": 2}
        )
    with pytest.raises(AnswerLocked):  # the same answer with another confidence is a change too
        engine.submit(
            token, first.key, {"own_diagnosis_initial": "eczema", "own_diagnosis_initial_confidence": 5}
        )
    with pytest.raises(AnswerError) as refused:  # nor can the second half carry it
        engine.submit(token, second.key, {**answers_for(second), "own_diagnosis_initial": "psoriasis"})
    assert refused.value.errors["own_diagnosis_initial"].code == "unknown_item"
    assert _responses(engine) == stored
    assert engine.position(token).step.key == second.key
    with engine.db.read() as session:
        refusals = session.scalars(
            select(Event.detail).where(Event.kind == "submit_refused").order_by(Event.id)
        ).all()
    assert [r["reason"] for r in refusals[-3:]] == ["answer_locked", "answer_locked", "answers"]
    assert _count(engine, Event) == events_before + 3  # only the refusals are logged
    # a double click (the same answers again) is ignored as for every step
    assert (
        engine.submit(
            token, first.key, {"own_diagnosis_initial": "eczema", "own_diagnosis_initial_confidence": 2}
        ).step.key
        == second.key
    )
    assert isinstance(AnswerLocked("x"), StepConflict)  # the app treats it as a stale page

    position = engine.submit(token, second.key, answers_for(second))
    assert position.step.key.endswith(".initial") and position.step.trial_number == 2


def _count(engine, model) -> int:
    with engine.db.read() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_images_enlarged_are_logged_only_where_shown(judge_advisor_file, make_engine):
    engine = make_engine(judge_advisor_file())
    token, position = _to_first_trial(engine)
    first = position.step
    engine.enlarge_image(token, first.key, "case_photo", 1)
    with pytest.raises(EngineError):  # no reference before the advice, whatever the condition
        engine.enlarge_image(token, first.key, "generated", 1)
    with pytest.raises(EngineError):
        engine.enlarge_image(token, first.key, "case_photo", 2)
    with pytest.raises(EngineError):  # not the current step
        engine.enlarge_image(token, "p1.t02", "case_photo", 1)
    second = engine.submit(token, first.key, answers_for(first)).step
    with pytest.raises(EngineError):
        engine.enlarge_image(token, first.key, "case_photo", 1)  # passed
    visual = engine.protocol.condition(second.condition).shows("generated")
    if visual:
        engine.enlarge_image(token, second.key, "generated", 2)
    else:
        with pytest.raises(EngineError):
            engine.enlarge_image(token, second.key, "generated", 1)
    frames = export_frames(engine.db)
    views = frames["image_views"]
    expected = [("case_photo", 1, first.key)] + ([("generated", 2, second.key)] if visual else [])
    assert list(zip(views["image_kind"], views["image"], views["step"], strict=True)) == expected
    assert set(views["condition"]) == {second.condition} and set(views["case_id"]) == {second.case_id}
    assert (frames["events"]["kind"] == "image_enlarge").sum() == len(expected)


def test_bots_export_and_codebook(judge_advisor_file, make_engine):
    engine = make_engine(judge_advisor_file())
    # planted: every bot switches to a correct AI, none to a wrong one
    policy = Policy(own_accuracy=0.5, advice=AdviceTaking(when_ai_correct=1.0, when_ai_wrong=0.0))
    outcomes = simulate(engine, 6, seed=3, policy=policy, progress=False)
    assert all(o.completed for o in outcomes)
    exported = export_frames(engine.db)["responses"]
    responses = exported[exported["case_id"].astype(str) != ""]
    wide = responses.pivot_table(
        index=["participant_id", "case_id"], columns="item", values="value", aggfunc="first"
    )
    ai_correct = responses.groupby(["participant_id", "case_id"])["ai_correct"].first()
    for column in (
        "own_diagnosis_initial",
        "own_diagnosis_initial_confidence",
        "own_diagnosis_initial__correct",
        "own_diagnosis_initial__agrees_ai",
        "own_diagnosis",
        "own_diagnosis__correct",
        "own_diagnosis__agrees_ai",
    ):
        assert wide[column].notna().all(), column
    initial_agrees = wide["own_diagnosis_initial__agrees_ai"].astype(int)
    final_agrees = wide["own_diagnosis__agrees_ai"].astype(int)
    correct_ai = ai_correct.reindex(wide.index).astype(int) == 1
    assert (final_agrees[correct_ai] == 1).all()  # switched to every correct AI
    # kept their own answer whenever the AI was wrong
    assert (wide.loc[~correct_ai, "own_diagnosis"] == wide.loc[~correct_ai, "own_diagnosis_initial"]).all()
    assert (initial_agrees[correct_ai] == 0).any()  # some switches happened at all
    steps = responses.loc[responses["item"] == "own_diagnosis_initial", "step"]
    assert steps.str.endswith(".initial").all()
    codebook = {v.variable: v for v in item_codebook(engine.protocol)}
    assert codebook["own_diagnosis_initial"].label.startswith("Before the AI's advice: ")
    assert codebook["own_diagnosis_initial__correct"].construct == "initial_diagnostic_accuracy"
    assert codebook["own_diagnosis_initial__agrees_ai"].construct == "initial_agreement_with_ai"
    assert codebook["own_diagnosis__agrees_ai"].construct == "agreement_with_ai"
    assert set(exported["item"]) <= set(codebook)


def test_bot_advice_taking_is_validated_and_per_condition():
    with pytest.raises(ValueError, match="when_ai_wrong"):
        AdviceTaking(when_ai_wrong=1.5)
    with pytest.raises(ValueError, match="own_accuracy"):
        Policy(own_accuracy=-0.1)
    policy = Policy(condition_advice={"skingen_visual": AdviceTaking(0.9, 0.6)})
    assert policy.advice_taking("skingen_visual").switches(ai_correct=False) == 0.6
    assert policy.advice_taking("baseline_text") == AdviceTaking()
    assert AdviceTaking().switches(ai_correct=True) == 0.5


# --- the app (AppTest) --------------------------------------------------------------------------------------
@pytest.fixture
def app_study(judge_advisor_file, make_engine, monkeypatch, database_url):
    """A judge–advisor protocol registered in a fresh database, the app pointed at it."""
    path = judge_advisor_file()
    engine = make_engine(path)
    monkeypatch.setenv("SKINGEN_DB_URL", database_url)
    monkeypatch.setenv("SKINGEN_PROTOCOL", str(path))
    return engine


def test_the_app_shows_the_advice_only_after_the_first_answer_is_stored(app_study):
    engine = app_study
    p = AppParticipant({"PROLIFIC_PID": "ja-1"})
    p.consent().advance(value=2).submit()  # consent, entry questions, instructions
    trials = 0
    while p.page != "complete":
        step = p.at.session_state["skingen.visit"].position.step
        if p.page != "trial":
            p.advance()
            continue
        case = engine.loaded.bundle.manifest.case(step.case_id)
        shows = engine.protocol.condition(step.condition).references
        if not step.advice:
            trials += 1
            text = p.text()
            assert "Your own assessment first" in text and f"Case {step.trial_number} of" in text
            assert "**The AI's diagnosis**" not in text and case.ai.text not in text
            assert len(p.images()) == 1  # the case photo, no reference image
            assert [b.label for b in p.at.selectbox] == ["What do you think this skin condition is?"]
            p.answer(diagnosis="eczema").submit()
            stored = engine.answers(p.token, step.key)
            assert stored["own_diagnosis_initial"] == "eczema"
            continue
        text = p.text()
        assert case.ai.text in text and "Your answer before the AI's advice: **Eczema**" in text
        assert len(p.images()) == 1 + (len(case.references) if shows else 0)
        if trials == 1:
            reloaded = p.reload()  # a reload lands on the second half, the first answer still shown
            assert reloaded.step_key == step.key and "before the AI's advice: **Eczema**" in reloaded.text()
            enlarge = [b for b in p.at.button if b.label == "Enlarge"]
            assert len(enlarge) == len(p.images())
            enlarge[-1].click().run()
            p.check()
            assert len(p.images()) == len(enlarge) + 1  # the dialog shows the image once more, large
            with engine.db.read() as session:
                [detail] = session.scalars(select(Event.detail).where(Event.kind == "image_enlarge")).all()
            assert detail == (
                {"image_kind": "generated", "image": len(case.references)}
                if shows
                else {"image_kind": "case_photo", "image": 1}
            )
        p.advance()
    assert trials == 6
    assert "Thank you" in p.text()


# --- the load generator (bench/loadgen): protocol-level participants against `skingen-study serve` --------
def test_loadgen_participants_through_judge_advisor_trials(judge_advisor_file, tmp_path):
    """Three protocol-level participants (one websocket each, as a browser) click through both halves of every
    trial and enlarge an image on each case page: every answer is stored once, every click logged once."""
    import asyncio

    from bench import loadgen, servers

    protocol = judge_advisor_file()
    with servers.app_server("tuned", protocol, tmp_path) as (base, db_url, _):
        plans = lambda _: loadgen.Plan(enlarge=True)  # noqa: E731
        outcomes = asyncio.run(loadgen.crowd(base, 3, (0.0, 0.05), seed=1, fetch_media=False, plans=plans))
        stored, expected, problems = loadgen.verify(db_url, protocol, outcomes)
    assert [e for o in outcomes for e in o.errors] == [] and problems == []
    assert all(o.completed for o in outcomes) and stored == expected > 0
    assert [o.enlarged for o in outcomes] == [12, 12, 12]  # 6 cases × two halves, each with an image


def test_preregistration_and_botpower_follow(judge_advisor_file, protocol_file):
    from study.botpower import construct_items
    from study.prereg import document

    judge_advisor, plain = load_protocol(judge_advisor_file()), load_protocol(protocol_file())
    text = document(judge_advisor.protocol)
    assert "Trials (judge–advisor)" in text and "Schemmer et al. (2023)" in text
    assert "judge–advisor" not in document(plain.protocol)  # today's protocols keep their document
    # the first half asks no Likert item: bots' power populations count the same items per condition
    assert construct_items(judge_advisor, "trust") == construct_items(plain, "trust")


def test_the_live_model_is_advice_too(judge_advisor_file, make_engine):
    """Interactive conditions: no turn with the live model before the first answer is stored."""
    from study.refusals import TurnRefused

    engine = make_engine(judge_advisor_file(conditions__0__interactive=True, conditions__1__interactive=True))
    token, position = _to_first_trial(engine)
    first = position.step
    with pytest.raises(TurnRefused) as refused:
        engine.turn_log.ask(token, first.key, "question", "What is it?", None)
    assert refused.value.code == "before_advice"
    second = engine.submit(token, first.key, answers_for(first)).step
    assert engine.turn_log.ask(token, second.key, "question", "What is it?", None) == 1
