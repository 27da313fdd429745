"""Participants by the language they took the study in (participants.csv ``language``): how many were
analysed in each, and each construct's mean score per language and condition.

Descriptive only — languages are not randomized, so a difference between them is not an effect of the
language; the table lets a reader see whether one language's participants answered differently. Studies in
one language (and exports from before the column existed) get no block, so their results are unchanged.
"""

from __future__ import annotations

import pandas as pd


def by_language(scores: pd.DataFrame, participants: pd.DataFrame) -> dict | None:
    """``{"n_analysed": {language: n}, "scores": [records]}``, or None with fewer than two languages.

    ``scores``: construct scores (participant_id, condition, construct, score) of the analysed participants;
    ``participants``: participants.csv with ``language``. Each record: language, construct, condition, n
    (participants with a score), mean and sd (sample SD, ddof 1; None for a single participant).
    """
    if "language" not in participants.columns:
        return None
    language = participants.set_index("participant_id")["language"].astype(str)
    rows = scores.assign(language=scores["participant_id"].map(language))
    if rows["language"].nunique() < 2:
        return None
    analysed = rows.drop_duplicates("participant_id")["language"].value_counts().sort_index()
    records = []
    for (lang, construct, condition), group in rows.groupby(
        ["language", "construct", "condition"], sort=True
    ):
        values = group["score"].dropna()
        records.append(
            {
                "language": lang,
                "construct": construct,
                "condition": condition,
                "n": int(values.size),
                "mean": float(values.mean()) if values.size else None,
                "sd": float(values.std(ddof=1)) if values.size > 1 else None,
            }
        )
    return {"n_analysed": {str(k): int(v) for k, v in analysed.items()}, "scores": records}
