"""What every metric in ``metrics.json`` is called, and which ones may be compared between skin-tone groups.

A distance is named by the feature space it was computed in, because the number means nothing without it:
``fd_clip`` is the Fréchet distance between CLIP embeddings, ``fd_dinov2`` between DINOv2 ones; only the
distance in the Inception-v3 pool3 space of clean-fid's weights (``--inception-weights``) is called ``fid``
(and ``kid``), because that is what papers call FID. For a space ``S`` (:func:`fd_key` ``F``, :func:`kd_key`
``K``) each entry of ``metrics.json`` holds:

- ``F``: the plug-in Fréchet distance (what torchmetrics / clean-fid compute); biased upward by O(d/n), so it
  is comparable only between sets of the same sizes — no interval, never in a group comparison;
- ``F_inf``, ``F_inf_ci``: the bias-corrected distance (FD∞, Chong & Forsyth 2020, by the jackknife) and its
  interval (:mod:`.distances`);
- ``F_equal_n`` (skin-tone groups only): ``{n_real, n_generated, mean, low, high, draws}``, the plug-in value
  on repeated subsamples of every group to the smallest group's sizes (``low``–``high``: the middle
  ``confidence`` of the draws — the spread of the subsampling, not a confidence interval);
- ``K``, ``K_ci``: the unbiased kernel distance (MMD², KID's kernel) and its interval.

``metrics.json``'s ``feature_spaces`` lists the spaces, and ``distances`` maps each to its keys, so a program
reads ``results["distances"]["clip"]["fd_inf"]`` instead of building names. Torch-free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

INCEPTION = "inception"
# transformers model types that are one family's encoder (the full model or its vision tower)
_FAMILY = {
    "clip_vision_model": "clip",
    "dinov2_with_registers": "dinov2",
    "siglip_vision_model": "siglip",
    "siglip2_vision_model": "siglip2",
}


@dataclass(frozen=True)
class MetricInfo:
    """A metric's key, its label in the report, its direction, and what its interval is.

    ``interval``: ``"ci"`` (a confidence interval in ``<key>_ci``), ``"spread"`` (``low``/``high`` of the
    subsampling draws inside the entry) or ``None``; ``comparable``: whether groups of different sizes may be
    compared on it (the gap sentences use only those).
    """

    key: str
    label: str
    higher_is_better: bool
    interval: str | None = "ci"
    comparable: bool = True


def feature_space(model_type: str) -> str:
    """The space's short name from the extractor's ``config.json`` ``model_type`` (``clip_vision_model`` →
    ``clip``); "inception" is reserved for clean-fid's network."""
    name = _FAMILY.get(model_type, model_type)
    name = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "features"
    return f"{name}_features" if name == INCEPTION else name


def fd_key(space: str) -> str:
    return "fid" if space == INCEPTION else f"fd_{space}"


def kd_key(space: str) -> str:
    return "kid" if space == INCEPTION else f"kd_{space}"


def distance_keys(space: str) -> dict[str, str]:
    """``{"fd", "fd_inf", "fd_equal_n", "kd"}`` → the keys of ``space`` (as ``metrics.json``'s ``distances``)."""
    fd, kd = fd_key(space), kd_key(space)
    return {"fd": fd, "fd_inf": f"{fd}_inf", "fd_equal_n": f"{fd}_equal_n", "kd": kd}


def distance_metrics(space: str) -> tuple[MetricInfo, ...]:
    keys = distance_keys(space)
    fd = "FID" if space == INCEPTION else f"FD ({space})"
    kd = "KID" if space == INCEPTION else f"KD ({space})"
    return (
        MetricInfo(keys["fd"], f"{fd}, plug-in", False, interval=None, comparable=False),
        MetricInfo(keys["fd_inf"], f"{fd}∞", False),
        MetricInfo(keys["fd_equal_n"], f"{fd} at equal n", False, interval="spread"),
        MetricInfo(keys["kd"], kd, False),
    )


PER_IMAGE_METRICS = (
    MetricInfo("precision", "precision", True),
    MetricInfo("recall", "recall", True),
    MetricInfo("density", "density", True),
    MetricInfo("coverage", "coverage", True),
    MetricInfo("clip_score", "CLIP score", True),
    MetricInfo("diversity", "diversity", True),
    MetricInfo("closed_loop_accuracy", "closed-loop accuracy", True),
)


def metric_infos(spaces: tuple[str, ...] | list[str]) -> tuple[MetricInfo, ...]:
    """Every metric of an evaluation in these feature spaces, distances first."""
    return (*(m for space in spaces for m in distance_metrics(space)), *PER_IMAGE_METRICS)


def headline_keys(spaces: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The numbers a bundle's manifest and ``skingen evaluate``'s summary line carry."""
    return tuple(m.key for m in metric_infos(spaces) if m.interval != "spread")
