"""Steps 1–4 of the analysis for k ≥ 2 conditions: prepared responses, one block per construct, Holm across
constructs. Two arms are the case k = 2 of the same path.

A construct's block holds its test of all conditions at once (``omnibus``: for k = 2 the two-sample tests —
paired / Welch t and Wilcoxon / Mann–Whitney —, for k > 2 the repeated-measures or Welch ANOVA and the
Friedman or Kruskal–Wallis test), Holm-adjusted across the constructs, and the pairwise comparisons
(:func:`analysis.multiarm.pairwise`: every condition vs the baseline, and all pairs, Holm-adjusted within each
family; for k = 2 both families hold the one pair). Every difference is the later condition minus the earlier
one in the protocol's order, baseline first. ``docs/analysis.md`` ("results.json") lists the keys.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import casewise
from analysis.bayes import bayes_factor
from analysis.compare import cumulative_logit, holm, period_effect, pomp, relative_change_pct
from analysis.config import AnalysisConfig
from analysis.load import StudyData, build_study_data
from analysis.multiarm import friedman, kruskal_wallis, pairwise, rm_anova, welch_anova
from analysis.reliability import cronbach_alpha, mcdonald_omega
from analysis.scores import (
    ConditionScores,
    apply_exclusions,
    condition_scores,
    confirmatory_constructs,
    construct_ranges,
    construct_scores,
    descriptives,
    item_matrix,
    reverse_code,
    scale_bounds,
    scored_rows,
)

TESTS = ("parametric", "nonparametric")


def prepare_responses(
    data: StudyData, config: AnalysisConfig
) -> tuple[pd.DataFrame, pd.DataFrame | None, list[str]]:
    """Step 1: drop excluded participants, fill scale ranges, reverse-code → (responses, flow, notes)."""
    responses, flow = apply_exclusions(data.responses, data.participants)
    notes = (
        []
        if flow is not None
        else ["no participants file: every participant in the responses is analysed (no exclusions applied)"]
    )
    responses, range_notes = scale_bounds(responses, config.scale_min, config.scale_max)
    return reverse_code(responses), flow, notes + range_notes


def construct_blocks(
    responses: pd.DataFrame, scores: pd.DataFrame, data: StudyData, config: AnalysisConfig
) -> dict[str, dict]:
    """Step 3: every confirmatory construct (``--constructs``, else all but the derived ones)."""
    family = confirmatory_constructs(responses, list(config.constructs) if config.constructs else None)
    ranges = construct_ranges(responses)
    return {c: construct_block(responses, scores, c, data, config, ranges.loc[c]) for c in family}


def construct_block(
    responses: pd.DataFrame,
    scores: pd.DataFrame,
    construct: str,
    data: StudyData,
    config: AnalysisConfig,
    scale: pd.Series,
) -> dict:
    """Step 3 for one construct: descriptives, the omnibus tests, the pairwise comparisons with effect sizes,
    reliability, the ordinal model, the crossed mixed models and (two-period crossover) the period effect.
    Within designs use participants with every condition (the others are counted in ``dropped_incomplete``)."""
    present = set(scores.loc[scores["construct"] == construct, "condition"])
    asked = [c for c in data.conditions if c in present]
    if len(asked) == 1:
        return described_only_block(
            responses, construct, asked[0], _scale_block(scores, construct, scale), config
        )
    samples = condition_scores(scores, construct, data.conditions, data.design)
    if min(samples.sizes.values()) < 2:
        shown = ", ".join(f"{c} {n}" for c, n in samples.sizes.items())
        skipped = {"skipped": f"fewer than two observations per condition ({shown})"}
        return {**skipped, **mixed_blocks(responses, construct, data, config)} if config.full else skipped
    means = {c: float(samples.sample(c).mean()) for c in data.conditions}
    lo, hi = float(scale["scale_min"]), float(scale["scale_max"])
    pomps = {c: pomp(m, lo, hi) for c, m in means.items()}
    pairs = pairwise(samples, data.baseline, config.confidence)
    factors: dict[tuple[str, str], dict] = {}  # a pair stands in both families: its Bayes factor, once
    for record in (r for records in pairs.values() for r in records):
        a, b = record["a"], record["b"]
        record["relative_change_pct"] = relative_change_pct(means[b], means[a])
        record["pomp_diff"] = None if pomps[b] is None else pomps[b] - pomps[a]
        if config.full:
            if (a, b) not in factors:
                factors[(a, b)] = bayes_factor(
                    samples.sample(b), samples.sample(a), paired=data.design == "within"
                )
            record["parametric"]["bayes_factor"] = factors[(a, b)]
    block = {
        **_scale_block(scores, construct, scale),
        "omnibus": omnibus_tests(samples, pairs),
        "pairwise": pairs,
        "means": means,
        "pomp": pomps,
        "dropped_incomplete": samples.dropped,
    }
    if not config.full:
        return block
    block.update(_model_blocks(responses, construct, data, config))
    block.update(mixed_blocks(responses, construct, data, config))
    crossover = data.design == "within" and len(data.conditions) == 2
    block["period_effect"] = (
        period_effect(scores[scores["construct"] == construct], *data.conditions, config.confidence)
        if crossover
        else None
    )
    return block


def omnibus_tests(samples: ConditionScores, pairs: dict[str, list[dict]]) -> dict[str, dict]:
    """The construct's test of all conditions at once, parametric and rank-based: for k = 2 the two-sample
    tests of the one pair (its records without the family's ``p_holm``), for k > 2 the ANOVA (repeated
    measures with Greenhouse–Geisser, or Welch's) and the Friedman or Kruskal–Wallis test."""
    if len(samples.conditions) == 2:
        (pair,) = pairs["vs_baseline"]
        return {kind: {k: v for k, v in pair[kind].items() if k != "p_holm"} for kind in TESTS}
    if samples.complete is not None:
        return {"parametric": rm_anova(samples.complete), "nonparametric": friedman(samples.complete)}
    return {"parametric": welch_anova(samples.groups), "nonparametric": kruskal_wallis(samples.groups)}


def _descriptive_block(table: pd.DataFrame) -> dict:
    return {
        row["condition"]: {
            k: (None if pd.isna(row[k]) else float(row[k])) if k != "n" else int(row[k])
            for k in ("n", "mean", "sd", "median", "q1", "q3", "iqr")
        }
        for _, row in table.iterrows()
    }


def _scale_block(scores: pd.DataFrame, construct: str, scale: pd.Series) -> dict:
    return {
        "n_items": int(scale["n_items"]),
        "scale": {"min": float(scale["scale_min"]), "max": float(scale["scale_max"])},
        "descriptives": _descriptive_block(descriptives(scores[scores["construct"] == construct])),
    }


def _reliability_block(responses: pd.DataFrame, construct: str, config: AnalysisConfig) -> dict:
    """Cronbach's α with CI and McDonald's ω of one construct."""
    items = item_matrix(responses, construct)
    alpha = cronbach_alpha(items, config.confidence)
    omega = mcdonald_omega(items)
    return {
        "alpha": None if alpha is None else alpha["value"],
        "alpha_ci": None if alpha is None else alpha["ci"],
        "omega": None if omega is None else omega["value"],
    }


def _ordinal_block(rows: pd.DataFrame, data: StudyData, config: AnalysisConfig) -> dict:
    """Cumulative link model on item answers (one term per condition besides the baseline), or the reason
    it was not fitted."""
    values = rows["value"].to_numpy()
    if not np.allclose(values, np.round(values)):
        return {"skipped": "answers are not integer scale points"}
    if len(np.unique(values)) < 2:
        return {"skipped": "fewer than two distinct answers"}
    codes = rows["condition"].map({c: i for i, c in enumerate(data.conditions)}).to_numpy()
    res = cumulative_logit(values, codes, rows["participant_id"], config.confidence)
    for condition, term in zip(data.conditions[1:], res["terms"], strict=True):
        term["condition"] = condition
    res["limitation"] = (
        "repeated measures handled by participant-clustered (sandwich) SEs, not by random effects"
        if data.design == "within"
        else "several items per participant handled by participant-clustered (sandwich) SEs"
    )
    return res


def _model_blocks(responses: pd.DataFrame, construct: str, data: StudyData, config: AnalysisConfig) -> dict:
    """Reliability (α with CI, ω) and the ordinal model of one construct."""
    rows = scored_rows(responses)
    return {
        **_reliability_block(responses, construct, config),
        "ordinal": _ordinal_block(rows[rows["construct"] == construct], data, config),
    }


def described_only_block(
    responses: pd.DataFrame, construct: str, condition: str, scale_block: dict, config: AnalysisConfig
) -> dict:
    """A construct asked under one of the compared conditions only (e.g. "the generated pictures helped me",
    shown with the pictures): its descriptives (``scale_block``) and reliability within that ``condition``,
    ``described_only`` saying why nothing is compared."""
    block = {
        **scale_block,
        "described_only": f"asked under {condition} only: described within that condition, not compared",
    }
    if config.full:
        block.update(_reliability_block(responses, construct, config))
    return block


def mixed_blocks(responses: pd.DataFrame, construct: str, data: StudyData, config: AnalysisConfig) -> dict:
    """The crossed mixed models of a construct with per-case items (``mixed``, ``ordinal_mixed``: the primary
    analysis, :mod:`analysis.casewise`); nothing for constructs asked once per participant."""
    rows = casewise.per_case_rows(responses, construct, data.conditions)
    if rows.empty:
        return {}
    return {
        "mixed": casewise.linear_block(
            rows,
            design=data.design,
            conditions=data.conditions,
            confidence=config.confidence,
            backend=config.mixed_backend,
            position=config.position,
        ),
        "ordinal_mixed": casewise.ordinal_block(
            rows, conditions=data.conditions, confidence=config.confidence
        ),
    }


def tests_of(block: dict) -> dict | None:
    """The construct's omnibus tests (``parametric``, ``nonparametric``); None when it was not tested."""
    return block.get("omnibus")


def adjust_multiplicity(blocks: dict[str, dict]) -> None:
    """Step 4: Holm-adjusted p (``p_holm``) of the omnibus tests across the tested constructs, per test kind
    (pairwise p are adjusted within each construct's comparison families). The mixed model's test
    (``mixed.p_holm``; k > 2: ``mixed.omnibus.p_holm``) is adjusted in the primary family: per construct its
    mixed test where it has per-case items, else its parametric test."""
    tested = {c: tests for c, block in blocks.items() if (tests := tests_of(block)) is not None}
    for kind in TESTS:
        adjusted = holm([tests[kind]["p"] for tests in tested.values()])
        for tests, p in zip(tested.values(), adjusted, strict=True):
            tests[kind]["p_holm"] = p
    # the primary family: the mixed model's test where a construct has per-case items, else its t-test
    primary = {c: casewise.primary_test(block, tests_of(block)) for c, block in blocks.items()}
    primary = {c: record for c, record in primary.items() if record is not None}
    adjusted = holm([record["p"] for record in primary.values()])
    for record, p in zip(primary.values(), adjusted, strict=True):
        record.setdefault("p_holm", p)


def primary_result(
    responses: pd.DataFrame,
    design: str,
    conditions: tuple[str, ...],
    planted: str,
    construct: str | None = None,
) -> dict:
    """The full scoring and testing path on one simulated study: the Holm-adjusted p (family: vs the
    baseline) and effect of ``planted`` − baseline on ``construct`` (default: the first confirmatory construct
    of the data), the pair the simulation planted its effect on. ``conditions``: baseline first; for k = 2 the
    family holds one pair and its adjusted p is its p."""
    data = build_study_data(responses, design=design, baseline=conditions[0], conditions=conditions)
    config = AnalysisConfig(full=False, constructs=(construct,) if construct else None)
    prepared, _, _ = prepare_responses(data, config)
    blocks = construct_blocks(prepared, construct_scores(prepared), data, config)
    block = blocks[next(iter(blocks))]
    pair = next(r for r in block["pairwise"]["vs_baseline"] if r["b"] == planted)
    return {"p": pair["parametric"]["p_holm"], "effect": pair["parametric"]["effect_size"]["value"]}
