"""Reliance metrics (analysis/reliance.py) against values computed by hand on a small fixed table, and against
bots whose advice-taking is known."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from analysis.load import validate_responses
from analysis.reliance import condition_summary, definitions, participant_metrics, reliance_trials

# The fixed table: one row per trial. ai: the AI was right (1) or wrong (0); first/final: (correct, agrees with
# the AI) of the answer before / after the advice; confidence before → after. Consistency: where the AI is
# right, agreeing with it is being right; where it is wrong, agreeing with it is being wrong.
#            participant  condition  case  ai  first   final   conf
TABLE = [
    ("P1", "A", "c1", 1, (0, 0), (1, 1), (2, 4)),  # wrong first, followed a right AI
    ("P1", "A", "c2", 1, (0, 0), (0, 0), (3, 3)),  # wrong first, ignored a right AI
    ("P1", "A", "c3", 1, (1, 1), (1, 1), (4, 5)),  # agreed with a right AI all along
    ("P1", "A", "c4", 0, (1, 0), (1, 0), (4, 4)),  # right first, kept it against a wrong AI
    ("P1", "A", "c5", 0, (1, 0), (0, 1), (3, 2)),  # right first, followed a wrong AI
    ("P1", "A", "c6", 0, (0, 1), (0, 1), (2, 3)),  # agreed with a wrong AI all along
    ("P2", "B", "c1", 1, (0, 0), (1, 1), (1, 3)),
    ("P2", "B", "c2", 1, (0, 0), (1, 1), (2, 4)),
    ("P2", "B", "c4", 0, (1, 0), (1, 0), (5, 5)),
    ("P2", "B", "c5", 0, (0, 0), (0, 1), (2, 2)),  # wrong first, switched to a (differently) wrong AI
    ("P3", "B", "c1", 1, (0, 0), (0, 0), (3, 2)),
    ("P3", "B", "c4", 0, (1, 0), (1, 0), (4, 5)),
]

# By hand, per participant (all trials):
#   P1: accuracy before (0+0+1+1+1+0)/6 = 1/2; after (1+0+1+1+0+0)/6 = 1/2; agreement before 2/6, after 4/6;
#       switch rate: first ≠ AI in c1 c2 c4 c5, final = AI in c1 c5 → 2/4; over-reliance: AI wrong c4 c5 c6,
#       final = AI in c5 c6 → 2/3; under-reliance: AI right c1 c2 c3, final ≠ AI in c2 → 1/3;
#       RAIR: first wrong & AI right c1 c2, final = AI in c1 → 1/2; RSR: first right & AI wrong c4 c5, final
#       right in c4 → 1/2; confidence change (2+0+1+0−1+1)/6 = 1/2.
#   P2: accuracy before 1/4, after 3/4; switch 3/4 (c1 c2 c5 of all four); over-reliance 1/2 (c5 of c4 c5);
#       under-reliance 0/2; RAIR 2/2; RSR 1/1; confidence change (2+2+0+0)/4 = 1.
#   P3: accuracy before 1/2, after 1/2; switch 0/2; over-reliance 0/1; under-reliance 1/1; RAIR 0/1; RSR 1/1;
#       confidence change (−1+1)/2 = 0.
HAND = {
    ("P1", "accuracy_before"): 1 / 2,
    ("P1", "accuracy"): 1 / 2,
    ("P1", "agreement_before"): 2 / 6,
    ("P1", "agreement"): 4 / 6,
    ("P1", "switch_rate"): 2 / 4,
    ("P1", "over_reliance"): 2 / 3,
    ("P1", "under_reliance"): 1 / 3,
    ("P1", "rair"): 1 / 2,
    ("P1", "rsr"): 1 / 2,
    ("P1", "confidence_change"): 1 / 2,
    ("P2", "accuracy_before"): 1 / 4,
    ("P2", "accuracy"): 3 / 4,
    ("P2", "switch_rate"): 3 / 4,
    ("P2", "over_reliance"): 1 / 2,
    ("P2", "under_reliance"): 0.0,
    ("P2", "rair"): 1.0,
    ("P2", "rsr"): 1.0,
    ("P2", "confidence_change"): 1.0,
    ("P3", "accuracy"): 1 / 2,
    ("P3", "switch_rate"): 0.0,
    ("P3", "over_reliance"): 0.0,
    ("P3", "under_reliance"): 1.0,
    ("P3", "rair"): 0.0,
    ("P3", "rsr"): 1.0,
    ("P3", "confidence_change"): 0.0,
}


def _rows(judge_advisor: bool) -> list[dict]:
    """The table in the export's long format (responses.csv), as text, as the analysis reads it."""
    rows = []
    for participant, condition, case, ai, first, final, confidence in TABLE:
        base = {"participant_id": participant, "condition": condition, "case_id": case, "ai_correct": ai}
        answers = [
            ("dx", "psoriasis", ""),
            ("dx_confidence", confidence[1], ""),
            ("dx__correct", final[0], "diagnostic_accuracy"),
            ("dx__agrees_ai", final[1], "agreement_with_ai"),
        ]
        if judge_advisor:
            answers += [
                ("dx_initial", "eczema", ""),
                ("dx_initial_confidence", confidence[0], ""),
                ("dx_initial__correct", first[0], "initial_diagnostic_accuracy"),
                ("dx_initial__agrees_ai", first[1], "initial_agreement_with_ai"),
            ]
        answers.append(("trust_1", 5, "trust"))  # other items are no trials' outcomes
        for item, value, construct in answers:
            rows.append({**base, "item": item, "value": str(value), "construct": construct})
    rows.append({"participant_id": "P1", "condition": "", "case_id": "", "ai_correct": "", "item": "age",
                 "value": "2", "construct": ""})  # fmt: skip
    return rows


def _responses(judge_advisor: bool = True) -> pd.DataFrame:
    frame = pd.DataFrame(_rows(judge_advisor))
    for column in ("stratum", "arm", "sequence", "period", "step", "instrument", "subscale", "shown_at",
                   "submitted_at", "rt_ms", "scale_min", "scale_max", "reverse_coded", "attention_check"):  # fmt: skip
        frame[column] = ""
    return validate_responses(frame.astype(str))


def test_metrics_equal_the_hand_computation():
    trials = reliance_trials(_responses())
    assert len(trials) == len(TABLE)
    per = participant_metrics(trials)
    overall = per[per["ai"] == "all"].set_index(["participant_id", "metric"])["value"]
    for key, expected in HAND.items():
        assert overall[key] == pytest.approx(expected), key
    # undefined, not zero: P2 and P3 never had a right first answer against a right AI … and so on
    wrong = per[per["ai"] == "wrong"].set_index(["participant_id", "metric"])
    assert ("P1", "rair") not in wrong.index  # no right AI among wrong-AI trials
    assert wrong.loc[("P1", "accuracy_before"), "value"] == pytest.approx(2 / 3)  # c4 c5 c6: 1 1 0
    assert wrong.loc[("P1", "rsr"), "value"] == pytest.approx(1 / 2)
    right = per[per["ai"] == "correct"].set_index(["participant_id", "metric"])
    assert right.loc[("P2", "rair"), "n_trials"] == 2
    assert right.loc[("P1", "agreement"), "value"] == pytest.approx(2 / 3)  # c1 c3 of c1 c2 c3


def test_condition_summary_is_the_mean_of_participants_with_a_t_interval():
    per = participant_metrics(reliance_trials(_responses()))
    summary = {(r["metric"], r["ai"], r["condition"]): r for r in condition_summary(per, 0.95)}
    b = summary[("rair", "all", "B")]
    # RAIR of P2 = 1 and P3 = 0: mean 1/2, SD √((½² + ½²)/1) = √½, half-width t(.975, 1) · SD/√2
    assert (b["n_participants"], b["n_trials"]) == (2, 3)
    assert b["mean"] == pytest.approx(0.5) and b["sd"] == pytest.approx(math.sqrt(0.5))
    assert b["ci"] == pytest.approx(list(stats.t.interval(0.95, 1, loc=0.5, scale=0.5)))
    assert b["ci"][1] == pytest.approx(0.5 + 12.7062047 * 0.5)  # the t table's 12.706
    a = summary[("rsr", "all", "A")]
    assert (a["n_participants"], a["mean"], a["sd"], a["ci"]) == (1, 0.5, None, None)


def test_without_first_answers_only_the_final_metrics():
    trials = reliance_trials(_responses(judge_advisor=False))
    assert trials["initial_correct"].isna().all()
    per = participant_metrics(trials)
    assert set(per["metric"]) == {"accuracy", "agreement", "over_reliance", "under_reliance"}
    overall = per[per["ai"] == "all"].set_index(["participant_id", "metric"])["value"]
    for key in [k for k in HAND if k[1] in set(per["metric"])]:
        assert overall[key] == pytest.approx(HAND[key]), key
    assert set(definitions(False)) == set(per["metric"])
    assert {"rair", "rsr", "switch_rate"} <= set(definitions(True))


@pytest.mark.parametrize(("when_right", "when_wrong"), [(1.0, 0.0), (0.6, 0.3)])
def test_bots_with_known_advice_taking(protocol_file, make_engine, when_right, when_wrong):
    """Bots switch to a right AI with probability p and to a wrong one with q (study.simulate.AdviceTaking):
    their first answer always differs from the AI where RAIR and RSR count, so RAIR estimates p and RSR
    estimates 1 − q (exactly, for p = 1 and q = 0)."""
    from study.export import export_frames
    from study.simulate import AdviceTaking, Policy, simulate

    engine = make_engine(protocol_file(trial={"advice": "after_initial"}))
    policy = Policy(own_accuracy=0.5, advice=AdviceTaking(when_right, when_wrong))
    simulate(engine, 20, seed=11, policy=policy, progress=False)
    responses = export_frames(engine.db)["responses"]
    trials = reliance_trials(validate_responses(responses.astype(str)))
    pooled = {}
    for name, among, outcome in (
        ("rair", (trials["initial_correct"] == 0) & (trials["ai_correct"] == 1), "final_agrees"),
        ("rsr", (trials["initial_correct"] == 1) & (trials["ai_correct"] == 0), "final_correct"),
    ):
        pooled[name] = (trials.loc[among, outcome].mean(), among.sum())
    for name, truth in (("rair", when_right), ("rsr", 1 - when_wrong)):
        estimate, n = pooled[name]
        se = math.sqrt(max(truth * (1 - truth), 1e-12) / n)
        assert abs(estimate - truth) <= 4 * se + 1e-12, (name, estimate, truth, n)
    per = participant_metrics(trials)
    if when_right == 1.0:
        assert (per.loc[per["metric"].isin(["rair", "rsr"]), "value"] == 1).all()
        assert (per.loc[per["metric"] == "under_reliance", "value"] == 0).all()


def test_mixed_models_find_a_planted_over_reliance(protocol_file, tmp_path):
    """Bots under the visual condition switch to a wrong AI far more often (0.8 vs 0.2): the logistic mixed
    model's agreement and switch contrasts where the AI was wrong are positive and significant, where it was
    right (same advice-taking in both arms) they are not; the report says so, model by model."""
    from analysis.document_reliance import reliance_blocks
    from analysis.load import from_export
    from analysis.reliance import reliance_block
    from db.session import Database
    from study.engine import StudyEngine
    from study.export import export_frames
    from study.protocol.loading import load_protocol
    from study.registry import register
    from study.simulate import AdviceTaking, Policy, simulate

    path = protocol_file(trial={"advice": "after_initial"})
    db = Database(f"sqlite:///{tmp_path}/bots.db")
    register(db, load_protocol(path))
    # (not 0 or 1: a condition × AI-correctness cell of only 0s or 1s separates, and the model refuses it)
    advice = {"baseline_text": AdviceTaking(0.5, 0.2), "skingen_visual": AdviceTaking(0.5, 0.8)}
    simulate(
        StudyEngine.open(db, str(path)), 30, seed=1, policy=Policy(condition_advice=advice), progress=False
    )
    data = from_export(export_frames(db))
    block = reliance_block(data.responses, 0.95, data.conditions)
    wrong = "skingen_visual - baseline_text | ai_wrong=1"
    for metric in ("agreement", "switch_rate"):
        fit = block["models"][metric]
        assert "error" not in fit, fit.get("error")
        assert fit["family"] == "binomial" and fit["n_participants"] >= 25  # those with such trials
        assert fit["contrasts"][wrong]["estimate"] > 0 and fit["contrasts"][wrong]["p"] < 0.01, metric
    assert (
        "accuracy_before" in block["models"]
        and "condition[skingen_visual]:ai_wrong" in block["models"]["agreement"]["terms"]
    )
    text = str(reliance_blocks({"reliance": block, "confidence": 0.95}))
    assert "Agreement with the AI, skingen_visual − baseline_text where the AI was wrong: log-odds" in text


def test_without_judge_advisor_trials_accuracy_and_agreement_are_still_modelled(protocol_file, tmp_path):
    from analysis.load import from_export
    from analysis.reliance import reliance_block
    from db.session import Database
    from study.engine import StudyEngine
    from study.export import export_frames
    from study.protocol.loading import load_protocol
    from study.registry import register

    path = protocol_file()  # today's protocols: the advice comes with the case
    db = Database(f"sqlite:///{tmp_path}/bots.db")
    register(db, load_protocol(path))
    from study.simulate import simulate

    simulate(StudyEngine.open(db, str(path)), 12, seed=2, progress=False)
    data = from_export(export_frames(db))
    block = reliance_block(data.responses, 0.95, data.conditions)
    assert not block["judge_advisor"] and set(block["models"]) == {"accuracy", "agreement"}
    for fit in block["models"].values():
        assert "error" in fit or set(fit["contrasts"]) == {
            "skingen_visual - baseline_text | ai_wrong=0",
            "skingen_visual - baseline_text | ai_wrong=1",
        }
