"""Reporting standards (CONSORT 2010, APA JARS): participant flow per arm, baseline characteristics by arm,
and missing data per item and arm.

An arm is the allocated condition in a between design and the condition order (``sequence``) in a within
design — the case-set rotation inside an order is a counterbalancing detail, not an arm a reader compares.
Everything here is descriptive and comes from the export's ``participants`` and (raw, before exclusions)
``responses`` tables; the document shows arms and answers by their protocol labels.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from formats.status import ACTIVE, COMPLETED, DROPPED

NOT_ALLOCATED = ""
STEP_PATTERNS = (
    (re.compile(r"^p(\d+)\.t(\d+)$"), "part {0}, case {1}"),
    (re.compile(r"^p(\d+)\.post$"), "part {0} questions"),
)
STEP_WORDS = {"consent": "consent", "entry": "entry questions", "post": "final questions"}


def step_text(step: str) -> str:
    """A step key of the participant's path in words: ``p1.t03`` → 'part 1, case 3'."""
    for pattern, text in STEP_PATTERNS:
        match = pattern.match(step)
        if match:
            return text.format(*(int(g) for g in match.groups()))
    return STEP_WORDS.get(step, step.replace("_", " ") or "unknown step")


def arm_of(participants: pd.DataFrame, design: str) -> pd.Series:
    """Each participant's arm: the allocated condition (between) or condition order (within); '' if none."""
    column = "sequence" if design == "within" and "sequence" in participants.columns else "arm"
    if column not in participants.columns:
        return pd.Series(NOT_ALLOCATED, index=participants.index)
    return participants[column].fillna("").astype(str)


def arm_flow(
    participants: pd.DataFrame, responses: pd.DataFrame, analysed_ids: set[str], design: str
) -> list[dict]:
    """CONSORT flow per arm: ``[{arm, stage, n}]``, stages in order ``consented`` (all participants),
    ``allocated``, ``started`` (answered a trial), ``dropped out: <step>`` (status dropped, by the step they
    stopped at), ``in progress`` (active at export), ``completed``, ``excluded: <reason>`` (one row per reason:
    two reasons count twice), ``excluded`` (participants), ``analysed``. Participants never allocated
    appear under arm '' (``consented`` and ``not allocated``)."""
    arms = arm_of(participants, design)
    ids = participants["participant_id"]
    started_ids = (
        set(responses.loc[responses["condition"] != "", "participant_id"]) if responses is not None else set()
    )
    status = participants["status"] if "status" in participants.columns else pd.Series(COMPLETED, ids.index)
    step = (
        participants["current_step"] if "current_step" in participants.columns else pd.Series("", ids.index)
    )
    reasons = participants.get("exclusion_reasons", pd.Series("", ids.index)).fillna("")
    rows = [{"arm": "", "stage": "consented", "n": len(participants)}]
    rows.append({"arm": "", "stage": "not allocated", "n": int((arms == NOT_ALLOCATED).sum())})
    for arm in sorted(a for a in arms.unique() if a != NOT_ALLOCATED):
        own = arms == arm

        def add(stage: str, mask: pd.Series, arm: str = arm, own: pd.Series = own) -> None:
            rows.append({"arm": arm, "stage": stage, "n": int((own & mask).sum())})

        add("allocated", pd.Series(True, ids.index))
        add("started", ids.isin(started_ids))
        dropped = own & (status == DROPPED)
        for where, n in step[dropped].map(step_text).value_counts().sort_index().items():
            rows.append({"arm": arm, "stage": f"dropped out: {where}", "n": int(n)})
        add("in progress", status == ACTIVE)
        add("completed", status == COMPLETED)
        excluded = own & (participants["excluded"] == 1)
        split = reasons[excluded].str.split(";").explode().str.strip()
        for reason, n in split[split != ""].value_counts().sort_index().items():
            rows.append({"arm": arm, "stage": f"excluded: {reason}", "n": int(n)})
        add("excluded", participants["excluded"] == 1)
        add("analysed", ids.isin(analysed_ids))
    return rows


def flow_wide(rows: list[dict], arm_names: dict[str, str]) -> pd.DataFrame:
    """The per-arm flow as a table: one row per stage, one column per arm (by label), ``–`` where a stage
    does not apply (participants never allocated belong to no arm)."""
    frame = pd.DataFrame(rows)
    order = sorted(dict.fromkeys(frame["stage"]), key=_stage_rank)
    wide = frame.pivot_table(index="stage", columns="arm", values="n", aggfunc="sum").reindex(order)
    total = frame.groupby("stage", sort=False)["n"].sum().reindex(order)
    wide = wide.drop(columns=[""], errors="ignore").rename(columns=lambda a: arm_names.get(a, a))
    out = wide.astype(object).where(wide.notna(), "–").map(lambda v: v if v == "–" else int(v))
    out.insert(0, "All", total.astype(int))
    return out.reset_index().rename(columns={"stage": "Stage"})


STAGE_ORDER = (
    "consented",
    "not allocated",
    "allocated",
    "started",
    "dropped out",
    "in progress",
    "completed",
)


def _stage_rank(stage: str) -> tuple[int, str]:
    """CONSORT order: enrolment, allocation, follow-up (drop-outs by step), exclusions by reason, analysis."""
    order = (*STAGE_ORDER, "excluded:", "excluded", "analysed")
    head = stage.partition(":")[0] if not stage.startswith("excluded:") else "excluded:"
    return order.index(head) if head in order else len(order), stage


def baseline_characteristics(
    responses: pd.DataFrame,
    participants: pd.DataFrame,
    analysed_ids: set[str],
    design: str,
    entry_items: dict[str, bool],
) -> list[dict]:
    """Entry answers and stratum of the analysed participants by arm.

    ``entry_items``: item id → categorical (answers are codes with labels: counts and % per arm) or not
    (numbers and construct items: M and SD per arm). Returns ``[{variable, value, arm, n, pct}]`` for
    categorical and ``[{variable, arm, n, mean, sd}]`` for numeric variables; ``variable`` is the item id, or
    ``stratum`` for the randomization stratum; the document labels them.
    """
    arms = arm_of(participants, design)
    arm_by_id = dict(zip(participants["participant_id"], arms, strict=True))
    keep = {pid for pid in analysed_ids if arm_by_id.get(pid, NOT_ALLOCATED) != NOT_ALLOCATED}
    sizes = pd.Series([arm_by_id[p] for p in keep], dtype=object).value_counts()
    records: list[dict] = []
    if "stratum" in participants.columns and (participants["stratum"] != "").any():
        analysed = participants["participant_id"].isin(keep)
        records += _categorical(
            "stratum", pd.crosstab(participants.loc[analysed, "stratum"], arms[analysed]), sizes
        )
    entry = responses[responses["item"].isin(list(entry_items)) & responses["participant_id"].isin(keep)]
    arm_col = entry["participant_id"].map(arm_by_id)
    for item, categorical in entry_items.items():
        mine = entry["item"] == item
        if not mine.any():
            continue
        if categorical:
            codes = entry.loc[mine, "value"].astype(str).str.replace(r"\.0$", "", regex=True)
            records += _categorical(item, pd.crosstab(codes, arm_col[mine]), sizes)
            continue
        values = pd.to_numeric(entry.loc[mine, "value"], errors="coerce")
        for arm, group in values.groupby(arm_col[mine]):
            records.append(
                {"variable": item, "arm": arm, "n": int(group.notna().sum()), "mean": float(group.mean()),
                 "sd": float(group.std(ddof=1)) if group.notna().sum() > 1 else None}
            )  # fmt: skip
    return records


def _categorical(variable: str, table: pd.DataFrame, sizes: pd.Series) -> list[dict]:
    out = []
    for value, counts in table.iterrows():
        for arm, n in counts.items():
            total = int(sizes.get(arm, 0))
            out.append(
                {"variable": variable, "value": str(value), "arm": arm, "n": int(n),
                 "pct": 100 * n / total if total else None}
            )  # fmt: skip
    return out


def missingness(
    responses: pd.DataFrame, participants: pd.DataFrame | None, ids: set[str], design: str
) -> list[dict]:
    """Missing answers per item and arm among ``ids`` (the analysed participants): ``[{item, arm,
    participants, with_missing, expected, answered, missing_pct}]``.

    An item's expected answers per participant are the most any participant of the arm gave (trial items
    repeat per case; items shown only in some conditions are expected only where someone answered them);
    ``with_missing`` counts participants below that, ``missing_pct`` the share of expected answers not given.
    Derived variables (``__agrees_ai``, ``__correct``) are left out: they follow their item.
    """
    rows = responses[
        responses["participant_id"].isin(ids) & ~responses["item"].str.contains("__", regex=False)
    ]
    if rows.empty:
        return []
    if participants is not None:
        arm_by_id = dict(zip(participants["participant_id"], arm_of(participants, design), strict=True))
    else:
        arm_by_id = {}
    counts = rows.groupby(["item", "participant_id"]).size().rename("answered").reset_index()
    counts["arm"] = [arm_by_id.get(pid, "all") for pid in counts["participant_id"]]
    members = pd.Series([arm_by_id.get(pid, "all") for pid in ids], dtype=object).value_counts()
    records = []
    for (item, arm), group in counts.groupby(["item", "arm"], sort=True):
        expected = int(group["answered"].max())
        n = int(members.get(arm, len(group)))
        answered = int(group["answered"].sum())
        records.append(
            {
                "item": item,
                "arm": arm,
                "participants": n,
                "with_missing": int(n - (group["answered"] == expected).sum()),
                "expected": expected * n,
                "answered": answered,
                "missing_pct": float(100 * (1 - answered / (expected * n))) if n else np.nan,
            }
        )
    return records
