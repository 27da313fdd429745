"""Report blocks of the reporting standards (CONSORT 2010, APA JARS): participant flow per arm, baseline
characteristics by arm, randomization stratum, missing data, and the sensitivity analysis with the excluded
participants. Arms, items and answers are shown by their protocol labels (:mod:`analysis.labels`)."""

from __future__ import annotations

import html

import pandas as pd

from analysis.apa import EFFECT_NAME, ci, ci_label, interval, num, p_text, pval
from analysis.consort import flow_wide
from analysis.labels import anchor_labels, condition_label, item_label, stage_label
from analysis.ratings_model import SOURCE_TEXT

Block = tuple[str, object]


def arm_name(results: dict, arm: str) -> str:
    """An arm by its labels: the condition (between) or the condition order 'A → B' (within)."""
    return " → ".join(condition_label(results, c) for c in arm.split(">")) if arm else "not allocated"


def _arm_names(results: dict, arms: list[str]) -> dict[str, str]:
    return {a: arm_name(results, a) for a in arms}


def flow_by_arm_table(results: dict) -> pd.DataFrame | None:
    """Stages × arms (plus All); stages and reasons in words."""
    rows = results.get("participant_flow_by_arm")
    if not rows:
        return None
    table = flow_wide(rows, _arm_names(results, sorted({r["arm"] for r in rows})))
    return table.assign(Stage=table["Stage"].map(stage_label))


def baseline_table(results: dict) -> pd.DataFrame | None:
    """Entry answers and stratum by arm: n (%) per answer, M (SD) for numbers."""
    records = results.get("baseline_characteristics") or []
    if not records:
        return None
    labels = results.get("labels")
    arms = sorted({r["arm"] for r in records})
    names = _arm_names(results, arms)
    rows: dict[tuple[str, str], dict] = {}
    for r in records:
        variable = (
            "Randomization stratum" if r["variable"] == "stratum" else item_label(labels, r["variable"])
        )
        if "value" in r:
            anchors = anchor_labels(labels, r["variable"])
            value = (
                anchors.get(int(r["value"]), r["value"]) if r["value"].lstrip("-").isdigit() else r["value"]
            )
            cell = f"{r['n']} ({num(r['pct'], 1)} %)"
        else:
            value, cell = "M (SD)", f"{num(r['mean'])} ({num(r['sd'])})"
        rows.setdefault((variable, str(value)), {"Characteristic": variable, "Value": str(value)})[
            names[r["arm"]]
        ] = cell
    return pd.DataFrame(list(rows.values())).fillna("0 (0.0 %)")


def missing_table(results: dict) -> pd.DataFrame | None:
    """Items with missing answers among the analysed participants: % of expected answers missing and the
    participants with any missing answer, per arm."""
    records = [r for r in results.get("missing_data") or [] if r["answered"] < r["expected"]]
    if not records:
        return None
    labels = results.get("labels")
    names = _arm_names(results, sorted({r["arm"] for r in records if r["arm"] != "all"}))
    rows: dict[str, dict] = {}
    for r in records:
        text = item_label(labels, r["item"])
        arm = names.get(r["arm"], "all participants")
        rows.setdefault(text, {"Item": text})[arm] = (
            f"{num(r['missing_pct'], 1)} % ({r['with_missing']} of {r['participants']})"
        )
    return pd.DataFrame(list(rows.values())).fillna("0.0 %")


def sensitivity_table(results: dict) -> pd.DataFrame | None:
    """Primary (exclusions applied) beside the sensitivity analysis (no exclusions), per construct."""
    sens = results.get("sensitivity")
    if not sens:
        return None
    label = ci_label(results["confidence"])
    rows = []
    for construct, tests in sens["constructs"].items():
        primary = results["constructs"].get(construct, {})
        for name, block in (
            ("primary (exclusions applied)", primary.get("omnibus")),
            ("all participants", tests),
        ):
            par = (block or {}).get("parametric")
            if not par or "mean_diff" not in par:
                continue
            es = par["effect_size"]
            rows.append(
                {
                    "Construct": construct,
                    "Analysis": name,
                    "n": par["n"],
                    f"Diff. [{label}]": f"{num(par['mean_diff'])} {interval(par['ci'])}",
                    "p (Holm)": p_text(par.get("p_holm")),
                    f"{EFFECT_NAME[es['name']]} [{label}]": f"{num(es['value'])} {interval(es['ci'])}",
                }
            )
    return pd.DataFrame(rows) if rows else None


def stratum_sentences(results: dict) -> list[str]:
    """Whether randomization was stratified and the analysis adjusted; the adjusted estimates."""
    strat = results.get("stratification")
    if not strat:
        return []
    out = [
        f"Randomization was stratified ({strat['n_strata']} strata). The primary analyses above are not adjusted "
        "for the stratum; the stratum-adjusted estimates follow as a check"
        + (f" ({strat['note']})." if strat.get("note") else ":")
    ]
    level = results["confidence"]
    for construct, res in strat["constructs"].items():
        if res is None:
            out.append(f"{html.escape(construct)}: not estimable (too few participants per stratum).")
            continue
        out.append(
            f"{html.escape(construct)}: adjusted difference = {num(res['mean_diff'])}, {ci(res['ci'], level)}, "
            f"*t*({res['df']:.0f}) = {num(res['statistic'])}, {pval(res['p'])} ({res['model']})."
        )
    return out


def language_table(results: dict) -> pd.DataFrame | None:
    """Construct scores by the participants' language and condition: n, M (SD); None in one language."""
    block = results.get("by_language")
    if not block:
        return None
    return pd.DataFrame(
        [
            {
                "Language": r["language"],
                "Construct": r["construct"],
                "Condition": condition_label(results, r["condition"]),
                "n": r["n"],
                "M (SD)": f"{num(r['mean'])} ({num(r['sd'])})" if r["sd"] is not None else num(r["mean"]),
            }
            for r in block["scores"]
        ]
    )


def standards_blocks(results: dict) -> list[Block]:
    """Baseline characteristics, stratum, missing data and the sensitivity analysis, each when present."""
    blocks: list[Block] = []
    baseline = baseline_table(results)
    if baseline is not None:
        blocks += [
            ("h2", "Baseline characteristics by arm"),
            (
                "p",
                "Answers to the entry questions and the randomization stratum of the analysed participants.",
            ),
            ("table", baseline),
        ]
    strat = stratum_sentences(results)
    if strat:
        blocks += [("h3", "Randomization stratum"), ("ul", strat)]
    languages = language_table(results)
    if languages is not None:
        counts = ", ".join(f"{n} in {lang}" for lang, n in results["by_language"]["n_analysed"].items())
        blocks += [
            ("h3", "Participants by language"),
            (
                "p",
                f"Participants took the study in the language of their choice ({counts} analysed). "
                "Languages were not randomized: the scores by language describe, they test nothing.",
            ),
            ("table", languages),
        ]
    missing = missing_table(results)
    blocks.append(("h2", "Missing data"))
    if results.get("n_analysed") == 0:
        blocks.append(("p", "No participant was analysed."))
    elif missing is None:
        blocks.append(("p", "No analysed participant has a missing answer to any item shown to them."))
    else:
        blocks += [
            (
                "p",
                "Share of expected answers missing among the analysed participants (participants with any "
                "missing answer of those in the arm); items not listed are complete.",
            ),
            ("table", missing),
        ]
    sens = sensitivity_table(results)
    if sens is not None:
        blocks += [
            ("h2", "Sensitivity analysis: all participants"),
            (
                "p",
                f"The comparisons again with every participant who answered "
                f"({results['sensitivity']['n_participants']}), the protocol's exclusions not applied, beside "
                "the primary analysis.",
            ),
            ("table", sens),
        ]
    return blocks


def source_model_blocks(results: dict) -> list[Block]:
    """Generated vs real images: the crossed mixed model's contrasts per rated item (raters and images random)."""
    models = results.get("ratings_by_source") or {}
    if not models:
        return []
    labels, level = results.get("labels"), results["confidence"]
    rows, notes = [], []
    for item, fit in models.items():
        text = item_label(labels, item, rating=True)
        if "skipped" in fit:
            notes.append(f"{html.escape(text)}: not modelled ({html.escape(fit['skipped'])}).")
            continue
        sds = ", ".join(f"{k} {num(v)}" for k, v in fit["variance_components"].items())
        for name, c in fit["contrasts"].items():
            b, _, a = name.partition(" - ")
            rows.append(
                {
                    "Item": text,
                    "Contrast": f"{SOURCE_TEXT.get(b, b)} − {SOURCE_TEXT.get(a, a)}",
                    f"Difference [{ci_label(level)}]": f"{num(c['estimate'])} {interval(c['ci'])}",
                    "t (df)": f"{num(c['statistic'])} ({c['df']:.1f})" if c["df"] else num(c["statistic"]),
                    "p": p_text(c["p"]),
                    "Random-effect SDs": sds,
                    "Model fitted": fit["formula"],
                }
            )
        if fit["simplified"] or fit["notes"]:
            steps = [*fit["simplified"], *fit["notes"]]
            notes.append(
                f"{html.escape(text)}: " + "; ".join(html.escape(n, quote=False) for n in steps) + "."
            )
    first = next(iter(f for f in models.values() if "skipped" not in f), None)
    method = (
        "Image sources compared with raters and images as random effects (crossed linear mixed model "
        "rating ~ source + (1 | image) + (1 + source | rater), simplified by the preregistered rule when singular; "
        f"{first['df_method']} df; {first['backend']}). Yes/no items on the probability scale (linear probability "
        "model), Likert items in scale points. The Wilson intervals above are descriptive."
        if first
        else "Image sources could not be compared with a mixed model."
    )
    blocks: list[Block] = [("h3", "Generated vs real images (mixed model)"), ("p", method)]
    if rows:
        blocks.append(("table", pd.DataFrame(rows)))
    if notes:
        blocks.append(("ul", notes))
    return blocks
