"""Per-skin-tone breakdown: which images belong to each Fitzpatrick group (and type), and the gap in words.

Generative and diagnostic skin models are known to do worse on darker skin, so every metric is reported for
the groups I–II, III–IV, V–VI (always listed, with null metrics when a side has too few images) and for each
single type where both sides have enough images for every metric. Torch-free.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from skingen.evaluation.inputs import EvalImage
from skingen.skin_tone import FITZPATRICK_TYPES, SKIN_TONE_GROUPS


@dataclass(frozen=True)
class MetricInfo:
    key: str
    label: str
    higher_is_better: bool


METRICS = (
    MetricInfo("fid", "FID", False),
    MetricInfo("kid", "KID", False),
    MetricInfo("precision", "precision", True),
    MetricInfo("recall", "recall", True),
    MetricInfo("density", "density", True),
    MetricInfo("coverage", "coverage", True),
    MetricInfo("clip_score", "CLIP score", True),
    MetricInfo("diversity", "diversity", True),
    MetricInfo("closed_loop_accuracy", "closed-loop accuracy", True),
)


@dataclass(frozen=True)
class Subset:
    """Indices into the real and generated image lists; ``real`` is None when the real set has no labels."""

    name: str
    real: list[int] | None
    generated: list[int]


def group_subsets(real: Sequence[EvalImage] | None, generated: Sequence[EvalImage]) -> Iterator[Subset]:
    """One subset per Fitzpatrick group, in order I-II, III-IV, V-VI (``real=None``: real set unlabelled)."""
    for group in SKIN_TONE_GROUPS:
        yield Subset(
            group,
            None if real is None else [i for i, e in enumerate(real) if e.skin_tone_group == group],
            [i for i, e in enumerate(generated) if e.skin_tone_group == group],
        )


def type_subsets(
    real: Sequence[EvalImage] | None, generated: Sequence[EvalImage], min_n: int
) -> Iterator[Subset]:
    """One subset per single Fitzpatrick type with at least ``min_n`` images on each side."""
    if real is None:
        return
    for tone in FITZPATRICK_TYPES:
        subset = Subset(
            tone,
            [i for i, e in enumerate(real) if e.skin_tone == tone],
            [i for i, e in enumerate(generated) if e.skin_tone == tone],
        )
        if min(len(subset.real), len(subset.generated)) >= min_n:
            yield subset


def gaps(by_group: dict[str, dict[str, object]], confidence: float) -> dict[str, dict[str, object]]:
    """For each metric known in ≥ 2 groups: the best and worst group, the gap, and a sentence saying so.

    The sentence says whether the two groups' intervals overlap (a gap inside overlapping intervals may be
    chance); KID, which has no bootstrap interval, is compared by its spread over subsets instead.
    """
    out: dict[str, dict[str, object]] = {}
    for metric in METRICS:
        values = {g: r[metric.key] for g, r in by_group.items() if r.get(metric.key) is not None}
        if len(values) < 2:
            continue
        ordered = sorted(values, key=values.get, reverse=metric.higher_is_better)
        best, worst = ordered[0], ordered[-1]
        gap = abs(values[best] - values[worst])
        text = (
            f"{metric.label} is best for Fitzpatrick {best} ({_with_interval(by_group[best], metric.key, confidence)})"
            f" and worst for {worst} ({_with_interval(by_group[worst], metric.key, confidence)}): a gap of "
            f"{_number(gap)}{_overlap(by_group[best], by_group[worst], metric.key)}."
        )
        out[metric.key] = {"best": best, "worst": worst, "gap": gap, "text": text}
    return out


def _interval(result: dict[str, object], key: str) -> tuple[float, float] | None:
    if key == "kid":
        if result.get("kid_std") is None:
            return None
        return result["kid"] - result["kid_std"], result["kid"] + result["kid_std"]
    ci = result.get(f"{key}_ci")
    return tuple(ci) if ci else None


def _with_interval(result: dict[str, object], key: str, confidence: float) -> str:
    interval = _interval(result, key)
    text = f"{_number(result[key])}, n={result['n_generated']} generated"
    if interval is None:
        return text
    name = "± its spread over subsets" if key == "kid" else f"{round(confidence * 100)}% CI"
    return f"{text}, {name} {_number(interval[0])}–{_number(interval[1])}"


def _overlap(best: dict[str, object], worst: dict[str, object], key: str) -> str:
    a, b = _interval(best, key), _interval(worst, key)
    if a is None or b is None:
        return " (no interval for one of the groups)"
    if a[0] <= b[1] and b[0] <= a[1]:
        return "; the intervals overlap, so the difference may be chance"
    return "; the intervals do not overlap"


def _number(value: float) -> str:
    return f"{value:.4g}"
