"""Participant paths and answer validation, without a database."""

from __future__ import annotations

import pytest

from study.flow import AnswerError, participant_path, validate_answers
from study.protocol import load_protocol

CONDITIONS = {"psoriasis", "eczema", "acne", "vitiligo"}


def test_between_path_order(protocol_file):
    loaded = load_protocol(protocol_file())
    assert [s.key for s in participant_path(loaded, None, None)] == ["consent", "entry"]
    path = participant_path(loaded, "skingen_visual", 42)
    keys = [s.key for s in path]
    assert keys[:3] == ["consent", "entry", "instructions"]
    assert keys[3:9] == [f"p1.t{i:02d}" for i in range(1, 7)]
    assert keys[9:] == ["p1.post", "post", "debrief", "complete"]
    trials = [s for s in path if s.kind == "trial"]
    assert sorted(s.case_id for s in trials) == sorted(loaded.case_ids())
    assert [s.trial_number for s in trials] == list(range(1, 7)) and {s.trials_total for s in trials} == {6}
    assert {s.condition for s in trials} == {"skingen_visual"}
    # show_in: the image-usefulness item only appears under the visual condition
    post_block = {s.key: s for s in path}["p1.post"]
    assert "images_helpful" in [i.id for i in post_block.items]
    baseline_post = {s.key: s for s in participant_path(loaded, "baseline_text", 42)}["p1.post"]
    assert "images_helpful" not in [i.id for i in baseline_post.items]


def test_within_path_has_two_periods_with_both_conditions(protocol_file):
    loaded = load_protocol(protocol_file("within"))
    path = participant_path(loaded, "S3", 5)
    trials = [s for s in path if s.kind == "trial"]
    assert [s.period for s in trials] == [1, 1, 1, 2, 2, 2]
    assert [s.condition for s in trials][::3] == ["skingen_visual", "baseline_text"]
    assert [s.key for s in path if s.section == "post_block"] == ["p1.post", "p2.post"]
    assert len({s.case_id for s in trials}) == 6


def trial_step(protocol_file):
    loaded = load_protocol(protocol_file())
    return next(s for s in participant_path(loaded, "baseline_text", 1) if s.kind == "trial")


def test_valid_answers_are_coded(protocol_file):
    step = trial_step(protocol_file)
    answers = validate_answers(
        step,
        {"own_diagnosis": "eczema", "own_diagnosis_confidence": "4", "trust_1": 7, "comprehension_1": 1},
        CONDITIONS,
    )
    assert {(a.item, a.value, a.number) for a in answers} == {
        ("own_diagnosis", "eczema", None),
        ("own_diagnosis_confidence", "4", 4.0),
        ("trust_1", "7", 7.0),
        ("comprehension_1", "1", 1.0),
    }


@pytest.mark.parametrize(
    ("answers", "errors"),
    [
        (
            {},
            {
                "own_diagnosis": "is required",
                "own_diagnosis_confidence": "is required",
                "trust_1": "is required",
                "comprehension_1": "is required",
            },
        ),
        ({"trust_1": 8}, {"trust_1": "must be between 1 and 7, got 8"}),
        ({"trust_1": 0}, {"trust_1": "must be between 1 and 7, got 0"}),
        ({"trust_1": "x"}, {"trust_1": "must be a whole number 1..7, got 'x'"}),
        ({"trust_1": 2.5}, {"trust_1": "must be a whole number 1..7"}),
        ({"trust_1": True}, {"trust_1": "must be a whole number 1..7"}),
        (
            {"own_diagnosis": "lupus"},
            {"own_diagnosis": "must be one of the bundle's conditions or 'unsure', got 'lupus'"},
        ),
        ({"bogus": 1}, {"bogus": "is not an item of this step"}),
    ],
)
def test_bad_answers_name_each_item(protocol_file, answers, errors):
    step = trial_step(protocol_file)
    complete = {"own_diagnosis": "unsure", "own_diagnosis_confidence": 3, "trust_1": 4, "comprehension_1": 4}
    given = answers if not answers else {**complete, **answers}
    with pytest.raises(AnswerError) as info:
        validate_answers(step, given, CONDITIONS)
    assert info.value.errors == errors


def test_optional_free_text(protocol_file):
    loaded = load_protocol(protocol_file())
    post = next(s for s in participant_path(loaded, "baseline_text", 1) if s.key == "post")
    assert validate_answers(post, {"comments": "  "}, CONDITIONS) == []
    with pytest.raises(AnswerError, match="longer than 2000"):
        validate_answers(post, {"comments": "x" * 2001}, CONDITIONS)


def test_yes_no_items_are_coded_zero_one():
    from study.flow import Step
    from study.protocol import Item

    item = Item(id="relevant", text="Clinically relevant?", type="yes_no", attention_check={"expected": 1})
    step = Step("r1", "questions", "rating", (item,))
    assert validate_answers(step, {"relevant": 0}, set())[0].value == "0"
    with pytest.raises(AnswerError, match="must be between 0 and 1, got 2"):
        validate_answers(step, {"relevant": 2}, set())
    assert item.value_labels() == {0: "No", 1: "Yes"}
