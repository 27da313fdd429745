"""Generated vs real images in the expert ratings, with raters and images as random effects.

Pooled Wilson intervals treat every rating as independent, yet one rater's ratings share that rater's
leniency and one image's ratings share that image; a difference between image sources then looks more certain
than it is (the same argument as for participants and cases, Judd, Westfall & Kenny 2012). Each rated item is
modelled with the crossed linear mixed model of :func:`analysis.mixed.linear.fit_linear`:

    rating ~ source + (1 | image) + (1 + source | rater)

The fitter's roles are filled so that this is its maximal model: its ``participant`` is the **image** (an
image has one source, so ``design="between"``: image intercepts only) and its ``case`` is the **rater** (every
rater rates images of each source: rater intercepts and rater × source slopes). Simplification (correlations,
then the smallest slope) follows the fitter's preregistered rule when the fit is singular. Sources are the
export's ``image_kind`` (``case_photo``, ``retrieved``, ``generated``), the real case photos the reference
level; yes/no items (0/1) are modelled on the probability scale (a linear probability model), Likert items in
scale points. Contrasts are ``generated − case_photo`` etc. with Satterthwaite df.
"""

from __future__ import annotations

import re

import pandas as pd

from analysis.mixed.linear import fit_linear
from analysis.mixed.result import MixedModelError

SOURCES = ("case_photo", "retrieved", "generated")
SOURCE_TEXT = {
    "case_photo": "real case photos",
    "retrieved": "retrieved real photos",
    "generated": "generated images",
}


def _roles(text: str) -> str:
    """The fitter's role names as what they are here: its participants are images, its cases raters, its
    conditions image sources."""
    for role, name in (("participant", "image"), ("case", "rater"), ("condition", "source")):
        text = re.sub(rf"\b{role}(s?)\b", rf"{name}\1", text)
    return text


def _source(ratings: pd.DataFrame) -> pd.Series | None:
    if "image_kind" in ratings.columns and (ratings["image_kind"] != "").all():
        return ratings["image_kind"]
    if "generated" in ratings.columns:
        generated = pd.to_numeric(ratings["generated"], errors="coerce")
        if generated.notna().all():
            return generated.map({1: "generated", 0: "case_photo"})
    return None


def source_comparison(ratings: pd.DataFrame, confidence: float = 0.95) -> dict[str, dict]:
    """Per rated item: the mixed model's source contrasts, or ``{skipped: reason}``.

    Returns ``{item: {model, formula, backend, df_method, sources, contrasts{"b - a": {estimate, se, df,
    statistic, p, ci}}, variance_components, singular, simplified, notes, n_obs, n_images, n_raters}}``;
    ``{}`` when the ratings mix no two sources.
    """
    source = _source(ratings)
    if source is None or source.nunique() < 2:
        return {}
    sources = [s for s in SOURCES if s in set(source)]
    frame = ratings.assign(condition=source, participant=ratings["image_id"], case=ratings["rater_id"])
    out: dict[str, dict] = {}
    for item, rows in frame.groupby("item", sort=True):
        try:
            fit = fit_linear(
                rows.rename(columns={"value": "y"}),
                design="between",
                conditions=sources,
                confidence=confidence,
            )
        except MixedModelError as exc:
            out[str(item)] = {"skipped": str(exc)}
            continue
        record = fit.to_record()
        out[str(item)] = {
            "model": "rating ~ source + (1 | image) + (1 + source | rater), linear mixed model",
            "formula": _roles(record["formula"]),
            "backend": record["backend"],
            "df_method": record["df_method"],
            "sources": sources,
            "contrasts": record["contrasts"],
            "variance_components": {_roles(k): v for k, v in record["variance_components"].items()},
            "singular": record["singular"],
            "simplified": [_roles(step) for step in record["simplified"]],
            "notes": list(record["notes"]),
            "n_obs": record["n_obs"],
            "n_images": record["n_participants"],
            "n_raters": record["n_cases"],
        }
    return out
