"""Report blocks of the crossed mixed models (``constructs.<name>.mixed`` / ``.ordinal_mixed``).

Where a construct has per-case items the report leads with its mixed model — the primary analysis, which treats
cases as a sample as well as participants — and says what was treated as random; the participant-mean tests
follow as secondary analyses (:mod:`analysis.document`).
"""

from __future__ import annotations

import html
from functools import partial

import pandas as pd

from analysis.apa import ci, ci_label, df_text, interval, num, p_text, pval
from analysis.casewise import component_sd

escape = partial(html.escape, quote=False)  # data shown in both renderers; quotes stay readable in Markdown

COMPONENT_LABEL = {
    "participant": "participant",
    "participant:condition": "participant × condition",
    "case": "case",
    "case:condition": "case × condition",
    "residual": "residual",
}

METHODS = (
    "Constructs with per-case items (asked on every case) are tested primarily with a linear mixed model with "
    "crossed random effects for participants and cases, one row per participant × case (the construct's "
    "per-case answers of that trial), REML, t tests with small-sample df (the method is named per model); a "
    "cumulative link mixed model on the item answers is its ordinal companion. Cases are a sample of photos "
    "as participants are a sample of people, so both are random. The participant-mean tests below are "
    "secondary analyses for these constructs; constructs asked once per participant keep them as primary."
)


def has_mixed(results: dict) -> bool:
    return any("mixed" in block for block in results["constructs"].values())


def _components(mixed: dict) -> str:
    return ", ".join(
        f"{COMPONENT_LABEL.get(name, name)} {num(sd)}" for name, sd in mixed["variance_components"].items()
    )


def readable(text: str, labels: dict[str, str]) -> str:
    """``text`` with every condition id replaced by its label (a fitted formula, a simplification step): the
    report goes into a paper, where readers know the conditions by their labels; results.json keeps the ids."""
    for condition in sorted(labels, key=len, reverse=True):
        text = text.replace(condition, labels[condition])
    return text


def linear_sentence(mixed: dict, confidence: float, k: int, labels: dict[str, str]) -> str:
    """The primary test: estimate with CI, t(df), p (Holm), what was random, the fitted model and backend."""
    if "skipped" in mixed:
        return f"Mixed model (primary) not fitted: {escape(readable(mixed['skipped'], labels))}."
    if k == 2:
        a, b = (labels.get(mixed[key], mixed[key]) for key in ("a", "b"))
        result = (
            f"difference ({escape(b)} − {escape(a)}) = {num(mixed['estimate'])}, "
            f"*SE* = {num(mixed['se'])}, {ci(mixed['ci'], confidence)}, *t*({df_text(mixed['df'])}) = "
            f"{num(mixed['statistic'])}, {pval(mixed['p'])} (Holm-adjusted {pval(mixed.get('p_holm'))})"
        )
    else:
        omnibus = mixed["omnibus"]
        result = (
            f"all condition terms at once *F*({num(omnibus['df1'])}, {df_text(omnibus['df2'])}) = "
            f"{num(omnibus['statistic'])}, {pval(omnibus['p'])} (Holm-adjusted {pval(omnibus.get('p_holm'))}); "
            "pairs in the table below"
        )
    simplified = (
        f" Simplified from the maximal model: {escape(readable('; '.join(mixed['simplified']), labels))}."
        if mixed.get("simplified")
        else ""
    )
    singular = " The fit is singular (a variance at zero)." if mixed.get("singular") else ""
    position = (
        f" Trial position: {num(mixed['terms']['position']['estimate'])} per trial, "
        f"{pval(mixed['terms']['position']['p'])}."
        if "position" in mixed.get("terms", {})
        else ""
    )
    return (
        f"Linear mixed model (primary; random: {escape(mixed['random'])}): {result}. Model "
        f"`{escape(readable(mixed['formula'], labels))}`, {mixed['n_obs']} trials of "
        f"{mixed['n_participants']} participants × {mixed['n_cases']} cases; SDs {_components(mixed)}; "
        f"{escape(mixed['df_method'])} df; backend {escape(mixed['backend'])}.{simplified}{singular}{position}"
    )


def ordinal_sentence(ordinal: dict | None, confidence: float, k: int) -> str | None:
    """The ordinal companion (cumulative link mixed model), or why it was not fitted."""
    if not ordinal:
        return None
    if "skipped" in ordinal:
        return f"Cumulative link mixed model not fitted: {escape(ordinal['skipped'])}."
    if k == 2:
        result = (
            f"log-odds {num(ordinal['estimate'])}, {ci(ordinal['ci'], confidence)}, "
            f"*z* = {num(ordinal['statistic'])}, {pval(ordinal['p'])}"
        )
    else:
        omnibus = ordinal["omnibus"]
        result = f"χ²({num(omnibus['df1'])}) = {num(omnibus['statistic'])}, {pval(omnibus['p'])}"
    return (
        f"Cumulative link mixed model on the per-case answers (ordinal companion): {result}; model "
        f"`{escape(ordinal['formula'])}`, SDs {_components(ordinal)}."
    )


def mixed_table(results: dict) -> pd.DataFrame:
    """One row per construct with per-case items: the primary mixed test and its variance components."""
    label = ci_label(results["confidence"])
    rows = []
    for name, block in results["constructs"].items():
        mixed = block.get("mixed")
        if not mixed:
            continue
        if "skipped" in mixed:
            rows.append({"Construct": name, "Model": f"not fitted: {mixed['skipped']}"})
            continue
        test = mixed if "estimate" in mixed else None
        omnibus = mixed.get("omnibus") or {}
        sds = mixed["variance_components"]
        rows.append(
            {
                "Construct": name,
                f"Estimate [{label}]": f"{num(test['estimate'])} {interval(test['ci'])}" if test else "–",
                "Test": f"t({df_text(test['df'])}) = {num(test['statistic'])}"
                if test
                else f"F({num(omnibus['df1'])}, {df_text(omnibus['df2'])}) = {num(omnibus['statistic'])}",
                "p (Holm)": p_text((test or omnibus).get("p_holm")),
                "SD case × cond.": num(component_sd(sds, "case:condition")),
                "SD case": num(component_sd(sds, "case")),
                "SD participant": num(component_sd(sds, "participant")),
                "Model": mixed["formula"],
            }
        )
    return pd.DataFrame(rows)


def pairwise_table(mixed: dict, confidence: float) -> pd.DataFrame:
    """k conditions: the mixed model's contrasts in both families, each Holm-adjusted within its family."""
    label = ci_label(confidence)
    return pd.DataFrame(
        [
            {
                "Family": family.replace("_", " "),
                "Pair": f"{r['a']} → {r['b']}",
                f"Diff. [{label}]": f"{num(r['estimate'])} {interval(r['ci'])}",
                "t (df)": f"{num(r['statistic'])} ({df_text(r['df'])})",
                "p (Holm)": p_text(r["p_holm"]),
            }
            for family, records in mixed["pairwise"].items()
            for r in records
        ]
    )


def construct_sentences(block: dict, confidence: float, k: int, labels: dict[str, str]) -> list[str]:
    """The mixed models' sentences of one construct (none when it has no per-case items); ``labels``: the
    conditions' labels by id."""
    if "mixed" not in block:
        return []
    sentences = [
        linear_sentence(block["mixed"], confidence, k, labels),
        ordinal_sentence(block.get("ordinal_mixed"), confidence, k),
    ]
    return [s for s in sentences if s]


def cases_table(cases: dict) -> pd.DataFrame:
    """``power.cases`` as participants (rows) × cases (columns)."""
    grid = pd.DataFrame(cases["grid"])
    table = grid.pivot(index="participants", columns="cases", values="power")
    table.columns = [f"{q} cases" for q in table.columns]
    return table.map(lambda v: f"{v:.2f}").reset_index().rename(columns={"participants": "Participants"})


def cases_blocks(cases: dict) -> list[tuple[str, object]]:
    """How many cases? The mixed model's power table, with what it assumes."""
    shown = ", ".join(f"{COMPONENT_LABEL.get(k, k)} {num(v)}" for k, v in cases["components"].items())
    return [
        ("h3", "How many cases?"),
        (
            "p",
            f"Power of the mixed model's test ({cases['sided']}, α = {cases['alpha']:.3g}) by participants and cases "
            f"(Westfall, Kenny & Judd 2014) for *d* = {num(cases['effect_d'])} — the effect over the SD of a "
            f"single answer, here {num(cases['effect_points'])} scale points — with variance components (SDs) "
            f"{shown} ({escape(cases['source'])}). Case × condition variation does not average out over "
            "participants: past a point, more cases raise power and more participants barely do.",
        ),
        ("table", cases_table(cases)),
    ]
