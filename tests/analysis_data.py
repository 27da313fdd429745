"""Synthetic study exports for the analysis tests (export format of docs/export-format.md, as strings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.power import LikertGenerator

BASELINE, VISUAL = "baseline_text", "skingen_visual"


def _case_rows(likert: pd.DataFrame, rng: np.random.Generator, n_cases: int = 4) -> pd.DataFrame:
    """Per participant × condition: diagnosis answers (free text + derived 0/1 rows) and per-case trust,
    with the last case's AI output deliberately wrong. Visual raises agreement on wrong cases."""
    blocks = likert[["participant_id", "arm", "sequence", "period", "condition"]].drop_duplicates()
    rows = []
    for rec in blocks.itertuples(index=False):
        for c in range(n_cases):
            ai_correct = int(c < n_cases - 1)
            visual = rec.condition == VISUAL
            agrees = int(rng.random() < (0.9 if ai_correct else (0.8 if visual else 0.2)))
            trust = int(np.clip(round(4.5 + (0.8 if ai_correct else -0.8) + rng.normal(0, 1)), 1, 7))
            base = {**rec._asdict(), "case_id": f"case{c}", "ai_correct": ai_correct, "reverse_coded": 0}
            rows += [
                {
                    **base,
                    "item": "dx",
                    "construct": "",
                    "value": VISUAL if agrees else "eczema",
                    "scale_min": "",
                    "scale_max": "",
                },
                {
                    **base,
                    "item": "dx__agrees_ai",
                    "construct": "agreement_with_ai",
                    "value": agrees,
                    "scale_min": 0,
                    "scale_max": 1,
                },
                {
                    **base,
                    "item": "dx__correct",
                    "construct": "diagnostic_accuracy",
                    "value": agrees * ai_correct,
                    "scale_min": 0,
                    "scale_max": 1,
                },
                {
                    **base,
                    "item": "case_trust",
                    "construct": "trust",
                    "value": trust,
                    "scale_min": 1,
                    "scale_max": 7,
                },
            ]
    return pd.DataFrame(rows)


def make_study(n: int = 40, design: str = "within", effect: float = 0.5, seed: int = 0, n_excluded: int = 3):
    """(responses, participants, ratings) frames: ``n`` analysable participants plus ``n_excluded`` excluded
    ones whose answers are all 1 (so an analysis that forgets the exclusions is visibly off)."""
    rng = np.random.default_rng(seed)
    gen = LikertGenerator(
        design=design, constructs=("trust", "comprehension"), baseline=BASELINE, compared=VISUAL
    )
    likert = gen(n + n_excluded, effect, rng)
    excluded_ids = sorted(likert["participant_id"].unique())[-n_excluded:] if n_excluded else []
    likert.loc[likert["participant_id"].isin(excluded_ids), "value"] = 1.0
    responses = pd.concat([likert, _case_rows(likert, rng)], ignore_index=True)
    responses["attention_check"] = 0
    entry = pd.DataFrame(
        {
            "participant_id": sorted(likert["participant_id"].unique()),
            "condition": "",
            "item": "free_comment",
            "construct": "",
            "value": "nice study, thanks!",
        }
    )
    responses = pd.concat([responses, entry], ignore_index=True)
    responses["rt_ms"] = rng.integers(800, 9000, len(responses))
    ids = sorted(likert["participant_id"].unique())
    reasons = {
        pid: r
        for pid, r in zip(
            excluded_ids, ["attention_check", "too_fast;attention_check", "incomplete"], strict=False
        )
    }
    participants = pd.DataFrame(
        {
            "participant_id": [*ids, "P99999"],
            "arm": [likert.loc[likert["participant_id"] == p, "arm"].iloc[0] for p in ids] + [""],
            "status": ["dropped" if reasons.get(p) == "incomplete" else "completed" for p in ids]
            + ["consented"],
            "excluded": [int(p in reasons) for p in ids] + [1],
            "exclusion_reasons": [reasons.get(p, "") for p in ids] + ["incomplete"],
        }
    )
    return responses.astype(str).replace({"nan": ""}), participants.astype(str), make_ratings(seed)


def make_ratings(seed: int = 0, n_images: int = 30, n_raters: int = 3) -> pd.DataFrame:
    """Dermatologists' ratings: binary ``relevant`` (high prevalence) and ordinal ``quality`` (1–5)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_images):
        skin_condition = "psoriasis" if i % 2 else "eczema"
        truth = rng.normal(3.5 if skin_condition == "psoriasis" else 3.0, 0.8)
        for r in range(n_raters):
            quality = int(np.clip(round(truth + rng.normal(0, 0.5)), 1, 5))
            rows.append((f"D{r}", f"img{i:03d}", "quality", quality, skin_condition))
            rows.append((f"D{r}", f"img{i:03d}", "relevant", int(rng.random() < 0.85), skin_condition))
    return pd.DataFrame(rows, columns=["rater_id", "image_id", "item", "value", "skin_condition"]).astype(str)


def write_study(folder: Path, **kwargs) -> dict[str, Path]:
    """Write the three CSVs into ``folder`` and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in zip(("responses", "participants", "ratings"), make_study(**kwargs), strict=True):
        paths[name] = folder / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths
