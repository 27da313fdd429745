"""The analysis' options in one frozen object: the CLI and the dashboard build it, every step reads it, and
``results.json`` records it."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    relevance_item: str | None = (
        None  # default: the protocol's rating.relevance_item (the export's study.csv)
    )
    n_boot: int = 1000
    seed: int = 0
    simulate: bool = False
    sim_sizes: tuple[int, ...] = (10, 20, 30, 40, 60, 80)
    sim_effects: tuple[float, ...] = (0.3, 0.5, 0.8)
    sim_reps: int = 100
    sim_population: int | None = None  # bots per planted effect (default: max(4 × largest n, 200))
    mixed_backend: str = "python"  # the crossed mixed models' backend: python | r (analysis.mixed.linear)
    position: bool = False  # the mixed model adds a trial-position term (learning over cases)
    full: bool = field(default=True, repr=False)  # False: only what the power simulation needs
