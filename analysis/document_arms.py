"""Report blocks of a study with more than two conditions: omnibus tests, pairwise tables, trust sentences.

:mod:`analysis.document` uses these when ``results.json`` lists ``conditions`` (k > 2); two-arm reports never
reach this module, so they read exactly as before.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import pandas as pd

from analysis.apa import (
    EFFECT_NAME,
    EFFECT_SYMBOL,
    bf_cell,
    bf_clause,
    bounded,
    ci,
    ci_label,
    interval,
    num,
    p_text,
    pval,
)
from analysis.labels import condition_label

OMNIBUS_SYMBOL = {
    "omega_squared": "ω²",
    "eta_squared_generalized": "η²<sub>G</sub>",
    "epsilon_squared": "ε²",
    "kendall_w": "*W*",
}
FAMILY_LABEL = {"vs_baseline": "vs baseline", "all_pairs": "all pairs"}


def methods_text(design: str, k: int) -> str:
    omnibus = (
        "repeated-measures ANOVA with the Greenhouse–Geisser correction (η²<sub>G</sub>) and the Friedman test "
        "(Kendall's *W*); pairs by paired t-tests (d<sub>z</sub>) and Wilcoxon signed-rank tests"
        if design == "within"
        else "Welch's ANOVA (ω²) and the Kruskal–Wallis test (ε²); pairs by Games–Howell, Welch t-tests "
        "(Hedges' g) and Mann–Whitney U"
    )
    return (
        f"{k} conditions. Per construct: construct scores are item means (reverse-coded items reversed); "
        f"omnibus tests by {omnibus}. Omnibus p are Holm-adjusted across the constructs; pairwise p are "
        "Holm-adjusted within each family (every condition vs the baseline; all pairs). A pair A → B reports "
        "B − A."
    )


def _omnibus_text(res: dict) -> str:
    df = f"{num(res['df1'])}, {num(res['df2'])}" if "df1" in res else f"{res['df']:.0f}"
    return f"{num(res['statistic'])} ({df})"


def summary_table(results: dict) -> pd.DataFrame:
    """One row per construct: M (SD) per condition, the omnibus test, Holm p and its effect size."""
    rows = []
    for name, block in results["constructs"].items():
        if "omnibus" not in block:
            continue
        par, d = block["omnibus"]["parametric"], block["descriptives"]
        es = par["effect_size"]
        row = {"Construct": name}
        row.update(
            {
                f"{condition_label(results, c)} M (SD)": f"{num(d[c]['mean'])} ({num(d[c]['sd'])})"
                for c in results["conditions"]
            }
        )
        row["F (df)"] = _omnibus_text(par)
        row["p (Holm)"] = p_text(par.get("p_holm"))
        row[OMNIBUS_SYMBOL[es["name"]]] = num(es["value"])
        row["α"] = bounded(block.get("alpha"))
        rows.append(row)
    return pd.DataFrame(rows)


def pairwise_table(block: dict, confidence: float, name: Callable[[str], str]) -> pd.DataFrame:
    """Every pair of both families (conditions by their labels): difference with CI, test, p and Holm p,
    effect size with CI, BF10."""
    label = ci_label(confidence)
    rows = []
    for family, records in block["pairwise"].items():
        for rec in records:
            par, rank = rec["parametric"], rec["nonparametric"]
            es = par["effect_size"]
            row = {
                "Family": FAMILY_LABEL[family],
                "Pair": f"{name(rec['a'])} → {name(rec['b'])}",
                f"Diff. [{label}]": f"{num(par['mean_diff'])} {interval(par['ci'])}",
                "t (df)": f"{num(par['statistic'])} ({par['df']:.1f})",
                "p (Holm)": p_text(par["p_holm"]),
                f"{EFFECT_NAME[es['name']]} [{label}]": f"{num(es['value'])} {interval(es['ci'])}",
                "BF10": bf_cell((par.get("bayes_factor") or {}).get("value")),
                "rank p (Holm)": p_text(rank["p_holm"]),
            }
            if "games_howell" in rec:
                row["Games–Howell p"] = p_text(rec["games_howell"]["p"])
            rows.append(row)
    return pd.DataFrame(rows)


def construct_sentences(
    block: dict, conditions: list[str], confidence: float, name: Callable[[str], str]
) -> list[str]:
    """Descriptives, the omnibus tests, every condition vs the baseline (with BF10) and the ordinal model;
    conditions by their labels (``name``)."""
    desc = block["descriptives"]
    means = "; ".join(
        f"{html.escape(name(c))} (*M* = {num(desc[c]['mean'])}, *SD* = {num(desc[c]['sd'])}, *n* = {desc[c]['n']})"
        for c in conditions
        if c in desc
    )
    out = [means + "."]
    for res in block["omnibus"].values():
        es = res["effect_size"]
        out.append(
            f"{res['test']}: {_omnibus_text(res)}, {pval(res['p'])} (Holm-adjusted {pval(res.get('p_holm'))}), "
            f"{OMNIBUS_SYMBOL[es['name']]} = {num(es['value'])}."
        )
    for rec in block["pairwise"]["vs_baseline"]:
        par = rec["parametric"]
        es = par["effect_size"]
        out.append(
            f"{html.escape(name(rec['b']))} − {html.escape(name(rec['a']))} = {num(par['mean_diff'])}, "
            f"{ci(par['ci'], confidence)}; {EFFECT_SYMBOL[es['name']]} = {num(es['value'])}, "
            f"{ci(es['ci'], confidence)}; Holm-adjusted {pval(par['p_holm'])}"
            + (f"; {bf_clause(par['bayes_factor'])}." if par.get("bayes_factor") else ".")
        )
    ordinal = block.get("ordinal") or {}
    if "wald" in ordinal:
        w = ordinal["wald"]
        out.append(
            f"Ordinal model (proportional-odds logit, condition as a factor): Wald χ²({w['df']:.0f}) = "
            f"{num(w['statistic'])}, {pval(w['p'])}; "
            + "; ".join(
                f"OR {html.escape(name(t['condition']))} vs baseline = {num(t['odds_ratio'])}, "
                f"{ci(t['odds_ratio_ci'], confidence)}"
                for t in ordinal["terms"]
            )
            + "."
        )
    return out


def trust_sentences(
    label: str, records: dict[str, dict | None], confidence: float, name: Callable[[str], str]
) -> list[str]:
    """One sentence per condition's comparison with the baseline on a trust-calibration measure."""
    out = []
    for condition, res in records.items():
        if res is None:
            continue
        es = res["effect_size"]
        df = f"{res['df']:.0f}" if float(res["df"]).is_integer() else f"{res['df']:.2f}"
        out.append(
            f"{label}, {html.escape(name(condition))} vs baseline: *t*({df}) = {num(res['statistic'])}, "
            f"{pval(res['p'])}, difference = {num(res['mean_diff'])}, {ci(res['ci'], confidence)}, "
            f"{EFFECT_SYMBOL[es['name']]} = {num(es['value'])}."
        )
    return out
