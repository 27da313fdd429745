"""The analysis as numbered steps over validated study data; produces the ``results.json`` structure.

``run_analysis`` reads like the paper's methods section: it runs :data:`STEPS` in order — 1. exclusions,
2. scoring, 3. per-construct statistics, 4. multiplicity, 5. preregistered hypotheses, 6. instruments,
7. trust calibration, 8. reliance on the AI's advice, 9. engagement and manipulation checks, 10. expert
ratings, 11. interactions with the live model, 12. power, 13. deviations from the preregistration,
14. reporting standards (flow per arm, baseline by arm, missing data, stratum, sensitivity).
Each step is a small function of the run's state; the statistics are plain records, so the writers and
figures only format what is computed here. The simulated power curve is wired in :mod:`analysis.simulation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from tqdm import tqdm

from analysis import __version__
from analysis.agreement import item_agreement
from analysis.closed_loop import closed_loop_agreement
from analysis.config import AnalysisConfig
from analysis.consort import arm_flow, baseline_characteristics, missingness
from analysis.constructs import adjust_multiplicity, construct_blocks, prepare_responses, tests_of
from analysis.engagement import engagement_block
from analysis.instruments import instrument_blocks
from analysis.languages import by_language
from analysis.load import StudyData
from analysis.plan import confirmatory_tests, deviations
from analysis.power import (
    analytic_power_curve,
    case_power_block,
    fitted_components,
    required_n,
    sensitivity,
    study_plan,
)
from analysis.ratings_model import source_comparison
from analysis.reliance import reliance_block
from analysis.scores import construct_scores
from analysis.simulation import BotSource, simulated_curve
from analysis.stratified import stratum_adjusted
from analysis.trust import trust_calibration
from formats.planning import VarianceComponents

SCHEMA_VERSION = 5
# 2: CIs at --confidence, level-neutral keys (ci, alpha_ci, …), top-level confidence
# 3: constructs[c].analysis (confirmatory/exploratory), hypotheses, instruments, preregistration
# 4: constructs[c].mixed / .ordinal_mixed (crossed mixed models of per-case items), .described_only
# 4: labels, n_analysed, flow by arm, baseline, missing data, stratification, sensitivity, ratings_by_source,
#    bayes_factor beside every construct t-test, equivalence hypotheses (sesoi, tost), ci/ci_level of hypotheses
# 5: one schema for k ≥ 2 conditions (docs/analysis.md "Schema 5"): top-level conditions always, no compared;
#    constructs[c].omnibus / .pairwise / .means / .pomp{condition} for two arms too; ordinal terms + wald;
#    trust_calibration.over_reliance / .trust_gap keyed by condition


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


def power_block(
    data: StudyData,
    n_analysed: int | None,
    config: AnalysisConfig,
    progress: bool,
    bot_source: BotSource | None = None,
) -> tuple[dict, pd.DataFrame, pd.DataFrame | None]:
    """Step 7: sensitivity at the achieved n, a-priori n, analytic power curve, optional simulated curve.

    ``bot_source`` (given when the protocol is known) lets the study engine's bots generate the simulated
    studies. Returns ``(block, analytic curve, simulated curve or None)``.
    """
    k = max(len(data.conditions), 2)
    plan = study_plan(data.hypotheses, k, config.alpha)
    block: dict = {
        "sensitivity": None,
        "a_priori": required_n(config.target_effect, data.design, plan, config.power, k),
        "analytic_curve": None,
        "simulation": None,
    }
    if n_analysed and n_analysed >= (3 if data.design == "within" else 2 * k):
        block["sensitivity"] = sensitivity(n_analysed, data.design, plan, config.power, k)
    largest = max(100, 2 * (n_analysed or 0), *config.sim_sizes)
    sizes = np.unique(np.linspace(6, largest, 40).astype(int))
    analytic = analytic_power_curve(data.design, sizes, config.sim_effects, plan, k)
    block["analytic_curve"] = analytic.to_dict(orient="records")
    curve = None
    if config.simulate:
        block["simulation"], curve = simulated_curve(data, config, bot_source, progress)
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
    bot_source: BotSource | None
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
    run.results["n_analysed"] = int(run.analysis.scores["participant_id"].nunique())


def constructs(run: Run) -> None:
    """3. Per-construct statistics; participants left out of paired tests become warnings."""
    if run.analysis.scores is None:
        return
    blocks = construct_blocks(run.analysis.responses, run.analysis.scores, run.data, run.config)
    run.results["constructs"] = blocks
    for name, block in blocks.items():
        if block.get("dropped_incomplete"):
            which = (
                "every condition are left out of the repeated-measures"
                if len(run.data.conditions) > 2
                else "both conditions are left out of the paired"
            )
            run.results["warnings"].append(
                f"{name}: {block['dropped_incomplete']} participant(s) without {which} analysis"
            )


def multiplicity(run: Run) -> None:
    """4. Holm adjustment across the confirmatory family."""
    adjust_multiplicity(run.results["constructs"])


def hypotheses(run: Run) -> None:
    """5. The preregistered hypotheses, in their declared direction and correction; each construct marked
    confirmatory (a hypothesis tests it) or exploratory."""
    run.results["hypotheses"] = confirmatory_tests(
        run.analysis.scores, run.data, run.config.confidence, run.results["constructs"]
    )
    tested = {}
    for record in run.results["hypotheses"]:
        tested.setdefault(record["construct"], []).append(record["hypothesis"])
    for construct, block in run.results["constructs"].items():
        block["analysis"] = "confirmatory" if construct in tested else "exploratory"
        block["hypotheses"] = tested.get(construct, [])


def instruments(run: Run) -> None:
    """6. Published instruments: scores by their own rule, α per instrument and subscale, norms (SUS)."""
    if run.analysis.responses is not None and run.data.instruments is not None:
        run.results["instruments"] = instrument_blocks(
            run.analysis.responses, run.data.instruments, run.config.confidence
        )


def trust(run: Run) -> None:
    """7. Trust calibration on deliberately wrong AI cases."""
    if run.analysis.responses is None:
        return
    data, config = run.data, run.config
    run.results["trust_calibration"] = trust_calibration(
        run.analysis.responses, data.design, data.conditions, config.trust_construct, config.confidence
    )


def reliance(run: Run) -> None:
    """8. Reliance on the AI's advice per condition and by AI correctness: accuracy, agreement, over- and
    under-reliance; with judge–advisor trials also accuracy before the advice, switching, RAIR and RSR."""
    if run.analysis.responses is not None:
        run.results["reliance"] = reliance_block(
            run.analysis.responses,
            run.config.confidence,
            conditions=run.data.conditions if run.config.full else None,  # models: not in power simulations
        )


def engagement(run: Run) -> None:
    """9. Engagement by condition: time per case, images enlarged; manipulation checks by arm."""
    if run.analysis.responses is not None:
        run.results["engagement"] = engagement_block(
            run.analysis.responses, run.data.image_views, run.config.confidence
        )


def ratings(run: Run) -> None:
    """10. Expert ratings: proportions and agreement per rated item; the relevance item against each image's
    closed-loop check (when the bundle was built with ``--evaluate``)."""
    ratings, config = run.data.ratings, run.config
    if ratings is None:
        return
    run.results["ratings"] = ratings_block(ratings, config)
    run.results["ratings_by_source"] = source_comparison(ratings, config.confidence)
    item = config.relevance_item or run.data.relevance_item
    if item and "closed_loop_correct" in ratings.columns:
        run.results["closed_loop_agreement"] = closed_loop_agreement(
            ratings,
            item,
            threshold=config.rating_threshold,
            n_boot=config.n_boot,
            rng=np.random.default_rng(config.seed),
            confidence=config.confidence,
        )


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
    """11. Interactions with the live model (interactive conditions), per condition."""
    if run.data.interactions is not None:
        run.results["interactions"] = interactions_block(run.data.interactions, run.data.participants)


def power(run: Run) -> None:
    """12. Power: sensitivity at the analysed n, a-priori n, analytic and (``--simulate``) simulated curves."""
    tested = [t for b in run.results["constructs"].values() if (t := tests_of(b)) is not None]
    n_analysed = tested[0]["parametric"]["n"] if tested else None
    run.results["power"], run.analysis.analytic_power, run.analysis.power_curve = power_block(
        run.data, n_analysed, run.config, run.progress, run.bot_source
    )
    if run.results["power"]["simulation"]:
        run.results["warnings"] += run.results["power"]["simulation"]["notes"]
    run.results["power"]["cases"] = cases_power(run.results["constructs"], run.data, run.config)


def cases_power(blocks: dict[str, dict], data: StudyData, config: AnalysisConfig) -> dict:
    """``power.cases``: the mixed model's power by participants × cases at ``--target-effect`` (as Westfall,
    Kenny & Judd standardize it), with the variance components fitted on the first construct whose mixed
    model was fitted — this study as a pilot — else the planning defaults (``formats.planning``)."""
    fitted = next(
        ((name, b["mixed"]) for name, b in blocks.items() if "variance_components" in b.get("mixed", {})),
        None,
    )
    if fitted is None:
        components, source = VarianceComponents(), "planning defaults (formats.planning.VarianceComponents)"
    else:
        components, source = fitted_components(fitted[1]), f"fitted: {fitted[0]} ({fitted[1]['formula']})"
    k = max(len(data.conditions), 2)
    return case_power_block(
        data.design,
        config.target_effect,
        components,
        source,
        study_plan(data.hypotheses, k, config.alpha),
        k=k,
    )


def preregistration(run: Run) -> None:
    """13. The plan: preregistered or not, changed since, and every deviation (sample size, untested
    hypotheses)."""
    flow = run.analysis.flow
    if flow is not None:
        n_analysed = int(flow.loc[flow["stage"] == "analysed", "n"].iloc[0])
    elif run.analysis.scores is not None:
        n_analysed = int(run.analysis.scores["participant_id"].nunique())
    else:
        n_analysed = None
    run.results["preregistration"] = deviations(run.data, run.results["hypotheses"], n_analysed)


def reporting(run: Run) -> None:
    """14. Reporting standards (CONSORT, APA JARS): flow per arm, baseline characteristics by arm, missing data
    per item and arm, the stratum-adjusted estimates beside the unadjusted primary ones, and the sensitivity
    analysis with the excluded participants."""
    data, scores = run.data, run.analysis.scores
    if data.responses is None:
        return
    analysed = set(scores["participant_id"]) if scores is not None else set()
    results = run.results
    if data.participants is not None:
        results["participant_flow_by_arm"] = arm_flow(
            data.participants, data.responses, analysed, data.design
        )
        results["baseline_characteristics"] = baseline_characteristics(
            data.responses, data.participants, analysed, data.design, _entry_items(data)
        )
        results["sensitivity"] = with_excluded(run)
    results["missing_data"] = missingness(run.analysis.responses, data.participants, analysed, data.design)
    results["stratification"] = stratification(run)
    if data.participants is not None and scores is not None:
        languages = by_language(scores, data.participants)
        if languages is not None:  # studies in one language: no key, results.json as before languages
            results["by_language"] = languages


def _entry_items(data: StudyData) -> dict[str, bool]:
    """Entry items (answered before any condition) → categorical (labelled codes outside a construct)."""
    rows = data.responses
    entry = (
        rows[(rows["condition"] == "") & (rows["step"] == "entry")] if "step" in rows.columns else rows[:0]
    )
    anchors = data.labels.anchors
    return {
        item: item in anchors and not construct
        for item, construct in entry.drop_duplicates("item")[["item", "construct"]].itertuples(index=False)
    }


def stratification(run: Run) -> dict | None:
    """Whether randomization was stratified (participants carry a stratum), that the primary analysis is
    unadjusted, and per construct the stratum-adjusted difference (two-arm studies; None without strata)."""
    participants, scores = run.data.participants, run.analysis.scores
    if participants is None or "stratum" not in participants.columns or scores is None:
        return None
    strata = participants.set_index("participant_id")["stratum"]
    strata = strata[strata != ""]
    if strata.nunique() < 2:
        return None
    out: dict = {
        "stratified": True,
        "primary_adjusted": False,
        "n_strata": int(strata.nunique()),
        "constructs": {},
    }
    if len(run.data.conditions) > 2:
        out["note"] = "stratum-adjusted estimates are given for two-arm comparisons only"
        return out
    baseline, other = run.data.conditions
    for construct in run.results["constructs"]:
        wide = scores[scores["construct"] == construct].pivot(
            index="participant_id", columns="condition", values="score"
        )
        if {other, baseline} <= set(wide.columns):
            out["constructs"][construct] = stratum_adjusted(
                wide[other].dropna(),
                wide[baseline].dropna(),
                strata,
                run.data.design == "within",
                run.config.confidence,
            )
    return out


def with_excluded(run: Run) -> dict | None:
    """The construct tests again with every participant, exclusions not applied (a sensitivity analysis
    beside the primary one); None when nobody was excluded."""
    data = run.data
    if data.participants is None or not (data.participants["excluded"] == 1).any():
        return None
    everyone = replace(data, participants=None)
    config = replace(run.config, full=False)
    prepared, _, _ = prepare_responses(everyone, config)
    scores = construct_scores(prepared)
    blocks = construct_blocks(prepared, scores, everyone, config)
    adjust_multiplicity(blocks)
    return {
        "population": "every participant with answers; the protocol's exclusions not applied",
        "n_participants": int(scores["participant_id"].nunique()),
        "constructs": {c: tests_of(b) and {k: tests_of(b)[k] for k in ("parametric", "nonparametric")}
                       for c, b in blocks.items()},
    }  # fmt: skip


STEPS: tuple[tuple[str, Callable[[Run], None]], ...] = (
    ("exclusions", exclusions),
    ("scoring", scoring),
    ("constructs", constructs),
    ("multiplicity", multiplicity),
    ("hypotheses", hypotheses),
    ("instruments", instruments),
    ("trust calibration", trust),
    ("reliance", reliance),
    ("engagement", engagement),
    ("ratings", ratings),
    ("interactions", interactions),
    ("power", power),
    ("preregistration", preregistration),
    ("reporting standards", reporting),
)
"""The analysis, in order: ``(name, step)``; each step reads and extends the :class:`Run`."""


def initial_results(data: StudyData, config: AnalysisConfig) -> dict:
    """The ``results.json`` skeleton the steps fill."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": f"skingen-analysis {__version__}",
        "design": data.design,
        "baseline": data.baseline,
        "conditions": list(data.conditions),
        "confidence": config.confidence,
        "config": {k: v for k, v in config.__dict__.items() if k != "full"},
        "warnings": list(data.warnings),
        "participant_flow": None,
        "exclusions_applied": data.participants is not None,
        "n_participants": {},
        "n_analysed": None,
        "constructs": {},
        "hypotheses": [],
        "instruments": {},
        "trust_calibration": None,
        "reliance": None,
        "engagement": None,
        "ratings": {},
        "closed_loop_agreement": None,
        "ratings_by_source": {},
        "preregistration": None,
        "interactions": {},
        "labels": data.labels.to_json(),
        "participant_flow_by_arm": None,
        "baseline_characteristics": [],
        "missing_data": [],
        "stratification": None,
        "sensitivity": None,
    }


def run_analysis(
    data: StudyData, config: AnalysisConfig, progress: bool = False, bot_source: BotSource | None = None
) -> Analysis:
    """Run :data:`STEPS` on validated data; ``progress`` shows one tqdm bar on stderr.

    ``bot_source``: the study engine's bots when the protocol is known (``--db``, ``--protocol``; passed in by
    the command); the simulated power curve then comes from them instead of the built-in Likert generator.
    """
    run = Run(
        data, config, bot_source, progress, Analysis(initial_results(data, config), ratings=data.ratings)
    )
    for _, step in tqdm(STEPS, desc="analysis", disable=not progress, leave=False):
        step(run)
    run.analysis.results = _jsonable(run.results)
    return run.analysis
