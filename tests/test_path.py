"""Participant paths and answer validation, without a database."""

from __future__ import annotations

import pytest

from study.items.answers import AnswerProblem
from study.path import AnswerError, PathCache, participant_path, step_order, validate_answers
from study.protocol.loading import load_protocol
from tests.factories import example_protocol

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


def test_a_path_knows_its_current_step_total_and_order(protocol_file):
    loaded = load_protocol(protocol_file())
    before = participant_path(loaded, None, None)
    assert before.total is None and before.current(1).key == "entry" and before.current(7).key == "entry"
    path = participant_path(loaded, "skingen_visual", 42)
    assert path.total == len(path) == 13 and path.current(99).kind == "complete"
    assert path.current(3).key == "p1.t01" and path.passed(3) == {"consent", "entry", "instructions"}
    paths = PathCache(loaded)
    assert paths("skingen_visual", 42) is paths("skingen_visual", 42) and paths("skingen_visual", 42) == path
    # every key of every arm, in path order: both arms of a between design share their keys
    assert step_order(loaded) == tuple(s.key for s in path)


def test_step_order_merges_arms_with_different_steps(protocol_file):
    """Only the visual arm has a post-block questionnaire here: its key still lands after the trials."""
    items = example_protocol("between")["questionnaires"]["post_block"]
    only_visual = [{**item, "show_in": ["skingen_visual"]} for item in items]
    loaded = load_protocol(
        protocol_file(questionnaires__post_block=only_visual, instruments=[], hypotheses=[])
    )
    assert "p1.post" not in [s.key for s in participant_path(loaded, "baseline_text", 1)]
    order = step_order(loaded)
    assert order.index("p1.t06") < order.index("p1.post") < order.index("post")


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


REQUIRED = ("required", "is required")


@pytest.mark.parametrize(
    ("answers", "errors"),
    [
        (
            {},
            {
                "own_diagnosis": REQUIRED,
                "own_diagnosis_confidence": REQUIRED,
                "trust_1": REQUIRED,
                "comprehension_1": REQUIRED,
            },
        ),
        ({"trust_1": 8}, {"trust_1": ("out_of_range", "must be between 1 and 7, got 8")}),
        ({"trust_1": 0}, {"trust_1": ("out_of_range", "must be between 1 and 7, got 0")}),
        ({"trust_1": "x"}, {"trust_1": ("not_a_whole_number", "must be a whole number 1..7, got 'x'")}),
        ({"trust_1": 2.5}, {"trust_1": ("not_a_whole_number", "must be a whole number 1..7")}),
        ({"trust_1": True}, {"trust_1": ("not_a_whole_number", "must be a whole number 1..7")}),
        (
            {"own_diagnosis": "lupus"},
            {
                "own_diagnosis": (
                    "unknown_condition",
                    "must be one of the bundle's conditions or 'unsure', got 'lupus'",
                )
            },
        ),
        ({"bogus": 1}, {"bogus": ("unknown_item", "is not an item of this step")}),
    ],
)
def test_bad_answers_name_each_item_with_a_code(protocol_file, answers, errors):
    step = trial_step(protocol_file)
    complete = {"own_diagnosis": "unsure", "own_diagnosis_confidence": 3, "trust_1": 4, "comprehension_1": 4}
    given = answers if not answers else {**complete, **answers}
    with pytest.raises(AnswerError) as info:
        validate_answers(step, given, CONDITIONS)
    assert {k: (p.code, p.message) for k, p in info.value.errors.items()} == errors


def test_number_and_text_problems_have_codes():
    from study.items.free_text import FreeTextItem
    from study.items.number import NumberItem
    from study.path import Step

    age = NumberItem(id="age", text="Age?", type="number", minimum=18, maximum=99)
    years = NumberItem(id="years", text="Years in practice?", type="number", minimum=0, required=False)
    note = FreeTextItem(id="note", text="Anything else?", type="free_text", max_length=5, required=False)
    step = Step("s", "questions", "entry", (age, years, note))
    cases = [
        ({"age": 17}, "age", AnswerProblem("out_of_range", 18, 99), "must be between 18 and 99"),
        ({"age": "old"}, "age", AnswerProblem("not_a_number", got="old"), "must be a number, got 'old'"),
        ({"age": "nan"}, "age", AnswerProblem("not_finite"), "must be a finite number"),
        ({"age": 30, "years": -1}, "years", AnswerProblem("out_of_range", 0), "must be at least 0"),
        ({"age": 30, "note": 5}, "note", AnswerProblem("not_text"), "must be text"),
        (
            {"age": 30, "note": "toolong"},
            "note",
            AnswerProblem("too_long", limit=5),
            "is longer than 5 characters",
        ),
    ]
    for answers, field, problem, message in cases:
        with pytest.raises(AnswerError) as info:
            validate_answers(step, answers, CONDITIONS)
        assert info.value.errors == {field: problem} and problem.message == message
        assert message in str(info.value)


def test_optional_free_text(protocol_file):
    loaded = load_protocol(protocol_file())
    post = next(s for s in participant_path(loaded, "baseline_text", 1) if s.key == "post")
    assert validate_answers(post, {"comments": "  "}, CONDITIONS) == []
    with pytest.raises(AnswerError, match="longer than 2000"):
        validate_answers(post, {"comments": "x" * 2001}, CONDITIONS)


def test_yes_no_items_are_coded_zero_one():
    from study.items.yes_no import YesNoItem
    from study.path import Step

    item = YesNoItem(
        id="relevant", text="Clinically relevant?", type="yes_no", attention_check={"expected": 1}
    )
    step = Step("r1", "questions", "rating", (item,))
    assert validate_answers(step, {"relevant": 0}, set())[0].value == "0"
    with pytest.raises(AnswerError, match="must be between 0 and 1, got 2"):
        validate_answers(step, {"relevant": 2}, set())
    assert item.value_labels() == {0: "No", 1: "Yes"}
