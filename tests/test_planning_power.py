"""The one power analysis (formats.planning): the t-test's power, n and smallest effect against R's
``power.t.test`` (tests/data/r/power_t_test.R), the one α-split rule, and the preregistration and the report
planning the same n for the same protocol."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from analysis.load import validate_hypotheses
from analysis.power import required_n, sensitivity, study_plan
from db.session import Database
from formats.planning import minimum_effect, planned_test, required_sample, t_test_power
from study import prereg
from study.export import export_frames
from study.protocol.loading import load_protocol
from study.registry import register
from tests.factories import make_bundle, multi_arm_protocol, write_protocol

R = json.loads((Path(__file__).parent / "data" / "r" / "power_t_test.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("k", [2, 3])
def test_power_matches_r_power_t_test(k):
    """R's n is pairs (paired) or per group (two.sample); ours counts participants in all (between: k arms)."""
    for row in R["power"]:
        arms = 1 if row["design"] == "within" else k
        ours = t_test_power(
            row["n"] * arms, row["effect"], row["design"], alpha=row["alpha"], sided=row["sided"], k=k
        )
        assert ours == pytest.approx(row["power"], rel=1e-7, abs=1e-10), row


def test_sample_size_and_smallest_effect_match_r():
    for row in R["n"]:
        needed = required_sample(
            row["effect"], row["design"], alpha=row["alpha"], power=row["power"], sided=row["sided"], k=3
        )
        assert needed.exact == pytest.approx(row["n"], rel=1e-6), row
        arms = 1 if row["design"] == "within" else 3
        assert needed.per_group == math.ceil(row["n"]) and needed.total == arms * needed.per_group
    for row in R["effect"]:
        arms = 1 if row["design"] == "within" else 2
        ours = minimum_effect(
            row["n"] * arms, row["design"], alpha=row["alpha"], power=row["power"], sided=row["sided"]
        )
        assert ours == pytest.approx(row["effect"], rel=1e-6), row


def test_published_sensitivities():
    """statistics notes (G*Power): 32 paired → d_z ≈ 0.51; 16 per arm → d ≈ 1.02 (80 %, α = .05, two-sided)."""
    two_arms = planned_test((), (), "holm", 2)
    assert sensitivity(32, "within", two_arms)["min_effect"] == pytest.approx(0.51, abs=0.005)
    assert sensitivity(32, "between", two_arms)["min_effect"] == pytest.approx(1.02, abs=0.005)


def test_alpha_is_split_over_the_confirmatory_family():
    # two one-sided hypotheses on two arms, Holm: α / 2 (a k − 1 split would miss it)
    two = planned_test((0.05, 0.05), ("greater", "less"), "holm", 2)
    assert (two.alpha, two.family, two.family_of, two.sided) == (0.025, 2, "hypotheses", "one-sided")
    # one hypothesis comparing two of three arms is tested at its α: no k − 1 split
    one = planned_test((0.05,), ("two_sided",), "holm", 3)
    assert (one.alpha, one.family, one.sided) == (0.05, 1, "two-sided")
    # each hypothesis its own family; the smallest declared α; equivalence hypotheses count in the family
    assert planned_test((0.05, 0.01), ("greater", "greater"), "none", 2).alpha == 0.01
    mixed = planned_test((0.05, 0.05, 0.05), ("greater", "two_sided", "equivalent"), "bonferroni", 2)
    assert (mixed.alpha, mixed.sided) == (pytest.approx(0.05 / 3), "two-sided")
    # nothing declared: the report's Holm family, the k − 1 comparisons with the baseline
    none = planned_test((), (), "none", 4, alpha=0.05)
    assert (none.alpha, none.family, none.family_of) == (
        pytest.approx(0.05 / 3),
        3,
        "comparisons with the baseline",
    )
    with pytest.raises(ValueError, match="one α per hypothesis"):
        planned_test((0.05,), (), "holm", 2)
    with pytest.raises(ValueError, match="correction"):
        planned_test((0.05,), ("greater",), "sidak", 2)


def _planned_n(document: str) -> int:
    return int(
        re.search(r"smallest effect of interest d(?:_z)? = [\d.]+: (\d+) participants give", document)[1]
    )


VARIANTS = {
    "within, two hypotheses": ("within", 2, {}),
    "between, two hypotheses": ("between", 2, {}),
    "between, three arms": ("between", 3, {}),
    "within, three arms, nothing declared": ("within", 3, {"hypotheses": []}),
    "between, no correction, two-sided": ("between", 2, {"two_sided": True, "correction": "none"}),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_preregistration_and_report_plan_the_same_n(variant, tmp_path, bundle_dir):
    """The report reads the hypotheses the export carries; for the protocol's effect and power it asks for
    the n the preregistration printed."""
    design, k, change = VARIANTS[variant]
    data = multi_arm_protocol(design, k)
    if "hypotheses" in change:
        data["hypotheses"] = change["hypotheses"]
    if change.get("two_sided"):
        for h in data["hypotheses"]:
            h["direction"] = "two_sided"
    data["preregistration"]["correction"] = change.get("correction", data["preregistration"]["correction"])
    bundle = bundle_dir if k == 2 else make_bundle(tmp_path / "bundle", retrieved=1)
    path = write_protocol(tmp_path, data, bundle)
    loaded = load_protocol(path)
    protocol = loaded.protocol
    document = prereg.sections(prereg.document(protocol))["3. Sampling plan"]
    db = Database(f"sqlite:///{tmp_path}/study.db")  # the export's hypotheses table does not vary by backend
    register(db, loaded)
    frames = export_frames(db)
    hypotheses = frames.get("hypotheses")
    table = None if hypotheses is None else validate_hypotheses(hypotheses.astype(str))
    plan = study_plan(table, k)
    sample = protocol.preregistration.sample_size
    assert required_n(sample.effect, design, plan, sample.power, k)["n_total"] == _planned_n(document)
    assert f"α = {plan.alpha:.4g} per test" in document
