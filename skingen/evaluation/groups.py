"""Per-skin-tone breakdown: which images belong to each Fitzpatrick group (and type), and the gap in words.

Generative and diagnostic skin models are known to do worse on darker skin, so every metric is reported for
the groups I–II, III–IV, V–VI (always listed, with null metrics when a side has too few images) and for each
single type where both sides have enough images for every metric. Torch-free.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from skingen.evaluation.inputs import EvalImage
from skingen.evaluation.names import MetricInfo
from skingen.skin_tone import FITZPATRICK_TYPES, SKIN_TONE_GROUPS


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


def gaps(
    by_group: dict[str, dict[str, object]], metrics: Sequence[MetricInfo], confidence: float
) -> dict[str, dict[str, object]]:
    """For each metric known in ≥ 2 groups that groups of different sizes may be compared on
    (``comparable``): the best and worst group, the gap, whether their intervals are apart, and a sentence.

    The plug-in FD is never compared (its bias depends on n): FD∞ and KD are, with their confidence
    intervals, and FD at equal n with the spread of its subsamples. ``distinguishable`` is True when the two
    groups' intervals do not overlap, None when one has none.
    """
    out: dict[str, dict[str, object]] = {}
    for metric in metrics:
        if not metric.comparable:
            continue
        values = {g: v for g, r in by_group.items() if (v := _value(r, metric)) is not None}
        if len(values) < 2:
            continue
        ordered = sorted(values, key=values.get, reverse=metric.higher_is_better)
        best, worst = ordered[0], ordered[-1]
        gap = abs(values[best] - values[worst])
        a, b = _interval(by_group[best], metric), _interval(by_group[worst], metric)
        apart = None if a is None or b is None else not (a[0] <= b[1] and b[0] <= a[1])
        text = (
            f"{metric.label} is best for Fitzpatrick {best} ({_with_interval(by_group[best], metric, confidence)})"
            f" and worst for {worst} ({_with_interval(by_group[worst], metric, confidence)}): a gap of "
            f"{_number(gap)}{_overlap(apart, metric)}."
        )
        out[metric.key] = {"best": best, "worst": worst, "gap": gap, "distinguishable": apart, "text": text}
    return out


def _value(result: dict[str, object], metric: MetricInfo) -> float | None:
    value = result.get(metric.key)
    if metric.interval == "spread":
        return None if value is None else value["mean"]
    return value


def _interval(result: dict[str, object], metric: MetricInfo) -> tuple[float, float] | None:
    if metric.interval == "spread":
        entry = result.get(metric.key)
        return None if entry is None else (entry["low"], entry["high"])
    ci = result.get(f"{metric.key}_ci")
    return tuple(ci) if ci else None


def _with_interval(result: dict[str, object], metric: MetricInfo, confidence: float) -> str:
    interval = _interval(result, metric)
    level = f"{round(confidence * 100)}%"
    if metric.interval == "spread":
        entry = result[metric.key]
        return (
            f"{_number(entry['mean'])} over {entry['draws']} subsamples of {entry['n_real']} real and "
            f"{entry['n_generated']} generated images, middle {level} of the draws "
            f"{_number(interval[0])}–{_number(interval[1])}"
        )
    text = f"{_number(result[metric.key])}, n={result['n_generated']} generated"
    if interval is None:
        return text
    return f"{text}, {level} CI {_number(interval[0])}–{_number(interval[1])}"


def _overlap(apart: bool | None, metric: MetricInfo) -> str:
    if apart is None:
        return " (no interval for one of the groups)"
    what = "the subsampling spreads" if metric.interval == "spread" else "the intervals"
    if apart:
        return f"; {what} do not overlap"
    return f"; {what} overlap, so the difference may be chance"


def _number(value: float) -> str:
    return f"{value:.4g}"
