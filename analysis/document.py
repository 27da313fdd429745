"""The report as a list of blocks (heading, paragraph, list, table), in the order of a paper's results section.

The Markdown and HTML renderers (:mod:`analysis.render`) draw the same blocks, so they never disagree; the
LaTeX tables come from the same table functions.
"""

from __future__ import annotations

import html

import pandas as pd

from analysis import document_mixed, document_standards
from analysis.apa import (
    EFFECT_NAME,
    EFFECT_SYMBOL,
    bf_cell,
    bf_clause,
    bounded,
    ci,
    ci_label,
    df_text,
    interval,
    num,
    p_text,
    pval,
)
from analysis.document_constructs import (
    Block,
    construct_section,
    summary_caption,
    summary_table,
    trust_sentences,
)
from analysis.document_reliance import engagement_blocks, reliance_blocks
from analysis.labels import condition_label, item_label, stage_label
from analysis.ratings_model import SOURCE_TEXT


def flow_table(results: dict) -> pd.DataFrame | None:
    flow = results.get("participant_flow")
    if not flow:
        return None
    table = pd.DataFrame(flow).rename(columns={"stage": "Stage", "n": "n"})
    return table.assign(Stage=table["Stage"].map(stage_label))


DIRECTION_TEXT = {"greater": "greater", "less": "less", "two_sided": "two-sided"}


def direction_text(h: dict) -> str:
    """The declared direction; equivalence and non-inferiority with their bounds in construct-score points."""
    if h["direction"] == "equivalent":
        return f"equivalent (±{num(h['sesoi'])})"
    if h["direction"] == "non_inferior":
        return f"non-inferior (margin {num(h['sesoi'])})"
    return DIRECTION_TEXT[h["direction"]]


def verdict(h: dict) -> str:
    """'supported' / 'not supported'; for TOST hypotheses what was shown: 'equivalent within ±Δ' or not."""
    if "skipped" in h:
        return f"not tested: {h['skipped']}"
    if h["direction"] == "equivalent":
        return f"equivalent within ±{num(h['sesoi'])}" if h["supported"] else "not shown equivalent"
    if h["direction"] == "non_inferior":
        return f"non-inferior (margin {num(h['sesoi'])})" if h["supported"] else "not shown non-inferior"
    return "supported" if h["supported"] else "not supported"


def hypotheses_table(results: dict) -> pd.DataFrame:
    """One row per preregistered hypothesis: comparison, direction, test, corrected p, difference and effect
    with the interval that matches the test (1 − 2α for one-sided and TOST tests), BF10, verdict."""
    rows = []
    for h in results["hypotheses"]:
        row = {
            "Hypothesis": h["hypothesis"],
            "Construct": h["construct"],
            "Comparison": f"{condition_label(results, h['first'])} vs {condition_label(results, h['second'])}",
            "Direction": direction_text(h),
            "α": bounded(h["alpha"]),
        }
        if "skipped" in h:
            rows.append({**row, "Result": verdict(h)})
            continue
        es = h["effect_size"]
        rank = h.get("rank_test")
        rows.append(
            {
                **row,
                "M first / second": f"{num(h['mean_first'])} / {num(h['mean_second'])}",
                "Test": h["test"],
                "t (df)": f"{num(h['statistic'])} ({df_text(h['df'])})",
                "p": p_text(h["p"]),
                f"p ({h['correction']})": p_text(h["p_adjusted"]),
                "CI": ci_label(h["ci_level"]),
                "Diff. [CI]": f"{num(h['mixed']['estimate'])} {interval(h['mixed']['ci'])}"
                if "mixed" in h
                else f"{num(h['mean_diff'])} {interval(h['ci'])}",
                f"{EFFECT_NAME[es['name']]} [CI]": f"{num(es['value'])} {interval(es['ci'])}",
                "BF10": bf_cell(h["bayes_factor"]["value"]),
                "Rank test p": p_text(rank["p"]) if rank else "–",
                "Result": verdict(h),
            }
        )
    return pd.DataFrame(rows)


def hypothesis_sentence(results: dict, h: dict) -> str:
    """APA sentence of one tested hypothesis: test, p (and corrected p), difference and effect with the
    matching interval, BF10, and what the test shows."""
    es = h["effect_size"]
    df = df_text(h["df"])
    first, second = (_text(condition_label(results, h[k])) for k in ("first", "second"))
    bound = " (the binding bound)" if h["direction"] == "equivalent" else ""
    return (
        f"{_text(h['hypothesis'])} ({_text(h['construct'])}, {first} vs {second}, {direction_text(h)}): "
        f"{h['test']}, *t*({df}) = {num(h['statistic'])}{bound}, {pval(h['p'])} ({h['correction']}-adjusted "
        f"{pval(h['p_adjusted'])}); difference = {num(h['mean_diff'])}, {ci(h['ci'], h['ci_level'])}; "
        f"{EFFECT_SYMBOL[es['name']]} = {num(es['value'])}, {ci(es['ci'], h['ci_level'])}; "
        f"{bf_clause(h['bayes_factor'])} — {verdict(h)}."
    )


def instruments_table(results: dict) -> pd.DataFrame:
    """One row per instrument: items used, scores by the published rule per condition, α, adaptation."""
    rows = []
    for construct, block in results["instruments"].items():
        d = block["descriptives"]

        def cell(condition: str, d: dict = d) -> str:
            return f"{num(d[condition]['mean'])} ({num(d[condition]['sd'])})" if condition in d else "–"

        alpha = block["alpha"]
        rows.append(
            {
                "Construct": construct,
                "Instrument": block["name"] or block["instrument"],
                "Items": f"{block['n_items']}/{block['n_items_published']}",
                "Version": "adapted" if block["adapted"] else "as published",
                **{f"{condition_label(results, c)} M (SD)": cell(c) for c in results["conditions"]},
                "Range": f"{num(block['range'][0], 1)}–{num(block['range'][1], 1)}",
                "α": bounded(alpha["value"]) if alpha else "–",
                "Not scored": block["not_scored"],
            }
        )
    return pd.DataFrame(rows)


def ratings_table(results: dict) -> pd.DataFrame:
    rows = []
    label = ci_label(results["confidence"])
    for item, rec in results["ratings"].items():
        icc = rec.get("icc") or {}
        rows.append(
            {
                "Item": item_label(results.get("labels"), item, rating=True),
                f"Positive [{label}]": f"{bounded(rec['proportion_positive'])} "
                f"{interval(rec['proportion_positive_ci'], fmt=bounded)}",
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


def trust_table(records: list[dict], confidence: float, results: dict) -> pd.DataFrame:
    """Trust-calibration cells with rounded numbers (proportions get their Wilson CI)."""
    rows = []
    for rec in records:
        row = {
            "Condition": condition_label(results, rec["condition"]),
            "AI correct": "yes" if rec["ai_correct"] else "no",
            "Participants": rec["n_participants"],
            "Answers": rec["n_answers"],
            "M": num(rec["mean"]),
            "SD": num(rec["sd"]),
        }
        if "ci" in rec:
            row[ci_label(confidence)] = interval(rec["ci"])
        rows.append(row)
    return pd.DataFrame(rows)


def document(results: dict) -> list[Block]:
    """The report as blocks, in the order of a paper's results section."""
    return [
        *header_blocks(results),
        *plan_blocks(results),
        *flow_blocks(results),
        *construct_section(results, no_participants_text(results)),
        *document_standards.standards_blocks(results),
        *instrument_report_blocks(results),
        *trust_blocks(results),
        *reliance_blocks(results),
        *engagement_blocks(results),
        *rating_blocks(results),
        *interaction_blocks(results),
        *power_blocks(results),
    ]


def header_blocks(results: dict) -> list[Block]:
    b = results["baseline"]
    (v, *_) = [c for c in results["conditions"] if c != b] or [""]
    if len(results["conditions"]) > 2:
        others = ", ".join(html.escape(condition_label(results, c)) for c in results["conditions"] if c != b)
        design = (
            f"Design: {results['design']}-subjects; baseline condition {html.escape(condition_label(results, b))}, "
            "compared with "
            f"{others}. Differences are condition − baseline. Generated by {results['tool']}."
        )
    else:
        design = (
            f"Design: {results['design']}-subjects; baseline condition {html.escape(condition_label(results, b))}, "
            f"compared condition {html.escape(condition_label(results, v))}. All differences are compared − baseline. "
            f"Generated by {results['tool']}."
        )
    blocks: list[Block] = [("h1", "Study analysis report"), ("p", design)]
    if results["warnings"]:
        blocks += [("h2", "Notes and warnings"), ("ul", [html.escape(w) for w in results["warnings"]])]
    return blocks


def flow_blocks(results: dict) -> list[Block]:
    flow = flow_table(results)
    by_arm = document_standards.flow_by_arm_table(results)
    if by_arm is not None:
        return [
            ("h2", "Participant flow"),
            (
                "p",
                "Per arm (CONSORT 2010): a participant excluded for two reasons counts under both reasons.",
            ),
            ("table", by_arm),
        ]
    if flow is not None:
        return [("h2", "Participant flow"), ("table", flow)]
    return [
        ("h2", "Participant flow"),
        (
            "p",
            "No participants file was given: every participant present in the responses was analysed, "
            "and no exclusions were applied.",
        ),
    ]


def no_participants_text(results: dict) -> str:
    """What a report says when every participant was excluded: exactly that, and why."""
    flow = {r["stage"]: r["n"] for r in results.get("participant_flow") or []}
    if flow.get("excluded"):
        reasons = "; ".join(
            f"{stage_label(s).partition(': ')[2]}: {n}" for s, n in flow.items() if s.startswith("excluded: ")
        )
        return (
            f"No participant was analysed: all {flow['excluded']} participants were excluded by the "
            f"protocol's rules ({reasons}), so no construct could be tested. The sensitivity analysis below "
            "shows the tests without the exclusions."
        )
    return "No participant was analysed: the responses hold no answers in the compared conditions."


def _text(value: str) -> str:
    """Data shown in both renderers: HTML-escaped, quotes kept readable in the Markdown."""
    return html.escape(value, quote=False)


BF_METHOD = (
    "JZS prior, Cauchy scale r = √2/2 (Rouder et al. 2009); paired data: one-sample t of the differences; "
    "two samples: Student's t"
)


def hypotheses_heading(plan: dict) -> str:
    """'… of the preregistered hypotheses' only when the plan is the preregistered one and nothing deviates."""
    if plan["status"] == "as preregistered" and not plan["deviations"]:
        return "Confirmatory tests of the preregistered hypotheses"
    if plan["status"] == "not preregistered":
        return "Tests of the declared (not preregistered) hypotheses"
    return "Tests of the declared hypotheses (see the deviations from the plan above)"


def plan_blocks(results: dict) -> list[Block]:
    """The preregistration: its status, every deviation, and the confirmatory tests of the hypotheses."""
    plan = results.get("preregistration")
    if plan is None:
        return []
    status = {
        "as preregistered": "The analysed protocol's preregistration document is the one preregistered "
        f"(SHA-256 {str(plan['stored_hash'])[:12]}…).",
        "changed after preregistration": "The protocol changed after preregistration: the document "
        "regenerated from the analysed protocol differs from the preregistered one.",
        "not preregistered": "No preregistration is stored with the study"
        + (
            ": the hypotheses the protocol declares are tested as declared, but were not preregistered."
            if results["hypotheses"]
            else ": every analysis is exploratory."
        ),
        "unknown": "Whether the study was preregistered is not known from this input (no study.csv).",
    }[plan["status"]]
    blocks: list[Block] = [("h2", "Preregistration"), ("p", status)]
    if plan["deviations"]:
        blocks += [("p", "Deviations from the plan:"), ("ul", [_text(d) for d in plan["deviations"]])]
    elif plan["status"] == "as preregistered":
        blocks.append(("p", "No deviations from the plan."))
    if results["hypotheses"]:
        tested = [h for h in results["hypotheses"] if "skipped" not in h]
        blocks += [
            ("h3", hypotheses_heading(plan)),
            (
                "p",
                "Each hypothesis is tested in its declared direction (one-sided unless two-sided was declared), "
                "corrected across the hypotheses as declared; the rank-based test runs in the same direction "
                "as a check. Equivalence and non-inferiority hypotheses are tested by two one-sided tests "
                "(TOST; Lakens 2017) against their smallest effect size of interest in construct-score points. "
                "One-sided and TOST tests come with the (1 − 2α) interval, whose bound on the tested side is "
                "the one-sided (1 − α) bound; two-sided tests with the report's interval. BF<sub>10</sub> is the "
                f"two-sided default Bayes factor ({BF_METHOD}). Effects are first − second condition.",
            ),
            ("table", hypotheses_table(results)),
            *([("ul", [hypothesis_sentence(results, h) for h in tested])] if tested else []),
            (
                "p",
                "Everything else in this report — the other constructs, the two-sided comparisons below, trust "
                "calibration, expert ratings and power — is exploratory.",
            ),
        ]
    return blocks


def instrument_report_blocks(results: dict) -> list[Block]:
    """Published instruments: scores by their own rule, reliability, adaptations, norms."""
    if not results.get("instruments"):
        return []
    blocks: list[Block] = [
        ("h2", "Instruments"),
        (
            "p",
            "Scores follow each instrument's published rule (missing-item rule as stated); α is Cronbach's "
            "alpha over participant × condition rows.",
        ),
        ("table", instruments_table(results)),
    ]
    for construct, block in results["instruments"].items():
        lines = [f"Scoring: {_text(block['scoring_rule'])} Missing items: {_text(block['missing_rule'])}"]
        if block["adapted"]:
            lines.append(f"Adapted: {_text(block['adaptation'])}.")
        for name, sub in block["subscales"].items():
            alpha = sub["alpha"]
            means = "; ".join(f"{c}: *M* = {num(d['mean'])}" for c, d in sub["descriptives"].items())
            lines.append(f"Subscale {_text(name)}: {means}; α = {bounded(alpha['value']) if alpha else '–'}.")
        norms = block.get("norms")
        if norms:
            for condition, place in norms["by_condition"].items():
                adjective = f", adjective “{place['adjective']}”" if place["adjective"] else ""
                lines.append(
                    f"{_text(condition_label(results, condition))}: mean {num(place['score'], 1)} — grade "
                    f"{place['grade']}{adjective}, "
                    f"percentile {num(place['percentile'], 0)}."
                )
            lines.append(
                f"Norms: {_text(norms['source'])} Grades: {_text(norms['grades_source'])}"
                + (f" Adjectives: {_text(norms['adjectives_source'])}" if norms["adjectives_source"] else "")
            )
        lines.append(f"Source: {_text(block['citation'])} Licence: {_text(block['licence'])}.")
        blocks += [("h3", f"{_text(construct)}: {_text(block['name'])}"), ("ul", lines)]
    return blocks


def trust_blocks(results: dict) -> list[Block]:
    trust = results.get("trust_calibration")
    if not trust:
        return []
    level = results["confidence"]
    blocks: list[Block] = [("h2", "Trust calibration (AI correct vs deliberately wrong cases)")]
    for key, label in (("agreement_with_ai", "Agreement with the AI"), ("trust", "Trust")):
        if trust[key]:
            blocks += [
                ("p", f"{label} per condition and AI correctness (means of participant means):"),
                ("table", trust_table(trust[key], level, results)),
            ]
    blocks.append(("ul", trust_sentences(trust, results)))
    return blocks


def interaction_blocks(results: dict) -> list[Block]:
    """Interactions with the live model per condition (interactive conditions only)."""
    if not results.get("interactions"):
        return []
    rows = [
        {
            "condition": condition_label(results, condition),
            "participants": rec["participants"],
            "questions": rec["questions"],
            "questions per participant": round(rec["questions_per_participant"], 2),
            "reference requests": rec["references"],
            "median latency (ms)": "—"
            if rec["median_latency_ms"] is None
            else round(rec["median_latency_ms"]),
            "answers naming no condition": "—"
            if rec["unknown_answers"] is None
            else f"{rec['unknown_answers']:.0%}",
        }
        for condition, rec in results["interactions"].items()
    ]
    return [
        ("h2", "Interactions with the live model"),
        ("p", "Turns of participants who used the live model (per participant, in interactions.csv)."),
        ("table", pd.DataFrame(rows)),
    ]


def rating_blocks(results: dict) -> list[Block]:
    if not results["ratings"]:
        return []
    level = results["confidence"]
    blocks: list[Block] = [
        ("h2", "Expert ratings"),
        (
            "p",
            f"Proportion positive with Wilson {ci_label(level)}s; agreement coefficients with percentile "
            "bootstrap CIs over images in results.json. With high prevalence κ can be low although raters "
            "agree (kappa paradox); AC1 and prevalence are printed so readers can see why.",
        ),
        ("table", ratings_table(results)),
        *kind_blocks(results),
        *document_standards.source_model_blocks(results),
    ]
    for item, rec in results["ratings"].items():
        blocks.append(
            (
                "p",
                f"{html.escape(item_label(results.get('labels'), item, rating=True))}: prevalence "
                f"{bounded(rec['prevalence'])} ({rec['positive_rule']}), "
                f"Fleiss' κ = {bounded(rec['fleiss_kappa'])}, "
                f"{ci(rec['ci'].get('fleiss_kappa'), level, fmt=bounded)}; "
                f"Gwet's AC1 = {bounded(rec['gwet_ac1'])}, "
                f"{ci(rec['ci'].get('gwet_ac1'), level, fmt=bounded)}; "
                f"{rec['n_images']} images, {rec['n_raters']} raters.",
            )
        )
    return blocks + closed_loop_blocks(results)


def kind_blocks(results: dict) -> list[Block]:
    """Positive ratings per kind of image (generated, retrieved real, case photo), when the task mixed them."""
    label = ci_label(results["confidence"])
    rows = [
        {"Item": item_label(results.get("labels"), item, rating=True), "Image kind": SOURCE_TEXT.get(kind, kind),
         "n": cell["n"],
         f"Positive [Wilson {label}]": f"{bounded(cell['proportion'])} {interval(cell['ci'], fmt=bounded)}"}
        for item, rec in results["ratings"].items()
        for kind, cell in (rec.get("proportion_positive_by_image_kind") or {}).items()
    ]  # fmt: skip
    if len({row["Image kind"] for row in rows}) < 2:
        return []
    note = (
        "Raters saw every kind blind, mixed in one pool: generated references, retrieved real references and "
        "case photos. Wilson intervals treat ratings as independent (descriptive)."
    )
    return [("p", note), ("table", pd.DataFrame(rows))]


def closed_loop_blocks(results: dict) -> list[Block]:
    """Do the experts agree with the automatic check? (the relevance item against the closed loop)"""
    record = results.get("closed_loop_agreement")
    if not record:
        return []
    title = ("h3", "Experts and the closed-loop check")
    item = html.escape(item_label(results.get("labels"), record["item"], rating=True))
    if "skipped" in record:
        return [
            title,
            (
                "p",
                f"{item}: not compared ({html.escape(record['skipped'])}).",
            ),
        ]
    level = results["confidence"]
    rows = [
        {"skin condition": condition, "images": cell["n_images"], "ratings": cell["n_ratings"],
         "agreement": bounded(cell["agreement"]),
         f"Wilson {ci_label(level)}": interval(cell["agreement_ci"], fmt=bounded)}
        for condition, cell in record["by_skin_condition"].items()
    ]  # fmt: skip
    return [
        title,
        (
            "p",
            f"Each rating of *{item}* ({record['relevant_rule']} counts as relevant) paired "
            "with the diagnoser's verdict on the same image (`skingen bundle build --evaluate`); intervals from a "
            f"bootstrap over images. {record['text']}",
        ),
        *([("table", pd.DataFrame(rows))] if rows else []),
    ]


def _participants_counted(record: dict) -> str:
    """What n counts: every participant (within: each in every condition; between: n/k per arm)."""
    if record["design"] == "within":
        return "participants in total (within-subjects: each in every condition)"
    return f"participants in total (between-subjects: {record['n'] / record.get('k', 2):g} per arm)"


def _split(record: dict) -> str:
    """What a power record's α was split over (formats.planning.planned_test), when it was."""
    if record["family"] == 1:
        return ""
    return f" ({record['alpha']:g} / {record['family']} {record['family_of']}, {record['correction']})"


def power_blocks(results: dict) -> list[Block]:
    power = results.get("power") or {}
    items = []
    if power.get("sensitivity"):
        s = power["sensitivity"]
        items.append(
            f"Sensitivity: with *n* = {s['n']} {_participants_counted(s)}, a {s['sided']} test at α = "
            f"{bounded(s['alpha_per_test'])}{_split(s)} has {s['power']:.0%} power for "
            f"{EFFECT_SYMBOL.get(s['effect_name'], '*d*')} ≥ "
            f"{num(s['min_effect'])}."
        )
    if power.get("a_priori"):
        a = power["a_priori"]
        symbol = "*d*<sub>z</sub>" if a["design"] == "within" else "*d*"
        per = "pairs" if a["design"] == "within" else "per arm"
        items.append(
            f"A priori: detecting {symbol} = {num(a['effect'])} with {a['power']:.0%} power"
            + (
                f" ({a['sided']}, α = {bounded(a['alpha_per_test'])}{_split(a)})"
                if a["family"] > 1 or a["sided"] != "two-sided"
                else ""
            )
            + f" needs {a['n_total']} participants in total ({a['design']}-subjects; exact "
            f"{a['n_exact']:.2f} {per})."
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
    blocks: list[Block] = [("h2", "Power"), ("ul", items)] if items else []
    if power.get("cases"):
        blocks += document_mixed.cases_blocks(power["cases"])
    return blocks


def latex_tables(results: dict) -> list[tuple[pd.DataFrame, str, str]]:
    """The tables of ``tables.tex`` as ``(table, caption, label)``, in the report's order."""
    tables = []
    flow = document_standards.flow_by_arm_table(results)
    flow = flow if flow is not None else flow_table(results)
    if flow is not None:
        tables.append((flow, "Participant flow.", "tab:flow"))
    baseline = document_standards.baseline_table(results)
    if baseline is not None:
        tables.append((baseline, "Baseline characteristics by arm.", "tab:baseline"))
    if results["constructs"]:
        tables.append((summary_table(results), summary_caption(results), "tab:constructs"))
    if document_mixed.has_mixed(results):
        tables.append(
            (
                document_mixed.mixed_table(results),
                "Primary analysis of constructs with per-case items: linear mixed models with crossed random "
                "effects for participants and cases (Holm-adjusted p).",
                "tab:mixed",
            )
        )
    if results["hypotheses"]:
        tables.append(
            (
                hypotheses_table(results),
                "Confirmatory tests of the preregistered hypotheses (declared direction and correction).",
                "tab:hypotheses",
            )
        )
    if results["instruments"]:
        tables.append(
            (instruments_table(results), "Instruments scored by their published rules.", "tab:instruments")
        )
    if results["ratings"]:
        tables.append(
            (
                ratings_table(results),
                f"Expert ratings: proportion positive (Wilson {ci_label(results['confidence'])}) and inter-rater "
                "agreement.",
                "tab:ratings",
            )
        )
    cases = (results.get("power") or {}).get("cases")
    if cases:
        tables.append(
            (
                document_mixed.cases_table(cases),
                f"How many cases? Power of the mixed model by participants and cases (d = {cases['effect_d']:g}, "
                "Westfall, Kenny & Judd 2014).",
                "tab:cases",
            )
        )
    return tables
