"""Report blocks of the construct comparisons for k ≥ 2 conditions, and the trust-calibration comparisons.

One path reads ``constructs.<name>`` of ``results.json`` (:mod:`analysis.constructs`) for every k. What a
reader needs differs with k, and only there the text branches: with two conditions the omnibus test *is* the
pair's comparison, so the report gives its mean difference, relative change and t-test sentence; with more, it
gives the omnibus F and a table of every pair.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from functools import partial

import pandas as pd

from analysis import apa, document_mixed
from analysis.labels import condition_label, condition_labels

Block = tuple[str, object]  # ("h1"|"h2"|"h3"|"p"|"ul", str | list[str]) or ("table", DataFrame)

OMNIBUS_SYMBOL = {
    "omega_squared": "ω²",
    "eta_squared_generalized": "η²<sub>G</sub>",
    "epsilon_squared": "ε²",
    "kendall_w": "*W*",
}
FAMILY_LABEL = {"vs_baseline": "vs baseline", "all_pairs": "all pairs"}

TWO_ARM_METHODS = (
    "Per construct: construct scores are item means (reverse-coded items reversed). Within designs: "
    "paired t-test with d<sub>z</sub> and Wilcoxon signed-rank; between designs: Welch t-test with "
    "Hedges' g and Mann–Whitney U, all two-sided. p-values are Holm-adjusted across the constructs "
    "below. A construct is confirmatory when a preregistered hypothesis tests it (its test, in the "
    "declared direction and correction, is under Preregistration), exploratory otherwise. Relative "
    "change depends on the scale's zero point; read it with the mean difference and effect size."
)


def methods_text(design: str, k: int) -> str:
    """How the constructs were compared, for ``k`` conditions."""
    if k == 2:
        return TWO_ARM_METHODS
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


def analysis_label(block: dict) -> str:
    """'confirmatory (H1, H2)' for a construct a preregistered hypothesis tests, else 'exploratory'."""
    if block.get("analysis") == "confirmatory":
        return f"confirmatory ({', '.join(block['hypotheses'])})"
    return "exploratory"


# ---------------------------------------------------------------- the summary table
def summary_table(results: dict) -> pd.DataFrame:
    """One row per tested construct: M (SD) per condition, then its test — for two conditions the difference
    with CI, relative change, POMP difference, t, Holm p, effect size and BF10; for more the omnibus F, Holm p
    and its effect size —, and α."""
    rows = []
    conditions = results["conditions"]
    for name, block in results["constructs"].items():
        if "omnibus" not in block:
            continue
        d = block["descriptives"]
        row = {"Construct": name}
        if len(conditions) == 2:
            row["Analysis"] = analysis_label(block)
        row.update(
            {
                f"{condition_label(results, c)} M (SD)": f"{apa.num(d[c]['mean'])} ({apa.num(d[c]['sd'])})"
                for c in conditions
            }
        )
        cells = _pair_cells if len(conditions) == 2 else _omnibus_cells
        rows.append({**row, **cells(block, results["confidence"]), "α": apa.bounded(block.get("alpha"))})
    return pd.DataFrame(rows)


def _pair_cells(block: dict, confidence: float) -> dict[str, str]:
    (pair,) = block["pairwise"]["vs_baseline"]
    par = block["omnibus"]["parametric"]
    es, label = par["effect_size"], apa.ci_label(confidence)
    return {
        f"Diff. [{label}]": f"{apa.num(par['mean_diff'])} {apa.interval(par['ci'])}",
        "Rel. change": apa.signed_pct(pair["relative_change_pct"]),
        "POMP diff.": apa.num(pair["pomp_diff"], 1),
        "t (df)": f"{apa.num(par['statistic'])} ({par['df']:.1f})",
        "p (Holm)": apa.p_text(par.get("p_holm")),
        f"{apa.EFFECT_NAME[es['name']]} [{label}]": f"{apa.num(es['value'])} {apa.interval(es['ci'])}",
        "BF10": apa.bf_cell((par.get("bayes_factor") or {}).get("value")),
    }


def _omnibus_cells(block: dict, confidence: float) -> dict[str, str]:
    par = block["omnibus"]["parametric"]
    es = par["effect_size"]
    return {
        "F (df)": _omnibus_text(par),
        "p (Holm)": apa.p_text(par.get("p_holm")),
        OMNIBUS_SYMBOL[es["name"]]: apa.num(es["value"]),
    }


def summary_caption(results: dict) -> str:
    """The LaTeX caption of :func:`summary_table`."""
    k, within = len(results["conditions"]), results["design"] == "within"
    if k == 2:
        design = "paired t-test, d_z" if within else "Welch t-test, Hedges' g"
        return f"Comparisons per construct ({design}; Holm-adjusted p; differences are compared − baseline)."
    design = "RM ANOVA, GG-corrected" if within else "Welch ANOVA"
    return f"Omnibus tests over {k} conditions ({design}; Holm-adjusted p)."


def _omnibus_text(res: dict) -> str:
    df = f"{apa.num(res['df1'])}, {apa.num(res['df2'])}" if "df1" in res else f"{res['df']:.0f}"
    return f"{apa.num(res['statistic'])} ({df})"


# ---------------------------------------------------------------- the section
def construct_section(results: dict, no_participants: str) -> list[Block]:
    """The summary table, then each construct's sentences (and, k > 2, its pairwise tables)."""
    if results.get("n_analysed") == 0:
        return [("h2", "Comparisons per construct"), ("p", no_participants)]
    if not results["constructs"]:
        return []
    conditions, level = results["conditions"], results["confidence"]
    k = len(conditions)
    blocks: list[Block] = [
        ("h2", "Comparisons per construct" if k == 2 else "Confirmatory comparisons"),
        *_mixed_lead(results),
        ("p", methods_text(results["design"], k)),
        ("table", summary_table(results)),
    ]
    labels = condition_labels(results)
    for name, block in results["constructs"].items():
        blocks.append(
            ("h3", f"{html.escape(name)} ({analysis_label(block)})" if k == 2 else html.escape(name))
        )
        if "described_only" in block:
            blocks.append(("ul", described_only_sentences(name, block, level, labels)))
            continue
        if "omnibus" not in block:
            blocks.append(("p", f"Not tested: {block.get('skipped')}."))
            if "mixed" in block:
                blocks.append(("ul", document_mixed.construct_sentences(block, level, k, labels)))
            continue
        blocks.append(("ul", [s for s in construct_sentences(name, block, results) if s]))
        if k > 2:
            if "pairwise" in block.get("mixed", {}):
                blocks.append(("table", document_mixed.pairwise_table(block["mixed"], level)))
            blocks.append(("table", pairwise_table(block, level, partial(condition_label, results))))
    return blocks


def _mixed_lead(results: dict) -> list[Block]:
    """Where constructs have per-case items: the mixed models first (methods and their table)."""
    if not document_mixed.has_mixed(results):
        return []
    return [("p", document_mixed.METHODS), ("table", document_mixed.mixed_table(results))]


def construct_sentences(name: str, block: dict, results: dict) -> list[str | None]:
    """One tested construct's sentences: two conditions — descriptives, the mixed models, the t-test and rank
    test, reliability, the ordinal model, the period effect; more — the mixed models, descriptives, the
    omnibus tests, each condition vs the baseline, the ordinal model, reliability."""
    conditions, level = results["conditions"], results["confidence"]
    labels = condition_labels(results)
    mixed = document_mixed.construct_sentences(block, level, len(conditions), labels)
    if len(conditions) > 2:
        names = partial(condition_label, results)
        return [*mixed, *arm_sentences(block, conditions, level, names), reliability_sentence(block, level)]
    return [
        descriptive_sentence(name, block, conditions, results),
        *mixed,
        *(["Secondary (participant means):"] if "mixed" in block else []),
        parametric_sentence(block, level),
        nonparametric_sentence(block),
        reliability_sentence(block, level),
        ordinal_sentence(block, level),
        period_sentence(block, level),
    ]


# ---------------------------------------------------------------- two conditions
def parametric_sentence(block: dict, confidence: float) -> str:
    """t-test with mean difference, CI, effect size and the relative change next to them."""
    par = block["omnibus"]["parametric"]
    (pair,) = block["pairwise"]["vs_baseline"]
    es = par["effect_size"]
    return (
        f"{'A paired' if par['test'] == 'paired t-test' else 'A Welch'} *t*-test: *t*({apa.df_text(par['df'])}) = "
        f"{apa.num(par['statistic'])}, {apa.pval(par['p'])} (Holm-adjusted {apa.pval(par.get('p_holm'))}); mean "
        "difference "
        f"(compared − baseline) = {apa.num(par['mean_diff'])}, {apa.ci(par['ci'], confidence)}; "
        f"{apa.EFFECT_SYMBOL[es['name']]} = "
        f"{apa.num(es['value'])}, {apa.ci(es['ci'], confidence)}; relative change of means "
        f"{apa.signed_pct(pair['relative_change_pct'])}"
        f" (POMP difference {apa.num(pair['pomp_diff'], 1)} points)"
        + (f"; {apa.bf_clause(par['bayes_factor'])}." if par.get("bayes_factor") else ".")
    )


def nonparametric_sentence(block: dict) -> str:
    res = block["omnibus"]["nonparametric"]
    es = res["effect_size"]
    return (
        f"{res['test']} test: *{apa.TEST_SYMBOL[res['test']]}* = {apa.num(res['statistic'], 1)}, {apa.pval(res['p'])} "
        f"(Holm-adjusted {apa.pval(res.get('p_holm'))}), {apa.EFFECT_SYMBOL[es['name']]} = {apa.bounded(es['value'])}."
    )


def descriptive_sentence(name: str, block: dict, conditions: list[str], results: dict) -> str:
    desc = block["descriptives"]
    parts = [
        f"{html.escape(condition_label(results, c))} (*M* = {apa.num(desc[c]['mean'])}, "
        f"*SD* = {apa.num(desc[c]['sd'])}, *n* = {desc[c]['n']})"
        for c in reversed(conditions)
        if c in desc
    ]
    return f"{html.escape(name)}: {' vs. '.join(parts)}."


def ordinal_sentence(block: dict, confidence: float) -> str | None:
    res = block.get("ordinal")
    if not res:
        return None
    if "skipped" in res:
        return f"Ordinal model not fitted: {res['skipped']}."
    (term,) = res["terms"]
    return (
        "Cumulative link (proportional-odds logit) model on the item answers: *OR* = "
        f"{apa.num(term['odds_ratio'])}, "
        f"{apa.ci(term['odds_ratio_ci'], confidence)}, *z* = {apa.num(term['z'])}, {apa.pval(term['p'])} "
        f"({res['n_obs']} answers, "
        f"{res['n_clusters']} participants; {res['limitation']})."
    )


def period_sentence(block: dict, confidence: float) -> str | None:
    res = block.get("period_effect")
    if not res:
        return None
    return (
        f"Condition × period: *t*({res['df']:.2f}) = {apa.num(res['statistic'])}, {apa.pval(res['p'])}; period "
        f"difference (later − earlier) = {apa.num(res['period_diff'])}, {apa.ci(res['period_diff_ci'], confidence)}; "
        f"period-adjusted mean difference = {apa.num(res['adjusted_mean_diff'])} ({res['n_baseline_first']} "
        f"baseline-first, {res['n_compared_first']} compared-first)."
    )


# ---------------------------------------------------------------- any k
def reliability_sentence(block: dict, confidence: float) -> str | None:
    if block.get("alpha") is None:
        return None
    omega = f"; McDonald's ω = {apa.bounded(block['omega'])}" if block.get("omega") is not None else ""
    alpha_ci = apa.ci(block["alpha_ci"], confidence, fmt=apa.bounded)
    return f"Reliability: Cronbach's α = {apa.bounded(block['alpha'])}, {alpha_ci}{omega}."


def described_only_sentences(name: str, block: dict, confidence: float, labels: dict[str, str]) -> list[str]:
    """A construct asked under one condition only: its descriptives there, and why nothing is compared."""
    (condition, d), *_ = block["descriptives"].items()
    why = document_mixed.readable(block["described_only"], labels)
    sentences = [
        f"{html.escape(name)}, {html.escape(labels.get(condition, condition))} (*M* = {apa.num(d['mean'])}, "
        f"*SD* = {apa.num(d['sd'])}, *Mdn* = {apa.num(d['median'])}, *n* = {d['n']}); {html.escape(why)}.",
        reliability_sentence(block, confidence),
    ]
    return [s for s in sentences if s]


# ---------------------------------------------------------------- more than two conditions
def pairwise_table(block: dict, confidence: float, name: Callable[[str], str]) -> pd.DataFrame:
    """Every pair of both families (conditions by their labels): difference with CI, test, p and Holm p,
    effect size with CI, BF10."""
    label = apa.ci_label(confidence)
    rows = []
    for family, records in block["pairwise"].items():
        for rec in records:
            par, rank = rec["parametric"], rec["nonparametric"]
            es = par["effect_size"]
            row = {
                "Family": FAMILY_LABEL[family],
                "Pair": f"{name(rec['a'])} → {name(rec['b'])}",
                f"Diff. [{label}]": f"{apa.num(par['mean_diff'])} {apa.interval(par['ci'])}",
                "t (df)": f"{apa.num(par['statistic'])} ({par['df']:.1f})",
                "p (Holm)": apa.p_text(par["p_holm"]),
                f"{apa.EFFECT_NAME[es['name']]} [{label}]": f"{apa.num(es['value'])} {apa.interval(es['ci'])}",
                "BF10": apa.bf_cell((par.get("bayes_factor") or {}).get("value")),
                "rank p (Holm)": apa.p_text(rank["p_holm"]),
            }
            if "games_howell" in rec:
                row["Games–Howell p"] = apa.p_text(rec["games_howell"]["p"])
            rows.append(row)
    return pd.DataFrame(rows)


def arm_sentences(
    block: dict, conditions: list[str], confidence: float, name: Callable[[str], str]
) -> list[str]:
    """Descriptives, the omnibus tests, every condition vs the baseline (with BF10) and the ordinal model;
    conditions by their labels (``name``)."""
    desc = block["descriptives"]
    means = "; ".join(
        f"{html.escape(name(c))} (*M* = {apa.num(desc[c]['mean'])}, *SD* = {apa.num(desc[c]['sd'])}, "
        f"*n* = {desc[c]['n']})"
        for c in conditions
        if c in desc
    )
    out = [means + "."]
    for res in block["omnibus"].values():
        es = res["effect_size"]
        out.append(
            f"{res['test']}: {_omnibus_text(res)}, {apa.pval(res['p'])} (Holm-adjusted {apa.pval(res.get('p_holm'))}), "
            f"{OMNIBUS_SYMBOL[es['name']]} = {apa.num(es['value'])}."
        )
    for rec in block["pairwise"]["vs_baseline"]:
        par = rec["parametric"]
        es = par["effect_size"]
        out.append(
            f"{html.escape(name(rec['b']))} − {html.escape(name(rec['a']))} = {apa.num(par['mean_diff'])}, "
            f"{apa.ci(par['ci'], confidence)}; {apa.EFFECT_SYMBOL[es['name']]} = {apa.num(es['value'])}, "
            f"{apa.ci(es['ci'], confidence)}; Holm-adjusted {apa.pval(par['p_holm'])}"
            + (f"; {apa.bf_clause(par['bayes_factor'])}." if par.get("bayes_factor") else ".")
        )
    ordinal = block.get("ordinal") or {}
    if "wald" in ordinal:
        w = ordinal["wald"]
        out.append(
            f"Ordinal model (proportional-odds logit, condition as a factor): Wald χ²({w['df']:.0f}) = "
            f"{apa.num(w['statistic'])}, {apa.pval(w['p'])}; "
            + "; ".join(
                f"OR {html.escape(name(t['condition']))} vs baseline = {apa.num(t['odds_ratio'])}, "
                f"{apa.ci(t['odds_ratio_ci'], confidence)}"
                for t in ordinal["terms"]
            )
            + "."
        )
    return out


# ---------------------------------------------------------------- trust calibration
def trust_sentences(trust: dict, results: dict) -> list[str]:
    """Over-reliance and the trust-calibration gap: each condition against the baseline."""
    level = results["confidence"]
    names = partial(condition_label, results)
    two = len(results["conditions"]) == 2
    out = []
    for key, label in (
        ("over_reliance", "Over-reliance (agreement with wrong AI)"),
        ("trust_gap", "Trust calibration gap (correct − wrong cases)"),
    ):
        for condition, res in (trust[key] or {}).items():
            if res is None:
                continue
            es = res["effect_size"]
            versus = html.escape(names(condition))
            difference = "difference (compared − baseline)" if two else "difference"
            out.append(
                f"{label}, {versus} vs baseline: *t*({apa.df_text(res['df'])}) = {apa.num(res['statistic'])}, "
                f"{apa.pval(res['p'])}, {difference} = {apa.num(res['mean_diff'])}, {apa.ci(res['ci'], level)}"
                + f", {apa.EFFECT_SYMBOL[es['name']]} = {apa.num(es['value'])}."
            )
    return out
