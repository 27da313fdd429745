"""The report's sections on reliance on the AI's advice and on engagement, as blocks (see analysis/document.py).

They read the ``reliance`` and ``engagement`` blocks of results.json (analysis/reliance.py,
analysis/engagement.py) and only format them.
"""

from __future__ import annotations

import html

import pandas as pd

from analysis.apa import ci_label, interval, num, pval
from analysis.document_standards import arm_name
from analysis.labels import item_label
from analysis.ratings_model import SOURCE_TEXT

Block = tuple[str, object]

# Metrics whose trials already fix the AI's correctness: reported once, over the trials they are defined on.
_ONE_GROUP = {"over_reliance", "under_reliance", "rair", "rsr"}
_AI = {"all": "all", "correct": "AI right", "wrong": "AI wrong"}


def _names(results: dict) -> dict[str, str]:
    """Condition id → the protocol's label (readers never see ids)."""
    return (results.get("labels") or {}).get("conditions") or {}


def reliance_table(block: dict, confidence: float, names: dict[str, str] | None = None) -> pd.DataFrame:
    """Per metric, AI group and condition (by ``names``, its label): participants, trials, mean of participant
    values and its CI."""
    names = names or {}
    order = list(block["metrics"])
    records = sorted(
        (r for r in block["by_condition"] if r["ai"] == "all" or r["metric"] not in _ONE_GROUP),
        key=lambda r: (order.index(r["metric"]), list(_AI).index(r["ai"]), r["condition"]),
    )
    return pd.DataFrame(
        [
            {
                "Measure": block["metrics"][r["metric"]]["label"],
                "Cases": _AI[r["ai"]],
                "Condition": names.get(r["condition"], r["condition"]),
                "Participants": r["n_participants"],
                "Trials": r["n_trials"],
                "M": num(r["mean"]),
                ci_label(confidence): interval(r["ci"]),
            }
            for r in records
        ]
    )


def _escape(text: str) -> str:
    """Markup-safe text for the Markdown and HTML renderers (apostrophes stay as they are)."""
    return html.escape(text, quote=False)


def _contrast_name(name: str, names: dict[str, str]) -> str:
    """``b - a | ai_wrong=1`` → ``B − A where the AI was wrong`` (conditions by their labels)."""
    difference, _, where = name.partition(" | ")
    difference = " − ".join(names.get(c, c) for c in difference.split(" - "))
    return {"": difference, "ai_wrong=0": f"{difference} where the AI was right",
            "ai_wrong=1": f"{difference} where the AI was wrong"}[where]  # fmt: skip


def model_sentences(block: dict, confidence: float, names: dict[str, str] | None = None) -> list[str]:
    """One sentence per condition contrast of each logistic mixed model (log-odds, Wald z), or why the model
    could not be fitted."""
    sentences = []
    for metric, fit in block.get("models", {}).items():
        label = _escape(block["metrics"][metric]["label"])
        if "error" in fit:
            error = fit["error"]
            for condition, text in (names or {}).items():  # the fitter's messages quote condition ids
                error = error.replace(f"'{condition}'", f"“{text}”")
            sentences.append(f"{label}: not modelled ({_escape(error)}).")
            continue
        for name, term in fit["contrasts"].items():
            sentences.append(
                f"{label}, {_escape(_contrast_name(name, names or {}))}: log-odds difference {num(term['estimate'])}, "
                f"{ci_label(confidence)} {interval(term['ci'])}, z = {num(term['statistic'])}, "
                f"{pval(term['p'])}"
                + (" (singular fit)" if fit["singular"] else "")
                + ("" if fit["converged"] else " (did not converge)")
                + "."
            )
    return sentences


def reliance_blocks(results: dict) -> list[Block]:
    """Reliance on the AI's advice: what was measured and how (definitions with sources), then the table."""
    block = results.get("reliance")
    if not block:
        return []
    if block["judge_advisor"]:
        design = (
            "Participants gave their own diagnosis and confidence before seeing the AI's advice and a final "
            "one after it (judge–advisor trials), so switching and the appropriateness of reliance are "
            "measured (Schemmer et al., 2023)."
        )
    else:
        design = (
            "Participants saw the AI's advice with each case, so only their final answers exist: accuracy, "
            "agreement with the AI, and over- and under-reliance are reported; switching, RAIR and RSR need "
            "judge–advisor trials (protocol trial.advice: after_initial)."
        )
    definitions = []
    for metric in block["metrics"].values():
        source = f" — {_escape(metric['source'])}" if metric["source"] else ""
        definitions.append(f"{_escape(metric['label'])}: {_escape(metric['definition'])}{source}.")
    return [
        ("h2", "Reliance on the AI's advice"),
        ("p", design + " Each measure is computed per participant and condition, then averaged over participants "
         "(a participant without a trial a measure is defined on does not count towards it)."),
        ("ul", definitions),
        ("table", reliance_table(block, results["confidence"], _names(results))),
        *_model_blocks(block, results["confidence"], _names(results)),
    ]  # fmt: skip


def _model_blocks(block: dict, confidence: float, names: dict[str, str]) -> list[Block]:
    sentences = model_sentences(block, confidence, names)
    if not sentences:
        return []
    fitted = next((fit for fit in block["models"].values() if "formula" in fit), None)
    formula = f" ({_escape(fitted['formula'])}, {_escape(fitted['backend'])})" if fitted else ""
    return [
        ("p", "Each trial-level outcome is compared between conditions by a logistic mixed model with "
         f"participants and cases as crossed random effects{formula}; answers where the AI was right and wrong "
         "are compared separately where the AI's correctness can matter (its interaction with condition)."),
        ("ul", sentences),
    ]  # fmt: skip


def _seconds(record: dict) -> dict:
    return {
        "Participants": record["n_participants"],
        "Cases": record["n_cases"],
        "Median s per case (median over participants)": num(record["median"], 1),
        "M": num(record["mean"], 1),
        "SD": num(record["sd"], 1),
    }


def engagement_blocks(results: dict) -> list[Block]:
    """Time per case and images enlarged by condition; manipulation checks by arm."""
    block = results.get("engagement")
    if not block:
        return []
    blocks: list[Block] = [("h2", "Engagement and manipulation checks")]
    names = _names(results)
    if block["time_per_case"]:
        blocks += [
            ("p", "Time per case: each participant's median over their cases of the time from showing a case "
             "to submitting it (both halves of a judge–advisor trial), in seconds."),
            ("table", pd.DataFrame([{"Condition": names.get(c, c), **_seconds(r)}
                                    for c, r in block["time_per_case"].items()])),
        ]  # fmt: skip
    if block["image_views"] is not None:
        rows = [
            {
                "Condition": names.get(c, c),
                "Participants": r["n_participants"],
                "Enlarged any image": f"{r['participants_enlarging']} ({r['share']:.0%})",
                "Images enlarged": r["views"],
                "Per case (M over participants)": num(r["views_per_case"]),
                "By kind": ", ".join(f"{SOURCE_TEXT.get(k, k)} {v}" for k, v in r["by_kind"].items()) or "–",
            }
            for c, r in block["image_views"].items()
        ]
        blocks += [("p", "Images enlarged on trials (each click on “Enlarge” is logged by the server)."),
                   ("table", pd.DataFrame(rows))]  # fmt: skip
    level = results["confidence"]
    for item, arms in block["manipulation_checks"].items():
        rows = [
            {
                "Arm": arm_name(results, arm),
                "Answers": r["n"],
                "As intended": r["as_intended"],
                "Share": num(r["share"]),
                f"{ci_label(level)} (Wilson)": interval(r["ci"]),
            }
            for arm, r in arms.items()
        ]
        blocks += [
            (
                "p",
                f"Manipulation check “{_escape(item_label(results.get('labels'), item))}”: answers as the "
                "protocol expects under each arm.",
            ),
            ("table", pd.DataFrame(rows)),
        ]
    return blocks
