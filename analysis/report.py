"""Writers: ``results.json``, ``report.md`` (APA-7 sentences), ``tables.tex`` (booktabs) and ``report.html``.

The Markdown and HTML reports render the same list of blocks (heading, paragraph, table), so they never
disagree. APA 7: statistics in italics, no leading zero for p, correlations and reliabilities, p < .001.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.offline

Block = tuple[str, object]  # ("h1"|"h2"|"h3"|"p"|"ul", str | list[str]) or ("table", DataFrame)

TEST_SYMBOL = {"paired t-test": "t", "Welch t-test": "t", "Wilcoxon signed-rank": "V", "Mann-Whitney U": "U"}
EFFECT_SYMBOL = {"d_z": "*d*<sub>z</sub>", "hedges_g": "*g*", "rank_biserial": "*r*<sub>rb</sub>"}


# ---------------------------------------------------------------- number formatting (APA 7)
def num(x: float | None, digits: int = 2) -> str:
    """Fixed decimals ('-0.00' printed as '0.00'); '–' for missing."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    text = f"{x:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text


def bounded(x: float | None, digits: int = 2) -> str:
    """Statistics that cannot exceed 1 (p, r, α, κ): no leading zero."""
    text = num(x, digits)
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


def p_text(p: float | None) -> str:
    """A p-value for tables: ``.023`` or ``< .001`` (never ``.000``)."""
    if p is None or math.isnan(p):
        return "–"
    return "< .001" if p < 0.001 else bounded(p, 3)


def pval(p: float | None) -> str:
    """``*p* = .023`` or ``*p* < .001``."""
    text = p_text(p)
    return f"*p* {text}" if text.startswith("<") else f"*p* = {text}"


def ci(bounds: list[float | None] | None, digits: int = 2, fmt=num) -> str:
    """``95 % CI [lo, hi]``."""
    if not bounds:
        return "95 % CI [–, –]"
    return f"95 % CI [{fmt(bounds[0], digits)}, {fmt(bounds[1], digits)}]"


def signed_pct(x: float | None) -> str:
    return "–" if x is None else f"{x:+.1f} %"


# ---------------------------------------------------------------- APA sentences
def parametric_sentence(block: dict) -> str:
    """t-test with mean difference, CI, effect size and the relative change next to them."""
    par = block["parametric"]
    es = par["effect_size"]
    df = f"{par['df']:.0f}" if float(par["df"]).is_integer() else f"{par['df']:.2f}"
    pomp = block["pomp"]["diff"]
    return (
        f"{'A paired' if par['test'] == 'paired t-test' else 'A Welch'} *t*-test: *t*({df}) = "
        f"{num(par['statistic'])}, {pval(par['p'])} (Holm-adjusted {pval(par.get('p_holm'))}); mean "
        "difference "
        f"(visual − baseline) = {num(par['mean_diff'])}, {ci(par['ci95'])}; {EFFECT_SYMBOL[es['name']]} = "
        f"{num(es['value'])}, {ci(es['ci95'])}; relative change of means "
        f"{signed_pct(block['relative_change_pct'])}"
        f" (POMP difference {num(pomp, 1)} points)."
    )


def nonparametric_sentence(block: dict) -> str:
    res = block["nonparametric"]
    es = res["effect_size"]
    return (
        f"{res['test']} test: *{TEST_SYMBOL[res['test']]}* = {num(res['statistic'], 1)}, {pval(res['p'])} "
        f"(Holm-adjusted {pval(res.get('p_holm'))}), {EFFECT_SYMBOL[es['name']]} = {bounded(es['value'])}."
    )


def descriptive_sentence(name: str, block: dict, baseline: str, visual: str) -> str:
    desc = block["descriptives"]
    parts = [
        f"{html.escape(c)} (*M* = {num(desc[c]['mean'])}, *SD* = {num(desc[c]['sd'])}, *n* = {desc[c]['n']})"
        for c in (visual, baseline)
        if c in desc
    ]
    return f"{html.escape(name)}: {' vs. '.join(parts)}."


def reliability_sentence(block: dict) -> str | None:
    if block.get("alpha") is None:
        return None
    omega = f"; McDonald's ω = {bounded(block['omega'])}" if block.get("omega") is not None else ""
    alpha_ci = ci(block["alpha_ci95"], fmt=bounded)
    return f"Reliability: Cronbach's α = {bounded(block['alpha'])}, {alpha_ci}{omega}."


def ordinal_sentence(block: dict) -> str | None:
    res = block.get("ordinal")
    if not res:
        return None
    if "skipped" in res:
        return f"Ordinal model not fitted: {res['skipped']}."
    return (
        "Cumulative link (proportional-odds logit) model on the item answers: *OR* = "
        f"{num(res['odds_ratio'])}, "
        f"{ci(res['odds_ratio_ci95'])}, *z* = {num(res['z'])}, {pval(res['p'])} ({res['n_obs']} answers, "
        f"{res['n_clusters']} participants; {res['limitation']})."
    )


def period_sentence(block: dict) -> str | None:
    res = block.get("period_effect")
    if not res:
        return None
    return (
        f"Condition × period: *t*({res['df']:.2f}) = {num(res['statistic'])}, {pval(res['p'])}; period "
        f"difference (later − earlier) = {num(res['period_diff'])}, {ci(res['period_diff_ci95'])}; "
        f"period-adjusted mean difference = {num(res['adjusted_mean_diff'])} ({res['n_baseline_first']} "
        f"baseline-first, {res['n_visual_first']} visual-first)."
    )


def test_record_sentence(label: str, res: dict | None) -> str | None:
    if not res:
        return None
    es = res["effect_size"]
    df = f"{res['df']:.0f}" if float(res["df"]).is_integer() else f"{res['df']:.2f}"
    return (
        f"{label}: *t*({df}) = {num(res['statistic'])}, {pval(res['p'])}, difference (visual − baseline) = "
        f"{num(res['mean_diff'])}, {ci(res['ci95'])}, {EFFECT_SYMBOL[es['name']]} = {num(es['value'])}."
    )


# ---------------------------------------------------------------- document blocks
def _flow_table(results: dict) -> pd.DataFrame | None:
    flow = results.get("participant_flow")
    return None if not flow else pd.DataFrame(flow).rename(columns={"stage": "Stage", "n": "n"})


def summary_table(results: dict) -> pd.DataFrame:
    """One row per confirmatory construct: means, difference with CI, relative change, test, effect size."""
    rows = []
    b, v = results["baseline"], results["visual"]
    for name, block in results["constructs"].items():
        if "parametric" not in block:
            continue
        par, d = block["parametric"], block["descriptives"]
        es = par["effect_size"]
        rows.append(
            {
                "Construct": name,
                f"{b} M (SD)": f"{num(d[b]['mean'])} ({num(d[b]['sd'])})",
                f"{v} M (SD)": f"{num(d[v]['mean'])} ({num(d[v]['sd'])})",
                "Diff. [95 % CI]": f"{num(par['mean_diff'])} [{num(par['ci95'][0])}, {num(par['ci95'][1])}]",
                "Rel. change": signed_pct(block["relative_change_pct"]),
                "POMP diff.": num(block["pomp"]["diff"], 1),
                "t (df)": f"{num(par['statistic'])} ({par['df']:.1f})",
                "p (Holm)": p_text(par.get("p_holm")),
                "Effect [95 % CI]": f"{num(es['value'])} [{num(es['ci95'][0])}, {num(es['ci95'][1])}]",
                "α": bounded(block.get("alpha")),
            }
        )
    return pd.DataFrame(rows)


def ratings_table(results: dict) -> pd.DataFrame:
    rows = []
    for item, rec in results["ratings"].items():
        lo, hi = rec["proportion_positive_ci95"]
        icc = rec.get("icc") or {}
        rows.append(
            {
                "Item": item,
                "Positive [95 % CI]": f"{bounded(rec['proportion_positive'])} [{bounded(lo)}, {bounded(hi)}]",
                "% agree": f"{100 * rec['percent_agreement']:.1f}"
                if rec["percent_agreement"] is not None
                else "–",
                "Fleiss κ": bounded(rec["fleiss_kappa"]),
                "Gwet AC1": bounded(rec["gwet_ac1"]),
                "Kripp. α (nom.)": bounded(rec["krippendorff_alpha_nominal"]),
                "Kripp. α (ord.)": bounded(rec["krippendorff_alpha_ordinal"]),
                "ICC(A,1)": bounded(icc.get("ICC(A,1)")),
                "ICC(A,k)": bounded(icc.get("ICC(A,k)")),
            }
        )
    return pd.DataFrame(rows)


def trust_table(records: list[dict]) -> pd.DataFrame:
    """Trust-calibration cells with rounded numbers (proportions get their Wilson CI)."""
    rows = []
    for rec in records:
        row = {
            "Condition": rec["condition"],
            "AI correct": "yes" if rec["ai_correct"] else "no",
            "Participants": rec["n_participants"],
            "Answers": rec["n_answers"],
            "M": num(rec["mean"]),
            "SD": num(rec["sd"]),
        }
        if "ci95" in rec:
            row["95 % CI"] = f"[{num(rec['ci95'][0])}, {num(rec['ci95'][1])}]"
        rows.append(row)
    return pd.DataFrame(rows)


def document(results: dict) -> list[Block]:
    """The report as blocks, in the order of a paper's results section."""
    b, v = results["baseline"], results["visual"]
    blocks: list[Block] = [
        ("h1", "Study analysis report"),
        (
            "p",
            (
                f"Design: {results['design']}-subjects; baseline condition {html.escape(b)}, visual "
                "condition "
                f"{html.escape(v)}. All differences are visual − baseline. Generated by {results['tool']}."
            ),
        ),
    ]
    if results["warnings"]:
        blocks += [("h2", "Notes and warnings"), ("ul", [html.escape(w) for w in results["warnings"]])]
    flow = _flow_table(results)
    blocks.append(("h2", "Participant flow"))
    blocks.append(
        ("table", flow)
        if flow is not None
        else (
            "p",
            "No participants file was given: every participant present in the responses was analysed, "
            "and no exclusions were applied.",
        )
    )
    if results["constructs"]:
        blocks += [
            ("h2", "Confirmatory comparisons"),
            (
                "p",
                (
                    "Per construct: construct scores are item means (reverse-coded items reversed). Within "
                    "designs: "
                    "paired t-test with d<sub>z</sub> and Wilcoxon signed-rank; between designs: Welch "
                    "t-test with "
                    "Hedges' g and Mann–Whitney U. p-values are Holm-adjusted across the constructs below. "
                    "Relative "
                    "change depends on the scale's zero point; read it with the mean difference and effect "
                    "size."
                ),
            ),
            ("table", summary_table(results)),
        ]
        for name, block in results["constructs"].items():
            blocks.append(("h3", html.escape(name)))
            if "parametric" not in block:
                blocks.append(("p", f"Not tested: {block.get('skipped')}."))
                continue
            sentences = [
                descriptive_sentence(name, block, b, v),
                parametric_sentence(block),
                nonparametric_sentence(block),
                reliability_sentence(block),
                ordinal_sentence(block),
                period_sentence(block),
            ]
            blocks.append(("ul", [s for s in sentences if s]))
    trust = results.get("trust_calibration")
    if trust:
        blocks.append(("h2", "Trust calibration (AI correct vs deliberately wrong cases)"))
        for key, label in (("agreement_with_ai", "Agreement with the AI"), ("trust", "Trust")):
            if trust[key]:
                blocks += [
                    ("p", f"{label} per condition and AI correctness (means of participant means):"),
                    ("table", trust_table(trust[key])),
                ]
        sentences = [
            test_record_sentence(
                "Over-reliance (agreement with wrong AI), visual vs baseline", trust["over_reliance"]
            ),
            test_record_sentence(
                "Trust calibration gap (correct − wrong cases), visual vs baseline", trust["trust_gap"]
            ),
        ]
        blocks.append(("ul", [s for s in sentences if s]))
    if results["ratings"]:
        blocks += [
            ("h2", "Expert ratings"),
            (
                "p",
                (
                    "Proportion positive with Wilson 95 % CIs; agreement coefficients with percentile "
                    "bootstrap CIs over "
                    "images in results.json. With high prevalence κ can be low although raters agree (kappa "
                    "paradox); "
                    "AC1 and prevalence are printed so readers can see why."
                ),
            ),
            ("table", ratings_table(results)),
        ]
        for item, rec in results["ratings"].items():
            blocks.append(
                (
                    "p",
                    (
                        f"{html.escape(item)}: prevalence {bounded(rec['prevalence'])} "
                        f"({rec['positive_rule']}), "
                        f"Fleiss' κ = {bounded(rec['fleiss_kappa'])}, "
                        f"{ci(rec['ci95'].get('fleiss_kappa'), fmt=bounded)}; "
                        f"Gwet's AC1 = {bounded(rec['gwet_ac1'])}, "
                        f"{ci(rec['ci95'].get('gwet_ac1'), fmt=bounded)}; "
                        f"{rec['n_images']} images, {rec['n_raters']} raters."
                    ),
                )
            )
    blocks += power_blocks(results)
    return blocks


def power_blocks(results: dict) -> list[Block]:
    power = results.get("power") or {}
    items = []
    if power.get("sensitivity"):
        s = power["sensitivity"]
        items.append(
            f"Sensitivity: with *n* = {s['n']} ({s['design']}), a two-sided test at α = "
            f"{bounded(s['alpha'])} has {s['power']:.0%} power for "
            f"{EFFECT_SYMBOL.get(s['effect_name'], '*d*')} ≥ "
            f"{num(s['min_effect'])}."
        )
    if power.get("a_priori"):
        a = power["a_priori"]
        items.append(
            f"A priori: detecting an effect of {num(a['effect'])} with {a['power']:.0%} power needs "
            f"{a['n_total']} participants ({a['design']}; exact {a['n_exact']:.2f} per group)."
        )
    if power.get("simulation"):
        sim = power["simulation"]
        source = {
            "engine_bots": "bot participants walking the real study engine, sampled from one simulated "
            "population per planted effect",
            "likert": "a generic Likert data generator (no protocol was given)",
        }.get(sim.get("generator_kind"), str(sim.get("generator_kind")))
        realized = (sim.get("generator_details") or {}).get("population_effect") or {}
        shown = "; ".join(f"planted {k} → population {num(v)}" for k, v in realized.items())
        items.append(
            f"Simulation-based power curve for *{sim.get('construct')}* from {source}"
            + (f" (realized effects: {shown})" if shown else "")
            + ": see the power figure and `power.simulation` in results.json."
        )
    return [("h2", "Power"), ("ul", items)] if items else []


# ---------------------------------------------------------------- renderers
def _md_table(frame: pd.DataFrame) -> str:
    cells = frame.astype(object).where(frame.notna(), "–").astype(str)
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    return "\n".join([header, rule, *("| " + " | ".join(row) + " |" for row in cells.to_numpy())])


def render_markdown(blocks: list[Block]) -> str:
    out = []
    for kind, content in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + str(content))
        elif kind == "p":
            out.append(str(content))
        elif kind == "ul":
            out.append("\n".join(f"- {line}" for line in content))
        else:
            out.append(_md_table(content))
    return "\n\n".join(out) + "\n"


def _inline_html(text: str) -> str:
    """Markdown emphasis and code to HTML (the text is already HTML-escaped where it holds data)."""
    text = re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def render_html(blocks: list[Block], figures: dict[str, go.Figure]) -> str:
    """One self-contained HTML page: the report plus every interactive figure, plotly.js inlined once."""
    body = []
    for kind, content in blocks:
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{content}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(str(content))}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline_html(line)}</li>" for line in content) + "</ul>")
        else:
            body.append(content.to_html(index=False, border=0, classes="tbl", na_rep="–"))
    if figures:
        body.append("<h2>Figures</h2>")
        body += [
            f'<div class="fig">{fig.to_html(full_html=False, include_plotlyjs=False)}</div>'
            for fig in figures.values()
        ]
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.5}"
        ".tbl{border-collapse:collapse;font-size:.9em;margin:1em 0}.tbl td,.tbl th{padding:.3em .6em;"
        "border-bottom:1px solid #ddd;text-align:left}.fig{margin:2em 0}"
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Study analysis report</title>"
        f"<style>{style}</style><script>{plotly.offline.get_plotlyjs()}</script></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


# ---------------------------------------------------------------- LaTeX
LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "−": "$-$",
    "α": r"$\alpha$",
    "κ": r"$\kappa$",
    "ω": r"$\omega$",
}


def tex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def latex_table(frame: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs table (needs ``\\usepackage{booktabs}``)."""
    cols = "l" + "r" * (len(frame.columns) - 1)
    lines = [
        r"\begin{table}[ht]",
        r"\centering",
        r"\small",
        rf"\caption{{{tex_escape(caption)}}}",
        rf"\label{{{label}}}",
        rf"\begin{{tabular}}{{{cols}}}",
        r"\toprule",
        " & ".join(tex_escape(c) for c in frame.columns) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(tex_escape(x) for x in row) + r" \\" for row in frame.astype(str).to_numpy()]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def render_latex(results: dict) -> str:
    parts = [f"% Generated by {results['tool']}; requires \\usepackage{{booktabs}}"]
    flow = _flow_table(results)
    if flow is not None:
        parts.append(latex_table(flow, "Participant flow.", "tab:flow"))
    if results["constructs"]:
        design = "paired t-test, d_z" if results["design"] == "within" else "Welch t-test, Hedges' g"
        parts.append(
            latex_table(
                summary_table(results),
                f"Confirmatory comparisons ({design}; Holm-adjusted p; differences are visual − baseline).",
                "tab:constructs",
            )
        )
    if results["ratings"]:
        parts.append(
            latex_table(
                ratings_table(results),
                "Expert ratings: proportion positive (Wilson 95% CI) and inter-rater agreement.",
                "tab:ratings",
            )
        )
    return "\n\n".join(parts) + "\n"


def write_reports(results: dict, figures: dict[str, go.Figure], out_dir: Path) -> None:
    """Write results.json, report.md, tables.tex and report.html into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(
        json.dumps(results, indent=2, ensure_ascii=False, allow_nan=False), encoding="utf-8"
    )
    blocks = document(results)
    (out_dir / "report.md").write_text(render_markdown(blocks), encoding="utf-8")
    (out_dir / "tables.tex").write_text(render_latex(results), encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(blocks, figures), encoding="utf-8")
