"""Preregistration: the document and its stable hash, `init` storing it, and a study on instruments through
bots, export, codebook and the report — confirmatory tests in the declared direction, deviations stated."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from app.analysis_command import main as analysis_main
from app.study_command import main
from study import prereg
from study.protocol.loading import ProtocolError, load_protocol
from tests.factories import use_of

# R's hand TOST with t.test on the sleep data (tests/data/r/bayes_tost.R)
REF = json.loads((Path(__file__).parent / "data" / "r" / "bayes_tost.json").read_text(encoding="utf-8"))

HYPOTHESES = [
    {
        "id": "H1",
        "construct": "sus",
        "comparison": ["skingen_visual", "baseline_text"],
        "direction": "greater",
        "statement": "Reference images make the system more usable.",
    },
    {
        "id": "H2",
        "construct": "nasa_tlx_raw",
        "comparison": ["baseline_text", "skingen_visual"],
        "direction": "greater",
        "alpha": 0.05,
    },
]
PLAN = {"correction": "holm", "sample_size": {"participants": 24, "effect": 0.8, "rationale": "pilot"}}


@pytest.fixture
def study_file(protocol_file):
    """A within-subjects protocol on instruments (one adapted, one a template with its wording supplied)."""

    def make(**changes):
        instruments = [
            use_of("sus"),
            use_of("nasa_tlx_raw"),
            use_of(
                "explanation_satisfaction",
                adapt={"drop": ["5"], "reason": "participants do not use the system themselves"},
            ),
            use_of("trust_in_automation", prefix="jian"),
        ]
        sections = {"instruments": instruments, "hypotheses": HYPOTHESES, "preregistration": PLAN}
        return protocol_file("within", **{**sections, **changes})

    return make


def test_the_document_is_stable_and_has_the_template_s_sections(study_file, tmp_path, capsys):
    protocol = load_protocol(study_file()).protocol
    text = prereg.document(protocol)
    again = prereg.document(load_protocol(study_file()).protocol)
    assert text == again and prereg.document_hash(text) == prereg.document_hash(again)
    assert list(prereg.sections(text)) == [
        "1. Hypotheses",
        "2. Design",
        "3. Sampling plan",
        "4. Variables",
        "5. Analysis plan",
        "6. Exclusion criteria",
    ]
    body = prereg.sections(text)
    assert "**H1**: `sus` is higher under" in body["1. Hypotheses"]
    assert "Brooke, J. (1996)" in body["4. Variables"] and "**Adapted**" in body["4. Variables"]
    assert (
        "one-sided (alternative: greater)" in body["5. Analysis plan"] and "Holm" in body["5. Analysis plan"]
    )
    assert "Completion in less than 120 seconds" in body["6. Exclusion criteria"]
    out = tmp_path / "prereg.md"
    assert main(["prereg", str(study_file()), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == text
    digest = prereg.document_hash(text)
    assert (tmp_path / "prereg.md.sha256").read_text() == f"{digest}  prereg.md\n"
    assert digest in capsys.readouterr().out
    assert main(["prereg", str(study_file()), "--out", str(out)]) == 2, "no silent overwrite"


def test_the_power_analysis_plans_for_the_confirmatory_family(study_file):
    text = prereg.sections(prereg.document(load_protocol(study_file()).protocol))["3. Sampling plan"]
    # two one-sided hypotheses, Holm → planned at α .05 / 2: paired d_z 0.8 needs 15 (R power.t.test: 14.30)
    assert "one-sided, α = 0.025 per test (holm: α 0.05 / 2 hypotheses)" in text
    assert "15 participants give 80% power" in text


def test_hypotheses_are_checked_against_the_protocol(study_file):
    bad = [
        {
            "id": "H1",
            "construct": "nope",
            "comparison": ["skingen_visual", "baseline_text"],
            "direction": "less",
        },
        {
            "id": "H2",
            "construct": "trust",
            "comparison": ["skingen_visual", "elsewhere"],
            "direction": "less",
        },
        {
            "id": "H3",
            "construct": "trust",
            "comparison": ["baseline_text", "baseline_text"],
            "direction": "less",
        },
    ]
    with pytest.raises(ProtocolError) as info:
        load_protocol(study_file(hypotheses=bad))
    message = str(info.value)
    assert "hypotheses[0].construct: 'nope' is not measured" in message
    assert "hypotheses[1].comparison: ['elsewhere'] are not conditions" in message
    assert "hypotheses[2].comparison: compare two different conditions" in message


def _run(url: str, path: str, out, *extra: str) -> dict:
    assert main(["export", "--db", url, "--out", str(out / "export"), "--overwrite"]) == 0
    argv = [
        "report",
        "--db",
        url,
        "--out",
        str(out / "report"),
        "--quiet",
        "--no-figures",
        "--bootstrap",
        "0",
    ]
    assert analysis_main([*argv, "--overwrite", *extra]) == 0
    return json.loads((out / "report" / "results.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_a_study_on_instruments_through_bots_export_codebook_and_report(study_file, tmp_path, capsys):
    url, path = f"sqlite:///{tmp_path}/study.db", str(study_file())
    document = tmp_path / "prereg.md"
    assert main(["prereg", path, "--out", str(document)]) == 0
    assert main(["init", "--db", url, "--protocol", path, "--prereg", str(document)]) == 0
    assert prereg.document_hash(document.read_text(encoding="utf-8"))[:12] in capsys.readouterr().out
    bots = [
        "simulate",
        "--db",
        url,
        "-n",
        "24",
        "--seed",
        "3",
        "--quiet",
        "--dropout-rate",
        "0",
        "--attention-fail-rate",
        "0",
    ]
    assert main([*bots, "--effect", "sus=1.5", "--effect", "nasa_tlx_raw=-2"]) == 0

    results = _run(url, path, tmp_path)
    export = tmp_path / "export"
    codebook = pd.read_csv(export / "codebook.csv", keep_default_na=False).set_index("variable")
    assert codebook.loc["sus_2", ["instrument", "keying"]].tolist() == ["sus", "reverse"]
    assert codebook.loc["jian_1", ["instrument", "subscale", "keying"]].tolist() == [
        "trust_in_automation",
        "distrust",
        "reverse",
    ]
    assert "explanation_satisfaction_5" not in codebook.index
    responses = pd.read_csv(export / "responses.csv", keep_default_na=False)
    assert set(responses.loc[responses["item"].str.startswith("nasa_tlx_raw_"), "subscale"]) >= {"effort"}
    instruments = pd.read_csv(export / "instruments.csv", keep_default_na=False).set_index("construct")
    assert instruments.loc["explanation_satisfaction", "adapted"] == 1
    assert "participants do not use" in instruments.loc["explanation_satisfaction", "adaptation"]

    assert results["schema_version"] == 5
    sus = results["instruments"]["sus"]
    assert sus["n_items"] == 10 and sus["alpha"] is not None and not sus["adapted"]
    assert set(sus["norms"]["by_condition"]) == {"baseline_text", "skingen_visual"}
    assert all(0 <= d["mean"] <= 100 for d in sus["descriptives"].values())
    assert results["instruments"]["explanation_satisfaction"]["adapted"]
    assert set(results["instruments"]["jian"]["subscales"]) == {"distrust", "trust"}
    assert set(results["instruments"]["nasa_tlx_raw"]["subscales"]) == {
        "mental_demand",
        "physical_demand",
        "temporal_demand",
        "performance",
        "effort",
        "frustration",
    }
    hypotheses = {h["hypothesis"]: h for h in results["hypotheses"]}
    # the bots planted higher SUS and lower workload under the visual condition: both declared directions
    assert hypotheses["H1"]["supported"] and hypotheses["H1"]["effect_size"]["value"] > 0
    assert hypotheses["H2"]["supported"] and hypotheses["H2"]["mean_first"] > hypotheses["H2"]["mean_second"]
    assert hypotheses["H1"]["correction"] == "holm" and "one-sided" in hypotheses["H1"]["test"]
    assert results["constructs"]["sus"]["analysis"] == "confirmatory"
    assert results["constructs"]["trust"]["analysis"] == "exploratory"
    plan = results["preregistration"]
    assert plan["status"] == "as preregistered" and plan["deviations"] == []
    report = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Preregistration" in report and "No deviations from the plan." in report
    assert "## Instruments" in report and "adapted" in report and "grade" in report

    # The plan changes after preregistration: analysed against the preregistered document, as a deviation.
    changed = study_file(
        study__version="1.1",
        preregistration={**PLAN, "correction": "bonferroni"},
    )
    assert main(["init", "--db", url, "--protocol", str(changed), "--allow-protocol-change"]) == 0
    assert "the analysis report will state it as a deviation" in capsys.readouterr().err
    assert main([*bots, "--seed", "4"]) == 0
    results = _run(url, str(changed), tmp_path)
    plan = results["preregistration"]
    assert plan["status"] == "changed after preregistration"
    assert plan["changed_sections"] == ["3. Sampling plan", "5. Analysis plan"]
    assert any("changed after preregistration" in d for d in plan["deviations"])
    assert any("48 participants analysed, more than the 24 planned" in d for d in plan["deviations"])
    assert results["hypotheses"][0]["correction"] == "bonferroni"
    report = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "Deviations from the plan:" in report and "5. Analysis plan" in report


def test_init_stores_the_plan_and_later_versions_keep_it(study_file, tmp_path):
    from db.session import Database
    from study.registry import register

    db = Database(f"sqlite:///{tmp_path}/r.db")
    first = load_protocol(study_file())
    own = prereg.document_hash(prereg.document(first.protocol))
    assert register(db, first).prereg_hash == own
    second = load_protocol(study_file(study__version="2", preregistration={**PLAN, "correction": "none"}))
    assert register(db, second).prereg_hash == own, "analysed against the plan preregistered first"
    assert register(db, second, prereg_hash="a" * 64).prereg_hash == "a" * 64, "an amended preregistration"
    db.dispose()


def test_a_hypothesis_about_baseline_minus_visual_is_tested_in_its_own_direction():
    from analysis.load import StudyData
    from analysis.plan import confirmatory_tests

    scores = pd.DataFrame(
        {
            "participant_id": [f"P{i}" for i in range(8)] * 2,
            "condition": ["base"] * 8 + ["vis"] * 8,
            "construct": "workload",
            "score": [5, 6, 5, 7, 6, 5, 6, 7, 4, 4, 5, 5, 3, 4, 5, 4],  # base, then vis
        }
    )
    hypotheses = pd.DataFrame(
        [
            {
                "hypothesis": "H1",
                "construct": "workload",
                "first": "base",
                "second": "vis",
                "direction": d,
                "alpha": 0.05,
                "correction": "bonferroni",
                "statement": "",
            }
            for d in ("greater", "less")
        ]
    )
    data = StudyData(
        None, None, None, "within", "base", "vis", conditions=("base", "vis"), hypotheses=hypotheses
    )
    greater, less = confirmatory_tests(scores, data, 0.95)
    assert greater["mean_diff"] > 0 and greater["effect_size"]["value"] > 0
    assert greater["p"] < 0.01 and less["p"] > 0.99 and greater["p"] + less["p"] == pytest.approx(1)
    assert greater["p_adjusted"] == pytest.approx(2 * greater["p"]) and greater["supported"]
    assert not less["supported"]


def test_the_plan_states_the_mixed_model_its_rule_and_how_many_cases(study_file):
    """Per-case items get the crossed mixed model in the analysis plan, with the simplification rule the
    analysis runs (one text: formats.planning.SIMPLIFICATION_RULE) and the cases with their power."""
    from analysis.mixed.structure import SIMPLIFICATION_RULE as RULE_THE_ANALYSIS_RUNS
    from formats.planning import VarianceComponents, case_power

    plan = {
        **PLAN,
        "sample_size": {
            **PLAN["sample_size"],
            "cases": 10,
            "cases_rationale": "the table below: 10 cases reach 70 % at 24 participants",
            "point_effect": 0.6,
            "components": {"case_condition": 0.3},
        },
    }
    protocol = load_protocol(study_file(preregistration=plan)).protocol
    body = prereg.sections(prereg.document(protocol))
    analysis = body["5. Analysis plan"]
    assert "`y ~ condition + (1 + condition | participant) + (1 + condition | case)`" in analysis
    assert f"Simplification rule: {RULE_THE_ANALYSIS_RUNS}" in analysis
    assert "Per-case items (asked on every case: `comprehension`, `trust`)" in analysis
    sampling = body["3. Sampling plan"]
    expected = case_power(
        0.6, 24, 10, "within", VarianceComponents(case_condition=0.3), alpha=0.025, sided="one-sided"
    )
    assert (
        f"Planned cases: 10 per participant; with 24 participants the mixed model has {expected.power:.1%}"
        in sampling
    )
    assert "Number of cases, rationale: the table below" in sampling
    assert "| participants | 6 cases | 10 cases | 20 cases | 40 cases |" in sampling
    with pytest.raises(ProtocolError, match="unknown variance component"):
        load_protocol(
            study_file(
                preregistration={
                    **plan,
                    "sample_size": {**plan["sample_size"], "components": {"stimulus": 1}},
                }
            )
        )


def test_equivalence_hypotheses_need_a_smallest_effect_of_interest(study_file):
    equivalent = {"id": "H3", "construct": "sus", "comparison": ["skingen_visual", "baseline_text"]}
    with pytest.raises(ProtocolError) as info:
        load_protocol(
            study_file(
                hypotheses=[
                    {**equivalent, "direction": "equivalent"},
                    {**equivalent, "id": "H4", "direction": "greater", "sesoi": 0.5},
                ]
            )
        )
    message = str(info.value)
    assert "hypotheses[0].sesoi: direction 'equivalent' needs a smallest effect size of interest" in message
    assert "hypotheses[1].sesoi: only equivalent and non_inferior hypotheses use it" in message
    loaded = load_protocol(
        study_file(
            hypotheses=[
                {**equivalent, "direction": "equivalent", "sesoi": 0.5},
                {**equivalent, "id": "H4", "direction": "non_inferior", "sesoi": 5},
            ]
        )
    )
    text = prereg.document(loaded.protocol)
    assert "the difference lies within ±0.5 construct-score points" in text
    assert "as two one-sided tests (TOST) against −0.5 and +0.5 construct-score points" in text
    assert "non-inferior when the test rejects, i.e. the (1 − 2α) CI's lower bound lies above −5" in text
    assert "Bayes factor BF10 (JZS prior, Cauchy scale r = √2/2" in text


@pytest.mark.parametrize("design", ["within", "between"])
def test_equivalence_hypotheses_are_tested_by_tost_as_r_does(design):
    """The plan's TOST record equals R's hand TOST with t.test (tests/data/r/bayes_tost.R) on the sleep data,
    paired and Welch, whichever condition comes first; the report states what it shows."""
    from analysis.document import hypothesis_sentence, verdict
    from analysis.load import StudyData
    from analysis.plan import confirmatory_tests

    vis, base = REF["data"]["visual"], REF["data"]["baseline"]
    ids = [f"P{i}" for i in range(10)]
    scores = pd.DataFrame(
        {
            "participant_id": ids * 2 if design == "within" else ids + [f"Q{i}" for i in range(10)],
            "condition": ["vis"] * 10 + ["base"] * 10,
            "construct": "trust",
            "score": vis + base,
        }
    )

    def row(name: str, first: str, second: str, direction: str, sesoi: float) -> dict:
        fixed = {"construct": "trust", "alpha": 0.05, "correction": "none", "statement": ""}
        return {
            "hypothesis": name,
            "first": first,
            "second": second,
            "direction": direction,
            "sesoi": sesoi,
            **fixed,
        }

    kind = "paired" if design == "within" else "welch"
    # R's paired non-inferiority case is visual − baseline, its Welch one baseline − visual
    third = ("vis", "base") if design == "within" else ("base", "vis")
    hypotheses = pd.DataFrame(
        [
            row("H1", "vis", "base", "equivalent", 2.0),
            row("H2", "base", "vis", "equivalent", 2.0),
            row("H3", *third, "non_inferior", 0.5),
        ]
    )
    data = StudyData(
        None, None, None, design, "base", "vis", conditions=("base", "vis"), hypotheses=hypotheses
    )
    h1, h2, h3 = confirmatory_tests(scores, data, 0.95)
    ref = REF["tost"][f"{kind}_equivalent"]
    assert h1["p"] == pytest.approx(ref["p"], rel=1e-9) and h1["ci"] == pytest.approx(ref["ci"], rel=1e-9)
    assert h2["p"] == pytest.approx(ref["p"], rel=1e-9)  # symmetric bounds: the order does not matter
    assert h2["ci"] == pytest.approx([-ref["ci"][1], -ref["ci"][0]], rel=1e-9) and h2["mean_diff"] < 0
    assert h1["ci_level"] == pytest.approx(0.9) and h1["tost"]["bounds"] == [-2.0, 2.0]
    ref = REF["tost"][f"{kind}_non_inferior"]
    assert h3["p"] == pytest.approx(ref["p"], rel=1e-9) and h3["tost"]["upper"] is None
    assert h3["ci"] == pytest.approx(ref["ci"], rel=1e-9)
    assert h3["bayes_factor"]["name"] == "BF10" and h3["bayes_factor"]["value"] > 0
    assert not h1["supported"] and verdict(h1) == "not shown equivalent"
    results = {"labels": {"conditions": {"vis": "Visual references", "base": "Text only"}}}
    sentence = hypothesis_sentence(results, h1)
    assert "Visual references vs Text only, equivalent (±2.00)" in sentence and "90 % CI" in sentence
    assert sentence.endswith("— not shown equivalent.") and "BF<sub>10</sub> = " in sentence
    assert verdict({**h1, "supported": True}) == "equivalent within ±2.00"
