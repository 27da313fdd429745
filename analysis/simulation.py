"""Simulation-based power: which generator makes the simulated studies, and the curve they give.

When the caller passes a :class:`BotSource` (the top-layer command does, from the study engine's own bots, when
the protocol is known), it runs the studies; otherwise the in-process :class:`analysis.power.LikertGenerator`.
The analysis never imports the study engine: the source comes in as a parameter. Every simulated study goes
through the same validation, scoring and testing path as real data (:func:`analysis.constructs.primary_result`).
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from analysis.config import AnalysisConfig
from analysis.constructs import primary_result
from analysis.load import StudyData
from analysis.power import Generator, LikertGenerator, power_curve
from analysis.scores import confirmatory_constructs


class BotSource(Protocol):
    """Bots that run the real study for the simulated power curve, given by the caller (the study engine's, via
    :func:`app.sources.engine_bots`) → ``(generator, None)``, or ``(None, reason)`` when they cannot serve."""

    def __call__(
        self, design: str, construct: str | None, *, population: int | None, seed: int, progress: bool
    ) -> tuple[Generator | None, str | None]: ...


def primary_construct(data: StudyData, config: AnalysisConfig) -> str | None:
    """The construct whose power is simulated: the first confirmatory construct (``--constructs``, else the
    data's in :func:`formats.contract.construct_order`); None without either."""
    if config.constructs:
        return config.constructs[0]
    if data.responses is None:
        return None
    family = confirmatory_constructs(data.responses, None)
    return family[0] if family else None


def simulation_generator(
    data: StudyData, config: AnalysisConfig, bot_source: BotSource | None, progress: bool
) -> tuple[Generator, dict, list[str]]:
    """Pick the power-simulation generator → ``(generator, description, warnings)``.

    With a ``bot_source`` (the protocol known: ``--db`` or ``--protocol``), its bots plant the effect on the first
    confirmatory construct; without one (CSV input), or if the bots cannot serve this analysis, the fast
    in-process :class:`LikertGenerator`.
    """
    construct = primary_construct(data, config)
    notes: list[str] = []
    if bot_source is not None:
        bots, reason = bot_source(
            data.design,
            construct,
            population=config.sim_population,
            seed=config.seed,
            progress=progress,
        )
        if bots is not None:
            return bots, {"kind": "engine_bots", "construct": bots.construct}, notes
        notes.append(f"power simulation uses the built-in Likert generator, not the study's bots: {reason}")
    baseline = data.baseline or LikertGenerator.baseline
    others = [c for c in data.conditions if c != baseline] or [LikertGenerator.compared]
    generator = LikertGenerator(
        design=data.design,
        constructs=(construct,) if construct else LikertGenerator.constructs,
        baseline=baseline,
        compared=others[0],
        others=tuple(others[1:]),
    )
    return generator, {"kind": "likert", "construct": generator.constructs[0]}, notes


def simulated_curve(
    data: StudyData,
    config: AnalysisConfig,
    bot_source: BotSource | None,
    progress: bool,
) -> tuple[dict, pd.DataFrame]:
    """The simulated power curve (``--simulate``): simulated studies through the full analysis path
    (:func:`analysis.constructs.primary_result`). The effect is planted on one condition (``compared`` of the
    generator) and the power is that of its Holm-adjusted comparison with the baseline (k = 2: its p): with
    k > 2 arms the smallest pairwise effect of interest."""
    generator, info, notes = simulation_generator(data, config, bot_source, progress)
    bots = info["kind"] == "engine_bots"

    def analyse(frame: pd.DataFrame) -> dict:
        return primary_result(
            frame, generator.design, generator.conditions, generator.compared, info["construct"]
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
            config.confidence,
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
