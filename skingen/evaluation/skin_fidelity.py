"""Skin-tone fidelity: does a generated image show the skin tone its prompt asked for?

Every per-group metric groups generated images by the *requested* Fitzpatrick type. If the generator drew
type II skin for a "type V" prompt, the V–VI row describes light skin. So each generated image's skin tone is
measured (:func:`skingen.skin_tone.estimate_skin_tone` on the skin-coloured pixels around the lesion: ITA,
Chardon et al. 1991) and compared with the request, per requested group: the distribution of measured groups
and the agreement (proportion with a Wilson interval), and overall Cohen's κ between requested and measured
group with its large-sample interval (Fleiss, Cohen & Everitt 1969; the same as statsmodels' ``cohens_kappa``).

ITA from RGB photos is an approximation (lighting and white balance move it), so κ measures agreement with
this estimator, not with a dermatologist. Torch-free; SciPy (the normal quantile) is imported when used, so
``skingen`` loads without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skingen.skin_tone import SKIN_TONE_GROUPS, estimate_skin_tone, skin_tone_group
from skingen.sources import load_image


@dataclass(frozen=True)
class MeasuredTone:
    """One image's measured Fitzpatrick type and ITA (both None when no skin-coloured pixel was found)."""

    fitzpatrick: str | None
    ita: float | None

    @property
    def group(self) -> str | None:
        return skin_tone_group(self.fitzpatrick)


def measure_tones(paths: Sequence[Path]) -> list[MeasuredTone]:
    """The measured skin tone of each image (an unreadable image raises, naming it)."""
    out = []
    for path in paths:
        try:
            estimate = estimate_skin_tone(load_image(path, "generated image"), skin_only=True)
        except ValueError:
            out.append(MeasuredTone(None, None))
            continue
        out.append(MeasuredTone(estimate.fitzpatrick, estimate.ita))
    return out


def wilson_interval(successes: int, n: int, confidence: float) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (None for n = 0)."""
    if n == 0:
        return None
    z = _normal_quantile(confidence)
    p = successes / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return float(centre - half), float(centre + half)


def cohens_kappa(table: np.ndarray, confidence: float) -> dict[str, float | list[float] | None]:
    """Cohen's κ of a square agreement table, its large-sample standard error (Fleiss, Cohen & Everitt 1969)
    and normal interval; κ is None when chance agreement is 1 (one category only)."""
    n = table.sum()
    p = table / n
    rows, cols = p.sum(1), p.sum(0)
    observed, chance = np.trace(p), float(rows @ cols)
    if n == 0 or chance >= 1:
        return {"kappa": None, "se": None, "ci": None}
    kappa = (observed - chance) / (1 - chance)
    diagonal = np.diag(p) * (1 - (rows + cols) * (1 - kappa)) ** 2
    off = p * (cols[:, None] + rows[None, :]) ** 2
    np.fill_diagonal(off, 0)
    variance = (diagonal.sum() + (1 - kappa) ** 2 * off.sum() - (kappa - chance * (1 - kappa)) ** 2) / (
        (1 - chance) ** 2 * n
    )
    se = float(np.sqrt(max(variance, 0.0)))
    z = _normal_quantile(confidence)
    return {"kappa": float(kappa), "se": se, "ci": [float(kappa - z * se), float(kappa + z * se)]}


def skin_tone_fidelity(
    requested: Sequence[str | None], measured: Sequence[MeasuredTone], confidence: float
) -> dict[str, object]:
    """``metrics.json``'s ``skin_tone_fidelity``: per requested group ``{n, measured: {group: count,
    "unmeasured": count}, agreement, agreement_ci}``, and overall ``n`` (images with a requested tone),
    ``n_measured``, ``agreement``, ``agreement_ci``, ``kappa``, ``kappa_se``, ``kappa_ci``, ``table``
    (rows requested, columns measured, in ``groups`` order; unmeasured images left out)."""
    groups = list(SKIN_TONE_GROUPS)
    table = np.zeros((len(groups), len(groups)), dtype=int)
    by_group: dict[str, dict[str, object]] = {}
    for group in groups:
        mine = [m for r, m in zip(requested, measured, strict=True) if skin_tone_group(r) == group]
        counts = {g: sum(m.group == g for m in mine) for g in groups}
        known = sum(counts.values())
        table[groups.index(group)] = [counts[g] for g in groups]
        by_group[group] = {
            "n": len(mine),
            "measured": {**counts, "unmeasured": len(mine) - known},
            "agreement": counts[group] / known if known else None,
            "agreement_ci": wilson_interval(counts[group], known, confidence),
        }
    total = int(table.sum())
    kappa = cohens_kappa(table, confidence) if total else {"kappa": None, "se": None, "ci": None}
    return {
        "n": sum(entry["n"] for entry in by_group.values()),
        "n_measured": total,
        "groups": groups,
        "table": table.tolist(),
        "agreement": float(np.trace(table) / total) if total else None,
        "agreement_ci": wilson_interval(int(np.trace(table)), total, confidence),
        "kappa": kappa["kappa"],
        "kappa_se": kappa["se"],
        "kappa_ci": kappa["ci"],
        "by_requested_group": by_group,
    }


def _normal_quantile(confidence: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(0.5 + confidence / 2))
