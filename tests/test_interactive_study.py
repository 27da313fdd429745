"""An interactive condition as a study condition: turns stored with the trial, refused where not allowed,
exported, in the codebook and the analysis — through the engine, and through the whole app (AppTest)."""

from __future__ import annotations

import random

import pytest

from analysis.document import interaction_blocks
from analysis.load import validate_interactions
from analysis.pipeline import interactions_block
from app.study_command import live_model_note
from study.export import export_frames
from study.refusals import TurnRefused
from study.simulate import Bot, Policy
from tests.app_driver import AppParticipant
from tests.factories import VISUAL, interactive_conditions


def to_trial(engine, token: str, bot: Bot, condition: str):
    """Submit steps with a bot until the participant's current step is a trial under ``condition``."""
    position = engine.position(token)
    while not (position.step.kind == "trial" and position.step.condition == condition):
        assert not position.completed, f"no {condition} trial on this path"
        position = engine.submit(token, position.step.key, bot.answer(position))
    return position


def interactive_participant(engine, seed: int = 0) -> tuple[str, Bot]:
    """A participant who will meet the interactive condition (between: enrol until one is allocated it)."""
    statements = [s.id for s in engine.protocol.consent.statements]
    for attempt in range(20):
        bot = Bot(engine, Policy(), random.Random(f"{seed}:{attempt}"), engine.clock())
        token = engine.consent(statements)
        position = engine.position(token)
        while position.step.kind != "trial":
            position = engine.submit(token, position.step.key, bot.answer(position))
        if VISUAL in {s.condition for s in engine.path_of(token) if s.kind == "trial"}:
            return token, bot
    raise AssertionError("nobody was allocated the interactive condition")


@pytest.mark.parametrize("design", ["between", "within"])
def test_turns_are_limited_stored_exported_and_analysed(protocol_file, make_engine, design) -> None:
    engine = make_engine(protocol_file(design, conditions=interactive_conditions(questions=2)))
    assert "interactive condition(s) skingen_visual" in live_model_note(engine.protocol)
    token, bot = interactive_participant(engine)
    step = to_trial(engine, token, bot, VISUAL).step
    assert [
        engine.turn_log.ask(token, step.key, "question", q, job_id=None) for q in ("Why?", "Does it itch?")
    ] == [
        1,
        2,
    ]
    assert (
        engine.turn_log.ask(token, step.key, "references", "", job_id=None) == 3
    )  # not a question: not limited
    with pytest.raises(TurnRefused) as refused:
        engine.turn_log.ask(token, step.key, "question", "One more?", job_id=None)
    assert refused.value.code == "limit_reached"
    with pytest.raises(TurnRefused, match="current trial") as refused:
        engine.turn_log.ask(token, "post_1", "question", "?", job_id=None)
    assert refused.value.code == "not_current"
    answer = {"condition": "eczema", "model_id": "llava@test", "latency_ms": 120}
    assert engine.turn_log.answer(token, step.key, 1, answer="Maybe eczema.", **answer)
    assert not engine.turn_log.answer(token, step.key, 1, answer="again", **answer)  # completed once
    engine.turn_log.answer(token, step.key, 3, answer="", condition="psoriasis", model_id="sd", latency_ms=900,
                  images=("k1", "k2"))  # fmt: skip

    frames = export_frames(engine.db)
    turns = frames["interactions"]
    assert turns[["turn", "kind", "question", "answer", "mapped_condition"]].values.tolist() == [
        [1, "question", "Why?", "Maybe eczema.", "eczema"],
        [2, "question", "Does it itch?", "", ""],
        [3, "references", "", "", "psoriasis"],
    ]
    assert set(turns["condition"]) == {VISUAL} and set(turns["case_id"]) == {step.case_id}
    assert turns["images"].tolist()[2] == "k1;k2" and turns["answered_at"].tolist()[1] == ""
    assert "interactions.mapped_condition" in set(frames["codebook"]["variable"])
    # what the analysis reads (from CSV: every cell text); nobody answered trials, so no responses to test
    block = interactions_block(validate_interactions(turns.astype(str)), None)
    assert block[VISUAL]["questions"] == 2 and block[VISUAL]["references"] == 1
    assert block[VISUAL]["questions_per_participant"] == 2.0 and block[VISUAL]["median_latency_ms"] == 510.0
    heading, _, (kind, table) = interaction_blocks({"interactions": block})
    assert heading == ("h2", "Interactions with the live model") and kind == "table"
    assert table.iloc[0]["reference requests"] == 1 and table.iloc[0]["answers naming no condition"] == "0%"


def test_a_baseline_trial_takes_no_turns_and_fixed_stimuli_need_no_worker(
    protocol_file, make_engine, tmp_path
) -> None:
    engine = make_engine(protocol_file("within", conditions=interactive_conditions()))
    token, bot = interactive_participant(engine)
    step = to_trial(engine, token, bot, "baseline_text").step
    with pytest.raises(TurnRefused) as refused:
        engine.turn_log.ask(token, step.key, "question", "Why?", job_id=None)
    assert refused.value.code == "not_interactive"
    fixed = make_engine(protocol_file("between"), f"sqlite:///{tmp_path}/fixed.db")
    assert live_model_note(fixed.protocol).startswith("fixed stimuli only")
    assert "interactions" not in export_frames(fixed.db)


@pytest.mark.ml
def test_an_interactive_participant_through_the_whole_app(
    protocol_file, make_engine, monkeypatch, tmp_path, tmp_path_factory
) -> None:
    pytest.importorskip("torch")
    from app.context import live_queue
    from formats.taxonomy import Taxonomy
    from skingen.diagnosis.openai_chat import OpenAIChatDiagnoser
    from skingen.generation import ReferenceGenerator
    from skingen.serving import GenerationSettings, ModelServer
    from skingen.worker import Worker
    from tests.chat_server import ChatServer
    from tests.skingen_fixtures import tiny_models

    path = protocol_file("within", conditions=interactive_conditions(questions=1, references=2))
    url = f"sqlite:///{tmp_path}/interactive.db"
    engine = make_engine(path, url)
    monkeypatch.setenv("SKINGEN_DB_URL", url)
    monkeypatch.setenv("SKINGEN_PROTOCOL", str(path))
    taxonomy = Taxonomy.load()
    generator = ReferenceGenerator.from_pretrained(str(tiny_models(tmp_path_factory).sd), device="cpu")
    with ChatServer(default="It may be eczema as well.") as chat:
        server = ModelServer(
            taxonomy,
            diagnoser=OpenAIChatDiagnoser(chat.url, "llava", taxonomy, timeout=5),
            generator=generator,
            settings=GenerationSettings(steps=2, width=64, height=64),
        )
        worker = Worker(live_queue(), server.handlers(), name="w")
        p = AppParticipant().consent()
        interactive_trials = 0
        while p.page != "complete":
            step = p.at.session_state["skingen.visit"].position.step
            if p.page == "trial" and step.condition == VISUAL:
                interactive_trials += 1
                assert "You can ask 1 more question about this case." in p.text()
                p.at.chat_input[0].set_value("What else could it be?").run()
                assert worker.run_once() == 1
                p.at.button(key=f"show:{step.key}").click().run()
                assert worker.run_once() == 1
                p = p.reload()  # the turns come back from the database
                p.at.run()
                assert "It may be eczema as well." in p.text() and "**Eczema**" in p.text()
                assert not p.at.chat_input  # the one question is used
                captions = [c for image in p.images() for c in image.captions]
                case = engine.loaded.bundle.manifest.case(step.case_id)
                assert captions.count(f"AI-generated: {taxonomy.display_name(case.ai.skin_condition)}") == 2
                sent = chat.requests[-1]["messages"]
                assert sent[1]["content"].startswith("Diagnosis: ")  # the case's own AI output comes first
            elif p.page == "trial":
                assert not p.at.chat_input and "Ask the AI" not in p.text()
            p.advance()
    assert interactive_trials
    turns = export_frames(engine.db)["interactions"]
    assert len(turns) == 2 * interactive_trials
    assert (turns["kind"] == "question").sum() == interactive_trials
    assert set(turns.loc[turns["kind"] == "question", "mapped_condition"]) == {"eczema"}
    images = turns.loc[turns["kind"] == "references", "images"]
    assert all(len(keys.split(";")) == 2 for keys in images)
    assert set(turns["model_id"]) == {f"llava@{chat.url}", str(tiny_models(tmp_path_factory).sd)}


def test_a_withdrawal_removes_the_participants_turns(protocol_file, make_engine) -> None:
    from sqlalchemy import func, select

    from db.models import InteractionTurn
    from study.data_rights import withdraw

    engine = make_engine(protocol_file("between", conditions=interactive_conditions()))
    token, bot = interactive_participant(engine)
    step = to_trial(engine, token, bot, VISUAL).step
    engine.turn_log.ask(
        token, step.key, "question", "My neighbour Ann has this too: is it contagious?", job_id=None
    )
    withdraw(engine, token=token)
    with engine.db.read() as session:
        assert session.scalar(select(func.count()).select_from(InteractionTurn)) == 0
    turns = export_frames(engine.db).get("interactions")
    assert turns is None or "Ann" not in turns.to_csv()
