"""The analysis as numbered steps over validated study data; produces the ``results.json`` structure.

``run_analysis`` reads like the paper's methods section: 1. exclusions, 2. scoring, 3. per-construct
statistics, 4. multiplicity, 5. trust calibration, 6. expert ratings, 7. power. Each step is a small
function returning plain records, so the writers and figures only format what is computed here.
"""

from __future__ import annotations

import math
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
from analysis.power import (
    Generator,
    LikertGenerator,
    analytic_power_curve,
    power_curve,
    required_n,
    sensitivity,
)
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
from analysis.trust import trust_calibration

if TYPE_CHECKING:  # the study engine is imported lazily, only where the bots run
    from study.protocol import LoadedProtocol

SCHEMA_VERSION = 1


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
    block["alpha_ci95"] = None if alpha is None else alpha["ci95"]
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


def analyse_constructs(
    responses: pd.DataFrame,
    scores: pd.DataFrame,
    data: StudyData,
    config: AnalysisConfig,
    progress: tqdm | None = None,
) -> dict[str, dict]:
    """Steps 3–4: every confirmatory construct, then Holm-adjusted p across the family."""
    family = confirmatory_constructs(responses, list(config.constructs) if config.constructs else None)
    ranges = construct_ranges(responses)
    blocks = {}
    for construct in family:
        if progress is not None:
            progress.set_postfix_str(construct)
        blocks[construct] = construct_block(responses, scores, construct, data, config, ranges.loc[construct])
    tested = [c for c in family if "parametric" in blocks[c]]
    for kind in ("parametric", "nonparametric"):
        adjusted = holm([blocks[c][kind]["p"] for c in tested])
        for construct, p in zip(tested, adjusted, strict=True):
            blocks[construct][kind]["p_holm"] = p
    return blocks


def primary_result(
    responses: pd.DataFrame, design: str, baseline: str, visual: str, construct: str | None = None
) -> dict:
    """The full scoring and testing path on one simulated study: p and effect of ``construct`` (default: the
    first confirmatory construct of the data)."""
    data = build_study_data(responses, design=design, baseline=baseline, visual=visual)
    config = AnalysisConfig(full=False, constructs=(construct,) if construct else None)
    prepared, _, _ = prepare_responses(data, config)
    blocks = analyse_constructs(prepared, construct_scores(prepared), data, config)
    first = blocks[next(iter(blocks))]["parametric"]
    return {"p": first["p"], "effect": first["effect_size"]["value"]}


def primary_construct(data: StudyData, config: AnalysisConfig) -> str | None:
    """The construct whose power is simulated: the first confirmatory construct (``--constructs`` or, in the
    data, every construct but derived ones, sorted); None without either."""
    if config.constructs:
        return config.constructs[0]
    if data.responses is None:
        return None
    family = confirmatory_constructs(data.responses, None)
    return family[0] if family else None


def simulation_generator(
    data: StudyData, config: AnalysisConfig, protocol: LoadedProtocol | None, progress: bool
) -> tuple[Generator, dict, list[str]]:
    """Pick the power-simulation generator → ``(generator, description, warnings)``.

    With the protocol known (``--db`` or ``--protocol``), the study engine's bots
    (:class:`study.botpower.EngineBotGenerator`) plant the effect on the first confirmatory construct; without
    it (CSV input), or if the bots cannot serve this analysis, the fast in-process :class:`LikertGenerator`.
    """
    construct = primary_construct(data, config)
    notes: list[str] = []
    if protocol is not None:
        reason = None
        try:
            from study.botpower import EngineBotGenerator, plantable_constructs  # lazy: the study engine
        except ImportError as exc:  # pragma: no cover - the study package ships with the analysis
            reason = f"the study engine cannot be imported ({exc})"
        else:
            plantable = plantable_constructs(protocol)
            if protocol.protocol.design != data.design:
                reason = (
                    f"the protocol's design is {protocol.protocol.design!r}, the analysis' {data.design!r}"
                )
            elif construct is not None and construct not in plantable:
                reason = (
                    f"construct {construct!r} is not a Likert construct asked under both conditions "
                    f"(the bots can plant effects on: {', '.join(plantable) or 'none'})"
                )
            elif not plantable:
                reason = "the protocol has no Likert construct asked under both conditions"
        if reason is None:
            bots = EngineBotGenerator(
                protocol, construct, pool_size=config.sim_population, seed=config.seed, progress=progress
            )
            return bots, {"kind": "engine_bots", "construct": bots.construct}, notes
        notes.append(f"power simulation uses the built-in Likert generator, not the study's bots: {reason}")
    generator = LikertGenerator(
        design=data.design,
        constructs=(construct,) if construct else LikertGenerator.constructs,
        baseline=data.baseline,
        visual=data.visual or "visual",
    )
    return generator, {"kind": "likert", "construct": generator.constructs[0]}, notes


def simulated_curve(
    data: StudyData, config: AnalysisConfig, protocol: LoadedProtocol | None, progress: bool
) -> tuple[dict, pd.DataFrame]:
    """The simulated power curve (``--simulate``): simulated studies through the full analysis path."""
    generator, info, notes = simulation_generator(data, config, protocol, progress)
    bots = info["kind"] == "engine_bots"

    def analyse(frame: pd.DataFrame) -> dict:
        return primary_result(
            frame, generator.design, generator.baseline, generator.visual, info["construct"]
        )

    if bots:
        generator.prepare(config.sim_effects, max(config.sim_sizes))  # bot populations, one per effect
    try:
        curve = power_curve(
            generator,
            analyse,
            config.sim_sizes,
            config.sim_effects,
            config.sim_reps,
            config.alpha,
            config.seed,
            progress,
        )
        details = None
        if bots:
            # Studies are sampled from one finite population per effect, so the curve is conditional on the
            # effect that population realized; report it beside the planted one.
            realized = {e: analyse(generator.population(e))["effect"] for e in config.sim_effects}
            curve["population_effect"] = curve["effect"].map(realized)
            details = {**generator.describe(), "population_effect": {str(e): v for e, v in realized.items()}}
    finally:
        if bots:
            generator.close()
    block = {
        "generator": repr(generator),
        "generator_kind": info["kind"],
        "construct": info["construct"],
        "generator_details": details,
        "notes": notes,
        "curve": curve.to_dict(orient="records"),
    }
    return block, curve


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
        block["simulation"], curve = simulated_curve(data, config, protocol, progress)
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


def run_analysis(
    data: StudyData, config: AnalysisConfig, progress: bool = False, protocol: LoadedProtocol | None = None
) -> Analysis:
    """Run every step on validated data; ``progress`` shows a tqdm bar on stderr.

    ``protocol``: the study's protocol when known (``--db``, ``--protocol``); the simulated power curve then
    comes from the study engine's bots instead of the built-in Likert generator.
    """
    steps = tqdm(total=7, desc="analysis", disable=not progress, leave=False)
    results: dict = {
        "schema_version": SCHEMA_VERSION,
        "tool": f"skingen-analysis {__version__}",
        "design": data.design,
        "baseline": data.baseline,
        "visual": data.visual,
        "config": {k: v for k, v in config.__dict__.items() if k != "full"},
        "warnings": list(data.warnings),
        "participant_flow": None,
        "exclusions_applied": data.participants is not None,
        "n_participants": {},
        "constructs": {},
        "trust_calibration": None,
        "ratings": {},
    }
    analysis = Analysis(results, ratings=data.ratings)
    n_analysed = None
    if data.responses is not None:
        steps.set_description("exclusions")
        responses, flow, notes = prepare_responses(data, config)
        results["warnings"] += notes
        results["participant_flow"] = None if flow is None else flow.to_dict(orient="records")
        steps.update()
        steps.set_description("scores")
        scores = construct_scores(responses)
        per_condition = scores.groupby("condition")["participant_id"].nunique()
        results["n_participants"] = {str(k): int(v) for k, v in per_condition.items()}
        steps.update()
        steps.set_description("constructs")
        results["constructs"] = analyse_constructs(responses, scores, data, config, steps)
        steps.update(2)
        tested = [b for b in results["constructs"].values() if "parametric" in b]
        n_analysed = tested[0]["parametric"]["n"] if tested else None
        for name, block in results["constructs"].items():
            if block.get("dropped_incomplete"):
                results["warnings"].append(
                    f"{name}: {block['dropped_incomplete']} participant(s) without both "
                    "conditions are left out of the paired analysis"
                )
        steps.set_description("trust calibration")
        results["trust_calibration"] = trust_calibration(
            responses, data.design, data.baseline, data.visual, config.trust_construct, config.confidence
        )
        analysis.responses, analysis.scores, analysis.flow = responses, scores, flow
    steps.update()
    if data.ratings is not None:
        steps.set_description("expert ratings")
        results["ratings"] = ratings_block(data.ratings, config)
    steps.update()
    steps.set_description("power")
    results["power"], analysis.analytic_power, analysis.power_curve = power_block(
        data, n_analysed, config, progress, protocol
    )
    if results["power"]["simulation"]:
        results["warnings"] += results["power"]["simulation"]["notes"]
    steps.update()
    steps.close()
    analysis.results = _jsonable(results)
    return analysis
