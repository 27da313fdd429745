"""Published instruments: every shipped file validates and expands into protocol items; scoring by the published
rules (SUS worked examples, reverse keying, raw TLX, SCS, missing-item rules); norms; the CLI; adaptation."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.instruments import place_in_norms, score
from app.study_command import main
from study.codebook import codebook
from study.instruments import instrument_ids, load_instrument
from study.protocol.loading import ProtocolError, load_protocol
from tests.factories import use_of


def test_the_issue_s_instruments_are_shipped():
    assert set(instrument_ids()) >= {
        "explanation_satisfaction",
        "trust_in_automation",
        "system_causability",
        "sus",
        "nasa_tlx_raw",
    }


@pytest.mark.parametrize("instrument_id", instrument_ids())
def test_each_shipped_instrument_validates_and_expands(protocol_file, instrument_id):
    instrument = load_instrument(instrument_id)
    assert instrument.citation and instrument.licence and instrument.wording_source
    assert instrument.is_template == (instrument.obtain is not None)
    protocol = load_protocol(
        protocol_file("within", hypotheses=[], instruments=[use_of(instrument_id)])
    ).protocol
    items = [i for i in protocol.questionnaires.post_block if i.instrument]
    assert [i.instrument.key for i in items] == [i.key for i in instrument.items]
    assert all(i.construct == instrument_id and i.scale.points == instrument.scale.points for i in items)
    assert all("{" not in i.text for i in items), "placeholders are filled"
    lo, hi = instrument.scoring.range
    matrix = pd.DataFrame([[1] * len(items), [instrument.scale.points] * len(items)], dtype=float)
    scored = score(matrix, pd.Series({**instrument.scoring.model_dump(), "n_items": len(items)}))["score"]
    assert lo <= scored.min() and scored.max() <= hi


def sus_rule() -> pd.Series:
    return pd.Series(load_instrument("sus").scoring.model_dump())


def keyed(answers: list[int], instrument_id: str) -> pd.DataFrame:
    """Raw answers → keyed answers, as analysis.scores.reverse_code does from the export's reverse_coded."""
    instrument = load_instrument(instrument_id)
    points = instrument.scale.points
    values = [
        points + 1 - a if item.reverse else a for a, item in zip(answers, instrument.items, strict=True)
    ]
    return pd.DataFrame([values], dtype=float)


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ([5, 1, 5, 1, 5, 1, 5, 1, 5, 1], 100.0),  # best answer on every item
        ([1, 5, 1, 5, 1, 5, 1, 5, 1, 5], 0.0),
        ([3] * 10, 50.0),
        # contributions 3,3,3,4,3,3,4,4,3,3 = 33 → 33 × 2.5 (Brooke 1996's rule, by hand)
        ([4, 2, 4, 1, 4, 2, 5, 1, 4, 2], 82.5),
    ],
)
def test_sus_scores_by_brookes_rule(answers, expected):
    assert score(keyed(answers, "sus"), sus_rule())["score"].iloc[0] == pytest.approx(expected)


def test_sus_reverse_keys_the_even_items_and_needs_every_item():
    sus = load_instrument("sus")
    assert [i.reverse for i in sus.items] == [False, True] * 5
    missing = keyed([4, 2, 4, 1, 4, 2, 5, 1, 4, 2], "sus")
    missing.iloc[0, 3] = float("nan")
    assert score(missing, sus_rule())["score"].isna().all(), "max_missing 0: not scored"


def test_jian_trust_reverse_keys_the_distrust_items_and_allows_two_missing():
    jian = load_instrument("trust_in_automation")
    assert [i.reverse for i in jian.items] == [True] * 5 + [False] * 7
    assert jian.subscales == {
        "distrust": ("1", "2", "3", "4", "5"),
        "trust": tuple(str(k) for k in range(6, 13)),
    }
    rule = pd.Series(jian.scoring.model_dump())
    # total distrust (7 on items 1–5) and no trust (1 on 6–12) is the lowest trust: mean 1
    assert score(keyed([7] * 5 + [1] * 7, "trust_in_automation"), rule)["score"].iloc[0] == 1.0
    two_missing = keyed([1] * 5 + [7] * 7, "trust_in_automation")
    two_missing.iloc[0, [0, 6]] = float("nan")
    assert score(two_missing, rule)["score"].iloc[0] == 7.0
    two_missing.iloc[0, 7] = float("nan")
    assert score(two_missing, rule)["score"].isna().all()


def test_raw_tlx_is_the_mean_of_six_subscales_on_0_to_100():
    tlx = load_instrument("nasa_tlx_raw")
    assert len(tlx.subscales) == 6 and tlx.scale.points == 21
    rule = pd.Series(tlx.scoring.model_dump())
    # points 1..21 ↔ 0..100 in steps of 5: 11 → 50, 21 → 100, 1 → 0, 5 → 20, 15 → 70, 9 → 40; mean 46.67
    matrix = pd.DataFrame([[11, 21, 1, 5, 15, 9]], dtype=float)
    assert score(matrix, rule)["score"].iloc[0] == pytest.approx((50 + 100 + 0 + 20 + 70 + 40) / 6)
    assert tlx.item("performance").anchors == {1: "Perfect", 21: "Failure"}


def test_scs_is_the_sum_over_50():
    rule = pd.Series(load_instrument("system_causability").scoring.model_dump())
    matrix = pd.DataFrame([[5, 4, 3, 5, 4, 3, 5, 4, 3, 4]], dtype=float)
    assert score(matrix, rule)["score"].iloc[0] == pytest.approx(40 / 50)


def test_a_sum_over_kept_items_is_prorated_to_the_published_count():
    rule = sus_rule()
    nine = keyed([4, 2, 4, 1, 4, 2, 5, 1, 4, 2], "sus").drop(columns=[9])  # item 10 dropped by adaptation
    assert score(nine, rule, n_items=10)["score"].iloc[0] == pytest.approx(2.5 * 30 * 10 / 9)


def test_sus_against_published_norms():
    norms = load_instrument("sus").norms.model_dump()
    assert place_in_norms(68.0, norms) == {
        "score": 68.0,
        "grade": "C",
        "adjective": "Good",
        "percentile": pytest.approx(50.0),
    }
    assert place_in_norms(85.0, norms)["grade"] == "A+"
    assert place_in_norms(40.0, norms)["grade"] == "F" and place_in_norms(40.0, norms)["adjective"] == "Poor"


def test_adaptation_is_explicit_and_reported_in_the_codebook(protocol_file):
    adapt = {
        "wording": {"8": "I found the {system} very awkward to use."},
        "drop": ["10"],
        "reason": "non-native",
    }
    protocol = load_protocol(
        protocol_file("within", hypotheses=[], instruments=[use_of("sus", adapt=adapt)])
    ).protocol
    variables = {v.variable: v for v in codebook(protocol)}
    assert "sus_10" not in variables
    assert (
        variables["sus_8"].adapted and variables["sus_8"].label == "I found the {system} very awkward to use."
    )
    assert not variables["sus_1"].adapted and variables["sus_1"].instrument == "sus"
    assert (variables["sus_2"].keying, variables["sus_1"].keying) == ("reverse", "forward")
    assert variables["trust_1"].instrument == "" and variables["trust_3"].keying == "reverse"


def test_protocol_errors_name_the_instrument_field(protocol_file):
    with pytest.raises(ProtocolError) as info:
        load_protocol(
            protocol_file(
                "within",
                hypotheses=[],
                instruments=[
                    {"id": "nope", "show": "post_block"},
                    {"id": "trust_in_automation", "show": "post_block"},
                    {"id": "explanation_satisfaction", "show": "post_block"},
                    {"id": "sus", "show": "post_block", "adapt": {"drop": ["11"], "reason": "r"}},
                    {"id": "sus", "show": "middle"},
                ],
            )
        )
    problems = info.value.problems
    assert problems[0].startswith("instruments[0].id") and "shipped: " in problems[0]
    assert problems[1].startswith("instruments[1]") and "wording:" in problems[1] and "Jian" in problems[1]
    assert problems[2].startswith("instruments[2]") and "fill:" in problems[2]
    assert problems[3].startswith("instruments[3]") and "adapt.drop: ['11']" in problems[3]
    assert problems[4].startswith("instruments[4].show")


def test_the_same_instrument_twice_needs_a_prefix(protocol_file):
    with pytest.raises(ProtocolError, match=r"item id 'sus_1' is used twice \(by instrument sus"):
        load_protocol(
            protocol_file("within", hypotheses=[], instruments=[use_of("sus"), use_of("sus", show="post")])
        )
    protocol = load_protocol(
        protocol_file(
            "within", hypotheses=[], instruments=[use_of("sus"), use_of("sus", show="post", prefix="sus_end")]
        )
    ).protocol
    assert [i.id for i in protocol.questionnaires.post][-1] == "sus_end_10"


def test_cli_lists_and_shows_instruments(capsys):
    assert main(["instruments"]) == 0
    out = capsys.readouterr().out
    assert all(i in out for i in instrument_ids()) and "Brooke (1996)" in out
    assert main(["instruments", "show", "sus"]) == 0
    out = capsys.readouterr().out
    assert "I thought the system was easy to use." in out and "reverse keyed" in out and "A+ ≥ 84.1" in out
    assert main(["instruments", "show", "trust_in_automation"]) == 0
    assert "(wording not shipped)" in capsys.readouterr().out
    assert main(["instruments", "show", "nope"]) == 2
    assert "shipped:" in capsys.readouterr().err
