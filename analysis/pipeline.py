"""The analysis as numbered steps over validated study data; produces the ``results.json`` structure.

``run_analysis`` reads like the paper's methods section: it runs :data:`STEPS` in order — 1. exclusions,
2. scoring, 3. per-construct statistics, 4. multiplicity, 5. trust calibration, 6. expert ratings,
7. interactions with the live model, 8. power.
Each step is a small function of the run's state; the statistics are plain records, so the writers and
figures only format what is computed here. The simulated power curve is wired in :mod:`analysis.simulation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm import tqdm

from analysis import __version__
from analysis.agreement import item_agreement
from analysis.compare import (
    cumulative_logit,
    holm,
    mann_whitney_test,
    paired_ttest,
    period_effect,
    pomp,
    relative_change_pct,
    welch_ttest,
    wilcoxon_test,
)
from analysis.load import StudyData, build_study_data
from analysis.power import analytic_power_curve, required_n, sensitivity
from analysis.reliability import cronbach_alpha, mcdonald_omega
from analysis.scores import (
    apply_exclusions,
    confirmatory_constructs,
    construct_ranges,
    construct_scores,
    descriptives,
    item_matrix,
    paired_scores,
    reverse_code,
    scale_bounds,
    scored_rows,
)
from analysis.simulation import simulated_curve
from analysis.trust import trust_calibration

if TYPE_CHECKING:
    from analysis.sources import LoadedProtocol

SCHEMA_VERSION = 2  # 2: CIs at --confidence, level-neutral keys (ci, alpha_ci, …), top-level confidence


@dataclass(frozen=True)
class AnalysisConfig:
    """Every analysis option; the CLI builds one from its flags and it is saved in ``results.json``."""

    constructs: tuple[str, ...] | None = None
    scale_min: float | None = None
    scale_max: float | None = None
    confidence: float = 0.95
    alpha: float = 0.05
    power: float = 0.8
    target_effect: float = 0.5
    trust_construct: str = "trust"
    rating_threshold: float | None = None
    n_boot: int = 1000
    seed: int = 0
    simulate: bool = False
    sim_sizes: tuple[int, ...] = (10, 20, 30, 40, 60, 80)
    sim_effects: tuple[float, ...] = (0.3, 0.5, 0.8)
    sim_reps: int = 100
    sim_population: int | None = None  # bots per planted effect (default: max(4 × largest n, 200))
    full: bool = field(default=True, repr=False)  # False: only what the power simulation needs


@dataclass
class Analysis:
    """``results`` (JSON-ready) plus the frames the figures are drawn from."""

    results: dict
    responses: pd.DataFrame | None = None
    scores: pd.DataFrame | None = None
    flow: pd.DataFrame | None = None
    ratings: pd.DataFrame | None = None
    power_curve: pd.DataFrame | None = None
    analytic_power: pd.DataFrame | None = None


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


def _descriptive_block(table: pd.DataFrame) -> dict:
    return {
        row["condition"]: {
            k: (None if pd.isna(row[k]) else float(row[k])) if k != "n" else int(row[k])
            for k in ("n", "mean", "sd", "median", "q1", "q3", "iqr")
        }
        for _, row in table.iterrows()
    }


def _samples(scores: pd.DataFrame, construct: str, data: StudyData) -> tuple[np.ndarray, np.ndarray, int]:
    """(visual, baseline, dropped): paired arrays for within designs, the two groups for between."""
    if data.design == "within":
        pairs, dropped = paired_scores(scores, construct, data.baseline, data.visual)
        return pairs["visual"].to_numpy(), pairs["baseline"].to_numpy(), dropped
    sub = scores[scores["construct"] == construct]
    return (
        sub.loc[sub["condition"] == data.visual, "score"].to_numpy(),
        sub.loc[sub["condition"] == data.baseline, "score"].to_numpy(),
        0,
    )


def _ordinal_block(rows: pd.DataFrame, data: StudyData, config: AnalysisConfig) -> dict:
    """Cumulative link model on item answers, or the reason it was not fitted."""
    values = rows["value"].to_numpy()
    if not np.allclose(values, np.round(values)):
        return {"skipped": "answers are not integer scale points"}
    if len(np.unique(values)) < 2:
        return {"skipped": "fewer than two distinct answers"}
    res = cumulative_logit(
        values, (rows["condition"] == data.visual).to_numpy(), rows["participant_id"], config.confidence
    )
    res["limitation"] = (
        "repeated measures handled by participant-clustered (sandwich) SEs, not by random effects"
        if data.design == "within"
        else "several items per participant handled by participant-clustered (sandwich) SEs"
    )
    return res


def construct_block(
    responses: pd.DataFrame,
    scores: pd.DataFrame,
    construct: str,
    data: StudyData,
    config: AnalysisConfig,
    scale: pd.Series,
) -> dict:
    """Step 3 for one construct: descriptives, reliability, tests, effect sizes, ordinal model, period."""
    visual, baseline, dropped = _samples(scores, construct, data)
    if len(visual) < 2 or len(baseline) < 2:
        return {
            "skipped": f"fewer than two observations per condition (visual {len(visual)}, "
            f"baseline {len(baseline)})"
        }
    if data.design == "within":
        parametric, nonparametric = (
            paired_ttest(visual, baseline, config.confidence),
            wilcoxon_test(visual, baseline),
        )
    else:
        parametric = welch_ttest(visual, baseline, config.confidence)
        nonparametric = mann_whitney_test(visual, baseline)
    mean_v, mean_b = float(visual.mean()), float(baseline.mean())
    lo, hi = float(scale["scale_min"]), float(scale["scale_max"])
    pomp_v, pomp_b = pomp(mean_v, lo, hi), pomp(mean_b, lo, hi)
    block = {
        "n_items": int(scale["n_items"]),
        "scale": {"min": lo, "max": hi},
        "descriptives": _descriptive_block(descriptives(scores[scores["construct"] == construct])),
        "parametric": parametric,
        "nonparametric": nonparametric,
        "mean_visual": mean_v,
        "mean_baseline": mean_b,
        "relative_change_pct": relative_change_pct(mean_v, mean_b),
        "pomp": {"visual": pomp_v, "baseline": pomp_b, "diff": None if pomp_v is None else pomp_v - pomp_b},
        "dropped_incomplete": dropped,
    }
    if not config.full:
        return block
    items = item_matrix(responses, construct)
    alpha = cronbach_alpha(items, config.confidence)
    block["alpha"] = None if alpha is None else alpha["value"]
    block["alpha_ci"] = None if alpha is None else alpha["ci"]
    omega = mcdonald_omega(items)
    block["omega"] = None if omega is None else omega["value"]
    rows = scored_rows(responses)
    block["ordinal"] = _ordinal_block(rows[rows["construct"] == construct], data, config)
    block["period_effect"] = (
        period_effect(scores[scores["construct"] == construct], data.baseline, data.visual, config.confidence)
        if data.design == "within"
        else None
    )
    return block


def construct_blocks(
    responses: pd.DataFrame, scores: pd.DataFrame, data: StudyData, config: AnalysisConfig
) -> dict[str, dict]:
    """Step 3: every confirmatory construct (``--constructs``, else all but the derived ones)."""
    family = confirmatory_constructs(responses, list(config.constructs) if config.constructs else None)
    ranges = construct_ranges(responses)
    return {c: construct_block(responses, scores, c, data, config, ranges.loc[c]) for c in family}


def adjust_multiplicity(blocks: dict[str, dict]) -> None:
    """Step 4: Holm-adjusted p (``p_holm``) across the tested constructs, per test family."""
    tested = [c for c, block in blocks.items() if "parametric" in block]
    for kind in ("parametric", "nonparametric"):
        adjusted = holm([blocks[c][kind]["p"] for c in tested])
        for construct, p in zip(tested, adjusted, strict=True):
            blocks[construct][kind]["p_holm"] = p


def primary_result(
    responses: pd.DataFrame, design: str, baseline: str, visual: str, construct: str | None = None
) -> dict:
    """The full scoring and testing path on one simulated study: p and effect of ``construct`` (default: the
    first confirmatory construct of the data)."""
    data = build_study_data(responses, design=design, baseline=baseline, visual=visual)
    config = AnalysisConfig(full=False, constructs=(construct,) if construct else None)
    prepared, _, _ = prepare_responses(data, config)
    blocks = construct_blocks(prepared, construct_scores(prepared), data, config)
    first = blocks[next(iter(blocks))]["parametric"]
    return {"p": first["p"], "effect": first["effect_size"]["value"]}


def power_block(
    data: StudyData,
    n_analysed: int | None,
    config: AnalysisConfig,
    progress: bool,
    protocol: LoadedProtocol | None = None,
) -> tuple[dict, pd.DataFrame, pd.DataFrame | None]:
    """Step 7: sensitivity at the achieved n, a-priori n, analytic power curve, optional simulated curve.

    ``protocol`` (the registered or given protocol, when known) lets the study engine's bots generate the
    simulated studies. Returns ``(block, analytic curve, simulated curve or None)``.
    """
    block: dict = {
        "sensitivity": None,
        "a_priori": required_n(config.target_effect, data.design, config.alpha, config.power),
        "analytic_curve": None,
        "simulation": None,
    }
    if n_analysed and n_analysed >= 3:
        block["sensitivity"] = sensitivity(n_analysed, data.design, config.alpha, config.power)
    largest = max(100, 2 * (n_analysed or 0), *config.sim_sizes)
    sizes = np.unique(np.linspace(6, largest, 40).astype(int))
    analytic = analytic_power_curve(data.design, sizes, config.sim_effects, config.alpha)
    block["analytic_curve"] = analytic.to_dict(orient="records")
    curve = None
    if config.simulate:
        block["simulation"], curve = simulated_curve(data, config, protocol, progress, primary_result)
    return block, analytic, curve


def ratings_block(ratings: pd.DataFrame, config: AnalysisConfig) -> dict[str, dict]:
    """Step 6: per rated item, proportions positive and agreement (bootstrap over images)."""
    rng = np.random.default_rng(config.seed)
    return {
        str(item): item_agreement(
            rows,
            threshold=config.rating_threshold,
            n_boot=config.n_boot,
            rng=rng,
            confidence=config.confidence,
        )
        for item, rows in ratings.groupby("item", sort=True)
    }


def _jsonable(value):
    """NaN/inf → None, numpy scalars → Python, recursively (results.json must be strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Run:
    """The state the steps of one :func:`run_analysis` share: inputs, and the :class:`Analysis` they fill."""

    data: StudyData
    config: AnalysisConfig
    protocol: LoadedProtocol | None
    progress: bool
    analysis: Analysis

    @property
    def results(self) -> dict:
        return self.analysis.results


def exclusions(run: Run) -> None:
    """1. Drop excluded participants, fill scale ranges, reverse-code; the participant flow."""
    if run.data.responses is None:
        return
    run.analysis.responses, run.analysis.flow, notes = prepare_responses(run.data, run.config)
    run.results["warnings"] += notes
    flow = run.analysis.flow
    run.results["participant_flow"] = None if flow is None else flow.to_dict(orient="records")


def scoring(run: Run) -> None:
    """2. Construct scores per participant × condition; participants analysed per condition."""
    if run.analysis.responses is None:
        return
    run.analysis.scores = construct_scores(run.analysis.responses)
    per_condition = run.analysis.scores.groupby("condition")["participant_id"].nunique()
    run.results["n_participants"] = {str(k): int(v) for k, v in per_condition.items()}


def constructs(run: Run) -> None:
    """3. Per-construct statistics; participants left out of paired tests become warnings."""
    if run.analysis.scores is None:
        return
    blocks = construct_blocks(run.analysis.responses, run.analysis.scores, run.data, run.config)
    run.results["constructs"] = blocks
    for name, block in blocks.items():
        if block.get("dropped_incomplete"):
            run.results["warnings"].append(
                f"{name}: {block['dropped_incomplete']} participant(s) without both "
                "conditions are left out of the paired analysis"
            )


def multiplicity(run: Run) -> None:
    """4. Holm adjustment across the confirmatory family."""
    adjust_multiplicity(run.results["constructs"])


def trust(run: Run) -> None:
    """5. Trust calibration on deliberately wrong AI cases."""
    if run.analysis.responses is None:
        return
    data, config = run.data, run.config
    run.results["trust_calibration"] = trust_calibration(
        run.analysis.responses,
        data.design,
        data.baseline,
        data.visual,
        config.trust_construct,
        config.confidence,
    )


def ratings(run: Run) -> None:
    """6. Expert ratings: proportions and agreement per rated item."""
    if run.data.ratings is not None:
        run.results["ratings"] = ratings_block(run.data.ratings, run.config)


def interactions_block(turns: pd.DataFrame, participants: pd.DataFrame | None) -> dict[str, dict]:
    """Turns with the live model per condition: how much participants used it.

    Returns, per condition: ``participants`` (who took at least one turn), ``questions`` and ``references``
    (turn counts), ``questions_per_participant`` (mean, among them), ``median_latency_ms`` (answered turns),
    ``unknown_answers`` (share of answered questions naming no taxonomy condition). Excluded participants
    (``participants.excluded``) are left out, as in every other block.
    """
    if participants is not None:
        excluded = set(participants.loc[participants["excluded"] == 1, "participant_id"])
        turns = turns[~turns["participant_id"].isin(excluded)]
    block: dict[str, dict] = {}
    for condition, rows in turns.groupby("condition", sort=True):
        questions = rows[rows["kind"] == "question"]
        answered = questions[questions["latency_ms"].notna()]
        per_participant = questions.groupby("participant_id").size()
        block[str(condition)] = {
            "participants": int(rows["participant_id"].nunique()),
            "questions": len(questions),
            "references": int((rows["kind"] == "references").sum()),
            "questions_per_participant": float(per_participant.mean()) if len(per_participant) else 0.0,
            "median_latency_ms": float(rows["latency_ms"].median())
            if rows["latency_ms"].notna().any()
            else None,
            "unknown_answers": float((answered["mapped_condition"] == "unknown").mean())
            if len(answered)
            else None,
        }
    return block


def interactions(run: Run) -> None:
    """7. Interactions with the live model (interactive conditions), per condition."""
    if run.data.interactions is not None:
        run.results["interactions"] = interactions_block(run.data.interactions, run.data.participants)


def power(run: Run) -> None:
    """8. Power: sensitivity at the analysed n, a-priori n, analytic and (``--simulate``) simulated curves."""
    tested = [b for b in run.results["constructs"].values() if "parametric" in b]
    n_analysed = tested[0]["parametric"]["n"] if tested else None
    run.results["power"], run.analysis.analytic_power, run.analysis.power_curve = power_block(
        run.data, n_analysed, run.config, run.progress, run.protocol
    )
    if run.results["power"]["simulation"]:
        run.results["warnings"] += run.results["power"]["simulation"]["notes"]


STEPS: tuple[tuple[str, Callable[[Run], None]], ...] = (
    ("exclusions", exclusions),
    ("scoring", scoring),
    ("constructs", constructs),
    ("multiplicity", multiplicity),
    ("trust calibration", trust),
    ("ratings", ratings),
    ("interactions", interactions),
    ("power", power),
)
"""The analysis, in order: ``(name, step)``; each step reads and extends the :class:`Run`."""


def initial_results(data: StudyData, config: AnalysisConfig) -> dict:
    """The ``results.json`` skeleton the steps fill."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": f"skingen-analysis {__version__}",
        "design": data.design,
        "baseline": data.baseline,
        "visual": data.visual,
        "confidence": config.confidence,
        "config": {k: v for k, v in config.__dict__.items() if k != "full"},
        "warnings": list(data.warnings),
        "participant_flow": None,
        "exclusions_applied": data.participants is not None,
        "n_participants": {},
        "constructs": {},
        "trust_calibration": None,
        "ratings": {},
        "interactions": {},
    }


def run_analysis(
    data: StudyData, config: AnalysisConfig, progress: bool = False, protocol: LoadedProtocol | None = None
) -> Analysis:
    """Run :data:`STEPS` on validated data; ``progress`` shows one tqdm bar on stderr.

    ``protocol``: the study's protocol when known (``--db``, ``--protocol``); the simulated power curve then
    comes from the study engine's bots instead of the built-in Likert generator.
    """
    run = Run(data, config, protocol, progress, Analysis(initial_results(data, config), ratings=data.ratings))
    for _, step in tqdm(STEPS, desc="analysis", disable=not progress, leave=False):
        step(run)
    run.analysis.results = _jsonable(run.results)
    return run.analysis
