"""Item kinds as one class each (study/items), and the slider — a visual analogue scale — end to end:
protocol → app → database → export/codebook → bots → construct scores."""

from __future__ import annotations

import random
from typing import Literal

import pandas as pd
import pytest
import yaml
from sqlalchemy import select

from db.models import Response
from study.items import KIND_NAMES, KINDS, _complete
from study.items.answers import AnswerProblem
from study.items.base import Item
from study.items.slider import SliderItem
from study.protocol.loading import ProtocolError, load_protocol, parse_protocol
from tests.app_driver import AppParticipant
from tests.factories import example_protocol, write_protocol

VAS = {
    "id": "trust_vas",
    "text": "How much do you trust the AI's diagnosis?",
    "type": "slider",
    "anchors": {"low": "Not at all", "high": "Completely"},
    "construct": "trust_vas",
}


def slider(**changes) -> SliderItem:
    return SliderItem.model_validate({**VAS, **changes})


def with_trial_items(bundle_dir, *items: dict) -> dict:
    """The example protocol, on the test bundle, with ``items`` appended to the trial questionnaire."""
    data = example_protocol()
    data["cases"]["bundle"] = str(bundle_dir)
    data["questionnaires"]["trial"] = [*data["questionnaires"]["trial"], *items]
    return data


# --- the registry -----------------------------------------------------------------------------------------
def test_every_kind_is_registered_once_and_complete():
    assert set(KIND_NAMES) == {
        "likert",
        "single_choice",
        "yes_no",
        "free_text",
        "diagnosis",
        "number",
        "slider",
    }
    assert len(KINDS) == len(KIND_NAMES)


def test_a_kind_without_a_part_fails_at_import_not_at_a_participant():
    class HalfKind(Item):  # no widget, no bot answer, no answer check, no example
        level = "text"
        type: Literal["half"]

    with pytest.raises(TypeError, match=r"HalfKind does not implement \['bot_answer', 'check_answer'"):
        _complete((*KINDS, HalfKind))


def test_two_kinds_with_one_name_fail_at_import():
    class OtherSlider(SliderItem):
        pass

    with pytest.raises(TypeError, match="share type 'slider'"):
        _complete((SliderItem, OtherSlider))


def test_an_unknown_kind_fails_at_protocol_load_with_its_field_path_and_line(bundle_dir, tmp_path):
    data = with_trial_items(bundle_dir, {**VAS, "type": "vas"})
    path = write_protocol(tmp_path, data)
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    index = len(data["questionnaires"]["trial"]) - 1
    line = path.read_text().splitlines().index("  - id: trust_vas") + 1
    (problem,) = info.value.problems
    assert problem.startswith(
        f"questionnaires.trial[{index}] (line {line}): Input tag 'vas' found using 'type'"
    )


def parse_protocol_with(item: dict):
    """Parse the example protocol with ``item`` as its only post-study question."""
    data = example_protocol()
    data["questionnaires"]["post"] = [item]
    return parse_protocol(yaml.safe_dump(data, sort_keys=False))


def test_a_field_of_another_kind_is_refused_by_path():
    with pytest.raises(ProtocolError) as info:
        parse_protocol_with({"id": "q", "text": "Q?", "type": "yes_no", "options": ["a", "b"]})
    assert any(p.startswith("questionnaires.post[0].options (line ") for p in info.value.problems)


# --- the slider's spec ------------------------------------------------------------------------------------
def test_a_protocol_with_a_slider_validates(bundle_dir, tmp_path):
    half = {**VAS, "id": "certainty", "construct": None, "minimum": 0, "maximum": 10, "step": 0.5}
    path = write_protocol(tmp_path, with_trial_items(bundle_dir, VAS, half))
    protocol = load_protocol(path).protocol
    items = protocol.items()
    assert isinstance(items["trust_vas"], SliderItem) and items["trust_vas"].bounds == (0, 100)
    assert items["certainty"].n_steps == 20 and "trust_vas" in protocol.constructs


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"step": 7}, "step", "7 does not divide the range 0..100 into whole steps"),
        ({"step": 0}, "step", "Input should be greater than 0"),
        ({"minimum": 100, "maximum": 50}, "maximum", "must be larger than minimum (100)"),
        ({"anchors": {"low": "Not at all"}}, "anchors.high", "Field required"),
        ({"anchors": None}, "anchors", "Input should be a valid dictionary or instance of SliderAnchors"),
        ({"scale": {"points": 7}}, "scale", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_slider_spec_names_the_field_path_and_line(bundle_dir, tmp_path, changes, field, message):
    data = with_trial_items(bundle_dir, {**VAS, **changes})
    path = write_protocol(tmp_path, data)
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    index = len(data["questionnaires"]["trial"]) - 1
    lines = path.read_text().splitlines()
    start = lines.index("  - id: trust_vas")
    key = field.split(".")[0] + ":"
    line = next(n for n, text in enumerate(lines[start:], start + 1) if text.strip().startswith(key))
    assert info.value.problems == [f"questionnaires.trial[{index}].{field} (line {line}): {message}"]


def test_a_construct_mixing_a_slider_with_likert_items_is_refused(bundle_dir, tmp_path):
    path = write_protocol(tmp_path, with_trial_items(bundle_dir, {**VAS, "construct": "trust"}))
    with pytest.raises(
        ProtocolError, match=r"construct 'trust' averages items on different scales \(trust_1"
    ):
        load_protocol(path)


def test_sliders_cannot_be_attention_checks_and_other_kinds_cannot_be_reverse_keyed():
    with pytest.raises(ValueError, match="attention checks must be coded items"):
        slider(attention_check={"expected": 50})
    with pytest.raises(ProtocolError, match="a number item can't be reverse coded"):
        parse_protocol_with({"id": "n", "text": "N?", "type": "number", "reverse": True})
    assert slider(reverse=True).reverse


# --- answers ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "stored"),
    [(63, ("63", 63.0)), ("63", ("63", 63.0)), (0, ("0", 0.0)), (100.0, ("100", 100.0))],
)
def test_a_slider_answer_is_stored_as_the_number_marked(raw, stored):
    assert slider().check_answer("trust_vas", raw, set()) == stored


def test_a_slider_answer_off_its_steps_or_range_is_refused():
    item = slider(minimum=0, maximum=10, step=0.5)
    assert item.check_answer(item.id, 2.5, set()) == ("2.5", 2.5)
    off = item.check_answer(item.id, 2.4, set())
    assert off == AnswerProblem("off_step", 0, 10, 0.5, got=2.4)
    assert off.message == "must be 0 plus a multiple of 0.5, got 2.4"
    assert item.check_answer(item.id, 11, set()) == AnswerProblem("out_of_range", 0, 10)
    assert item.check_answer(item.id, True, set()).code == "not_a_number"
    assert item.check_answer(item.id, "inf", set()).code == "not_finite"


def test_an_unconfirmed_slider_reads_as_unanswered():
    item = slider()
    state = {"trust_vas": 50}
    assert item.read(state.get) == {"trust_vas": None}
    state = item.widget_values({"trust_vas": 80})
    assert item.read(state.get) == {"trust_vas": 80}


def test_the_codebook_documents_a_sliders_range_and_anchors():
    (variable,) = slider(reverse=True).variables("trial")
    assert (variable.variable, variable.type, variable.scale_min, variable.scale_max) == (
        "trust_vas",
        "numeric",
        0,
        100,
    )
    assert variable.value_labels == "0=Not at all; 100=Completely"
    assert (variable.construct, variable.keying, variable.reverse_coded) == ("trust_vas", "reverse", True)


# --- through the app, the export, the bots, the scores --------------------------------------------------------
@pytest.fixture
def slider_study(bundle_dir, tmp_path, make_engine, monkeypatch, database_url):
    reverse = {**VAS, "id": "distrust_vas", "text": "How much do you doubt it?", "reverse": True}
    path = write_protocol(tmp_path, with_trial_items(bundle_dir, VAS, reverse))
    engine = make_engine(path)
    monkeypatch.setenv("SKINGEN_DB_URL", database_url)
    monkeypatch.setenv("SKINGEN_PROTOCOL", str(path))
    return engine


def test_a_participant_answers_a_slider_in_the_app_and_the_export_carries_it(slider_study):
    from study.export import export_frames

    p = AppParticipant({"PROLIFIC_PID": "vas-1"}).consent().advance().submit()
    assert p.page == "trial" and "How much do you trust the AI's diagnosis?" in p.text()
    assert "Not at all" in p.text() and "Completely" in p.text()
    step = p.step_key
    p.answer(skip=("trust_vas",)).submit()  # the marker shown but not confirmed: no answer
    assert p.step_key == step and "Please answer this question." in p.text()
    p.answer(value=73).submit()
    assert p.step_key != step
    with slider_study.db.read() as session:
        rows = session.execute(select(Response.item_id, Response.value).where(Response.step_key == step))
        stored = dict(rows.all())
    assert stored["trust_vas"] == "73" and stored["distrust_vas"] == "73"

    frames = export_frames(slider_study.db)
    rows = frames["responses"][frames["responses"]["item"] == "trust_vas"]
    assert list(rows["value"]) == ["73"] and list(rows["construct"]) == ["trust_vas"]
    assert (rows["scale_min"].iloc[0], rows["scale_max"].iloc[0]) == (0, 100)
    codebook = frames["codebook"].set_index("variable")
    assert codebook.loc["trust_vas", "type"] == "numeric"
    assert codebook.loc["distrust_vas", "keying"] == "reverse"


def test_bots_answer_sliders_and_scores_average_them(slider_study):
    from analysis.load import from_export
    from analysis.scores import construct_scores, reverse_code, scale_bounds
    from study.export import export_frames
    from study.labelled import wide_table
    from study.path import step_order
    from study.simulate import simulate

    simulate(slider_study, 6, seed=4, progress=False)
    frames = export_frames(slider_study.db)
    responses = frames["responses"]
    vas = responses[responses["item"].isin(["trust_vas", "distrust_vas"])]
    values = vas["value"].astype(float)
    assert len(vas) > 0 and values.between(0, 100).all() and (values % 1 == 0).all()
    assert values.nunique() > 10  # spread over the line, not one default position

    # the analysis' construct score against its definition computed here from the raw answers: the mean over
    # both sliders and every case, the reverse-keyed one as 0 + 100 − x
    bounded, _ = scale_bounds(from_export({"responses": responses}, baseline="baseline_text").responses)
    scores = construct_scores(reverse_code(bounded))
    scores = scores[scores["construct"] == "trust_vas"].set_index(["participant_id", "condition"])["score"]
    keyed = values.where(vas["item"] == "trust_vas", 100 - values)
    expected = vas.assign(x=keyed).groupby(["participant_id", "condition"])["x"].mean()
    assert len(expected) > 0
    pd.testing.assert_series_equal(scores.loc[expected.index], expected, check_names=False)

    # the SPSS/Stata export carries a slider as a number, its anchors as the ends' value labels
    table = wide_table(frames, step_order(slider_study.loaded))
    column = next(name for name, key in table.keys.items() if key.endswith("__trust_vas"))
    assert pd.api.types.is_numeric_dtype(table.frame[column])
    assert table.value_labels[column] == {0: "Not at all", 100: "Completely"}


def test_the_load_generator_fills_a_slider_on_its_steps():
    from bench.loadgen.client import Page, Widget, answer

    page = Page(
        widgets=[
            Widget("slider", "s", "f", "VAS", scale=(0.0, 10.0, 0.5)),
            Widget("checkbox", "c", "f", "ok"),
        ],
        submit=Widget("button", "b", "f", "Next"),
    )
    rng = random.Random(1)
    for _ in range(20):
        slider_state, confirm, _submit = answer(page, rng)
        (value,) = slider_state.double_array_value.data
        assert 0 <= value <= 10 and (value * 2).is_integer() and confirm.bool_value
