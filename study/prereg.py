"""The preregistration document of a protocol, and its hash.

``skingen-study prereg`` writes the plan a reviewer expects to have been fixed before the data came in, in the
sections of the OSF Preregistration and AsPredicted templates: hypotheses, design, sampling plan with its power
analysis, variables (with each instrument's citation, licence and scoring), the analysis plan (exact tests,
direction, correction) and exclusions. The text depends on the protocol only — no dates, no tool version —
so the same protocol always gives the same document and :func:`document_hash`; ``init`` stores that hash,
the export carries it beside the hash regenerated from the registered protocol, and the report states any
difference as a deviation.

The power analysis is the exact noncentral-t power of the planned test (as G*Power and R ``power.t.test``),
computed by :mod:`formats.planning` — the same functions and the same α-split rule the analysis report uses,
so the two print the same n for the same protocol and effect.
"""

from __future__ import annotations

import hashlib

from formats.contract import construct_order
from formats.planning import (
    SIMPLIFICATION_RULE,
    PlannedTest,
    VarianceComponents,
    case_power,
    planned_formula,
    planned_test,
    power_grid,
    random_effects_text,
    required_sample,
    t_test_power,
)
from study.protocol.instrument_use import InstrumentUse
from study.protocol.model import Protocol
from study.protocol.sections import EQUIVALENCE_DIRECTIONS, Hypothesis, SampleSize

TEMPLATE = "OSF Preregistration (Bowman et al. 2016) / AsPredicted"
SIDES = {
    "greater": "one-sided",
    "less": "one-sided",
    "two_sided": "two-sided",
    "equivalent": "two one-sided tests",
    "non_inferior": "one-sided",
}


# --- the planned test ------------------------------------------------------------------------------------
def planned(protocol: Protocol) -> PlannedTest:
    """The test the power analysis plans for (:func:`formats.planning.planned_test`: α split over the
    confirmatory family — the declared hypotheses, or without them the k − 1 comparisons with the baseline)."""
    hypotheses = protocol.hypotheses
    return planned_test(
        [h.alpha for h in hypotheses],
        [h.direction for h in hypotheses],
        protocol.preregistration.correction,
        len(protocol.conditions),
    )


def per_case_constructs(protocol: Protocol) -> list[str]:
    """Constructs with a rating-scale item (Likert, slider) asked on every case (the trial questionnaire): the
    mixed model's, in the analysis' order."""
    return construct_order(i.construct for i in protocol.questionnaires.trial if i.rating_scale)


PLANNED_CASES = (6, 10, 20, 40)


def planned_point_effect(plan: SampleSize, components: VarianceComponents) -> float:
    """The mixed model's effect in scale points: ``point_effect`` when declared, else the declared effect read
    as Westfall, Kenny & Judd's d (the effect over the SD of a single answer, √ of all variance components),
    as ``skingen-analysis`` reads ``--target-effect`` for its "how many cases?" table."""
    if plan.point_effect is not None:
        return plan.point_effect
    return plan.effect * components.total_sd


def cases_table(protocol: Protocol, alpha: float, sided: str) -> list[str]:
    """The mixed model's power for participants × cases (Westfall, Kenny & Judd 2014), as Markdown lines."""
    plan = protocol.preregistration.sample_size
    components = VarianceComponents(**plan.components)
    effect = planned_point_effect(plan, components)
    cases = tuple(sorted({*PLANNED_CASES, *([plan.cases] if plan.cases else [])}))
    participants = tuple(sorted({20, 40, 80, 160, plan.participants}))
    k = len(protocol.conditions)
    # The formula needs 2k participants and 2k cases (its df); smaller cells are shown as "—", not computed.
    grid = {
        (r.participants, r.cases): f"{r.power:.2f}"
        for r in power_grid(
            effect,
            protocol.design,
            tuple(n for n in participants if n >= 2 * k),
            tuple(q for q in cases if q >= 2 * k),
            components,
            alpha=alpha,
            sided=sided,
            k=k,
        )
    }
    header = "| participants | " + " | ".join(f"{q} cases" for q in cases) + " |"
    rows = [header, "|---:|" + "---:|" * len(cases)]
    rows += [f"| {n} | " + " | ".join(grid.get((n, q), "—") for q in cases) + " |" for n in participants]
    shown = ", ".join(f"{name} {value:g}" for name, value in components.__dict__.items())
    return [
        f"Mixed-model power (Westfall, Kenny & Judd 2014; noncentral t with Satterthwaite df from the design's "
        f"mean squares), effect {effect:g} scale points"
        + (
            " (`point_effect`)"
            if plan.point_effect is not None
            else f" (the declared effect read as Westfall et al.'s d = {plan.effect:g}: over the SD of a single "
            "answer, all variance components)"
        )
        + f", {sided}, α = {alpha:.4g}, variance components (SDs in points) {shown}:\n\n"
        + "\n".join(rows)
    ]


# --- the document ----------------------------------------------------------------------------------------
def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _label(protocol: Protocol, condition_id: str) -> str:
    return f"{protocol.condition(condition_id).label} (`{condition_id}`)"


def hypothesis_sentence(protocol: Protocol, hypothesis: Hypothesis) -> str:
    first, second = (_label(protocol, c) for c in hypothesis.comparison)
    sesoi = f"{hypothesis.sesoi:g}" if hypothesis.sesoi is not None else ""
    claim = {
        "greater": f"is higher under {first} than under {second}",
        "less": f"is lower under {first} than under {second}",
        "two_sided": f"differs between {first} and {second}",
        "equivalent": f"is equivalent under {first} and {second}: the difference lies within ±{sesoi} "
        "construct-score points",
        "non_inferior": f"is not lower under {first} than under {second} by {sesoi} construct-score points or "
        "more (non-inferiority margin)",
    }[hypothesis.direction]
    return (
        f"**{hypothesis.id}**: `{hypothesis.construct}` {claim}"
        f" ({SIDES[hypothesis.direction]}, α = {hypothesis.alpha:g})."
        + (f" {hypothesis.statement}" if hypothesis.statement else "")
    )


def _hypotheses(protocol: Protocol) -> str:
    if not protocol.hypotheses:
        return "No confirmatory hypotheses are declared: every analysis in the report is exploratory."
    return _bullets([hypothesis_sentence(protocol, h) for h in protocol.hypotheses])


def _design(protocol: Protocol) -> str:
    r = protocol.randomization
    arms = (
        f"each participant sees every condition, one per part, in an order counterbalanced over "
        f"{protocol.n_arms} sequences (condition order × case set, Latin square)"
        if protocol.design == "within"
        else f"each participant is allocated to one of {protocol.n_arms} arms"
    )
    strata = f", stratified by `{r.stratify_by}` ({', '.join(protocol.strata)})" if r.stratify_by else ""
    lines = [
        f"Design: {protocol.design}-subjects; {arms}.",
        "Conditions: "
        + "; ".join(
            f"{_label(protocol, c.id)}{' — baseline' if c.id == protocol.baseline else ''}"
            f"{' — shows the generated reference images' if c.references else ''}"
            for c in protocol.conditions
        )
        + ".",
        f"Randomization: {r.method.replace('_', ' ')} with block sizes {', '.join(map(str, r.block_sizes))} "
        f"(seed {r.seed}){strata}; the allocation table is made before enrollment.",
        f"Cases: bundle `{protocol.cases.bundle}`, "
        f"{'all cases' if protocol.cases.include == 'all' else ', '.join(protocol.cases.include)}, "
        f"{protocol.cases.order} order.",
        "Blinding: participants are not told which condition they are in; allocation is concealed in the table.",
    ]
    if protocol.trial.judge_advisor:
        lines.append(
            "Trials (judge–advisor): on each case the participant first gives their own diagnosis and "
            "confidence from the photo alone, which is stored before the AI's advice is shown and cannot be "
            "changed afterwards; then sees the AI's advice and gives the final diagnosis and confidence."
        )
    return _bullets(lines)


def _sampling(protocol: Protocol) -> str:
    plan = protocol.preregistration.sample_size
    lines: list[str] = []
    if plan is None:
        lines.append("No sample size is declared (`preregistration.sample_size`).")
    else:
        effect_name = "d_z" if protocol.design == "within" else "d"
        test_plan, k = planned(protocol), len(protocol.conditions)
        alpha, sided_test = test_plan.alpha, test_plan.sided
        needed = required_sample(
            plan.effect, protocol.design, alpha=alpha, power=plan.power, sided=sided_test, k=k
        ).total
        achieved = t_test_power(
            plan.participants, plan.effect, protocol.design, alpha=alpha, sided=sided_test, k=k
        )
        test = (
            "paired t-test"
            if protocol.design == "within"
            else "two-sample t-test with balanced arms (Welch's test has the same power under equal variances)"
        )
        lines += [
            f"Planned sample: {plan.participants} participants analysed (after exclusions)"
            + (f"; {plan.participants // k} per arm." if protocol.design == "between" else "."),
            f"Power analysis: {test}, {sided_test}, α = {alpha:.4g} per test"
            + (
                f" ({test_plan.correction}: α {test_plan.declared:g} / {test_plan.family} {test_plan.family_of})"
                if test_plan.family > 1
                else ""
            )
            + f", smallest effect of interest {effect_name} = {plan.effect:g}: {needed} participants give "
            f"{plan.power:.0%} power; the planned {plan.participants} give {achieved:.1%} "
            "(exact noncentral t).",
        ]
        if plan.participants < needed:
            lines.append(f"The planned sample is smaller than the {needed} the power analysis asks for.")
        if plan.rationale:
            lines.append(f"Effect size rationale: {plan.rationale}")
        if per_case_constructs(protocol):
            lines += _cases_lines(protocol, alpha, sided_test)
    stop = protocol.preregistration.stopping_rule
    lines.append(f"Stopping rule: {stop}" if stop else "Stopping rule: when the planned sample is analysed.")
    return _bullets(lines)


def _cases_lines(protocol: Protocol, alpha: float, sided: str) -> list[str]:
    """The number of cases, its justification and the mixed model's power at the planned sample."""
    plan = protocol.preregistration.sample_size
    k = len(protocol.conditions)
    if plan.cases is not None and min(plan.cases, plan.participants) < 2 * k:
        planned = (
            f"Planned cases: {plan.cases} per participant; the mixed model's power is not computed for fewer "
            f"than {2 * k} participants or cases with {k} conditions."
        )
    elif plan.cases is not None:
        planned = f"Planned cases: {plan.cases} per participant"
        components = VarianceComponents(**plan.components)
        effect = planned_point_effect(plan, components)
        at_plan = case_power(
            effect,
            plan.participants,
            plan.cases,
            protocol.design,
            components,
            alpha=alpha,
            sided=sided,
            k=k,
        )
        planned += (
            f"; with {plan.participants} participants the mixed model has {at_plan.power:.1%} power "
            f"(df ≈ {at_plan.df:.1f})."
        )
    else:
        planned = f"Planned cases: every case of bundle `{protocol.cases.bundle}` (no number declared)."
    lines = [planned]
    if plan.cases_rationale:
        lines.append(f"Number of cases, rationale: {plan.cases_rationale}")
    lines += cases_table(protocol, alpha, sided)
    lines.append(
        "Cases are a sample of photos too: beyond a point, more participants barely raise power; more cases do."
    )
    return lines


def _instrument_lines(use: InstrumentUse) -> list[str]:
    instrument = use.instrument
    lines = [
        f"**`{use.construct}`: {instrument.name}** — {instrument.citation} Wording: {instrument.wording_source}"
        f" Licence: {instrument.licence}",
        f"Scale: {instrument.scale.points} points ({instrument.scale.label(1)} … "
        f"{instrument.scale.label(instrument.scale.points)}); shown in `{use.show}`"
        + (f" under {', '.join(use.show_in)}" if use.show_in else "")
        + ".",
        f"Scoring: {instrument.scoring.rule} Missing items: {instrument.scoring.missing}",
    ]
    if use.adapt is not None:
        changed = ", ".join(use.adapt.wording) or "none"
        dropped = ", ".join(use.adapt.drop) or "none"
        lines.append(
            f"**Adapted**: wording changed for items {changed}; items dropped: {dropped}. {use.adapt.reason}"
        )
    return lines


def _variables(protocol: Protocol) -> str:
    manipulated = (
        "Manipulated: the explanation condition (" + ", ".join(c.id for c in protocol.conditions) + ")."
    )
    measured = []
    uses = {u.construct: u for u in protocol.instruments}
    for construct in protocol.constructs:
        items = [i for i in protocol.items().values() if i.construct == construct and not i.attention_check]
        if construct in uses:
            measured += _instrument_lines(uses[construct])
        texts = "; ".join(f"`{i.id}`{' (reverse keyed)' if i.reverse else ''}: “{i.text}”" for i in items)
        measured.append(f"`{construct}` items: {texts}")
    checks = [i.id for i in protocol.items().values() if i.attention_check]
    if checks:
        measured.append(f"Attention checks (instructed responses): {', '.join(checks)}.")
    manipulation = [i for i in protocol.items().values() if i.manipulation_check]
    for item in manipulation:
        assert item.manipulation_check is not None
        expected = ", ".join(
            f"{c}: {item.value_labels()[v]}" for c, v in item.manipulation_check.expected.items()
        )
        measured.append(
            f"Manipulation check `{item.id}`: “{item.text}” (expected answer by arm — {expected})."
        )
    if protocol.trial.judge_advisor:
        measured.append(
            "Reliance on the AI's advice: accuracy before and after the advice, switch rate, over- and "
            "under-reliance, relative AI reliance (RAIR) and relative self-reliance (RSR) as defined by "
            "Schemmer et al. (2023), confidence change; per condition, by AI correctness."
        )
    score = (
        "Construct score: per participant and condition, the mean of the construct's items after reverse "
        "keying (points + 1 − answer) over all cases; for an instrument, its published score (above) is a "
        "linear function of this mean when its items are answered, so the tests are the same."
    )
    return "\n".join([f"- {manipulated}", *(f"- {line}" for line in measured), f"- {score}"])


def _analysis(protocol: Protocol) -> str:
    correction = protocol.preregistration.correction
    within = protocol.design == "within"
    test = (
        "paired t-test on the construct scores (d_z)" if within else "Welch's t-test on construct scores (d)"
    )
    rank = "Wilcoxon signed-rank test" if within else "Mann–Whitney U test"
    lines = []
    mixed = per_case_constructs(protocol)
    for h in protocol.hypotheses:
        first, second = h.comparison
        if h.direction in EQUIVALENCE_DIRECTIONS:
            lines.append(_equivalence_plan(h, test))
            continue
        primary = (
            f"the mixed model below of `{h.construct}`'s per-case answers (its {test} as a secondary analysis)"
            if h.construct in mixed
            else f"{test} of `{h.construct}`"
        )
        lines.append(
            f"{h.id}: {primary}, `{first}` − `{second}`, {SIDES[h.direction]}"
            + (f" (alternative: {h.direction})" if h.direction != "two_sided" else "")
            + f", α = {h.alpha:g}; the {rank} in the same direction as a rank-based check."
        )
    if protocol.hypotheses:
        lines.append(
            {
                "holm": "Correction: Holm across the hypotheses (the confirmatory family).",
                "bonferroni": "Correction: Bonferroni across the hypotheses (the confirmatory family).",
                "none": "Correction: none (each hypothesis is its own family).",
            }[correction]
        )
        lines.append("Inference: a hypothesis is supported when its corrected p is below its α.")
    if mixed:
        lines += [
            "Per-case items (asked on every case: "
            + ", ".join(f"`{c}`" for c in mixed)
            + f"): the primary test is a linear mixed model, `{planned_formula(protocol.design)}`, one row per "
            f"participant × case (the construct's per-case answers), treating as random "
            f"{random_effects_text(protocol.design)}; REML, t tests with Satterthwaite df; one-sided where a "
            "hypothesis declares a direction (half the two-sided p in that direction). A cumulative link "
            "mixed model on the item answers is its ordinal companion; the participant-mean tests are "
            "secondary analyses. Items asked once per participant keep the tests below.",
            f"Simplification rule: {SIMPLIFICATION_RULE}",
        ]
    lines += [
        "Beside every t-test, the two-sided default Bayes factor BF10 (JZS prior, Cauchy scale r = √2/2; "
        "Rouder et al. 2009), as evidence for a difference or for its absence.",
        "Effect sizes with 95 % CIs (exact noncentral t); means and SDs per condition; Cronbach's α per "
        "construct and instrument.",
        "Exploratory: every other construct and test in the report (two-sided, Holm across them), trust "
        "calibration on deliberately wrong AI cases, expert ratings.",
    ]
    return _bullets(lines)


def _equivalence_plan(h: Hypothesis, test: str) -> str:
    """The TOST plan of an equivalence / non-inferiority hypothesis (Lakens 2017)."""
    first, second = h.comparison
    bounds = f"−{h.sesoi:g} and +{h.sesoi:g}" if h.direction == "equivalent" else f"−{h.sesoi:g}"
    shown = (
        "equivalent when both one-sided tests reject, i.e. the (1 − 2α) CI of the difference lies within "
        f"±{h.sesoi:g}"
        if h.direction == "equivalent"
        else f"non-inferior when the test rejects, i.e. the (1 − 2α) CI's lower bound lies above −{h.sesoi:g}"
    )
    return (
        f"{h.id}: {test} of `{h.construct}`, `{first}` − `{second}`, as two one-sided tests (TOST) against "
        f"{bounds} construct-score points (smallest effect size of interest), α = {h.alpha:g}; {shown}. "
        "The power analysis below is for the difference tests; it does not cover this equivalence test."
    )


def _exclusions(protocol: Protocol) -> str:
    e = protocol.exclusions
    lines = []
    if e.max_failed_attention_checks is not None:
        lines.append(f"More than {e.max_failed_attention_checks} failed attention check(s).")
    if e.min_duration_seconds is not None:
        lines.append(f"Completion in less than {e.min_duration_seconds:g} seconds.")
    if e.exclude_incomplete:
        lines.append("Not completing the study.")
    missing = (
        "Missing data: the app requires every required item, so construct scores are complete; within "
        "designs analyse participants with both conditions."
    )
    return _bullets(lines or ["None."]) + f"\n\n{missing}"


def document(protocol: Protocol) -> str:
    """The preregistration document (Markdown) of ``protocol``: the same protocol gives the same text."""
    study = protocol.study
    sections = [
        ("1. Hypotheses", _hypotheses(protocol)),
        ("2. Design", _design(protocol)),
        ("3. Sampling plan", _sampling(protocol)),
        ("4. Variables", _variables(protocol)),
        ("5. Analysis plan", _analysis(protocol)),
        ("6. Exclusion criteria", _exclusions(protocol)),
    ]
    head = (
        f"# Preregistration: {study.title}\n\n"
        f"Study `{study.id}`, protocol version {study.version}. Sections follow the {TEMPLATE} templates; "
        "written by `skingen-study prereg` from the protocol file.\n"
    )
    return head + "".join(f"\n## {title}\n\n{body}\n" for title, body in sections)


def document_hash(text: str) -> str:
    """SHA-256 of the document's UTF-8 text (what ``init`` stores and ``sha256sum`` prints)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sections(text: str) -> dict[str, str]:
    """Section title → body of a document written by :func:`document`."""
    out: dict[str, str] = {}
    for chunk in text.split("\n## ")[1:]:
        title, _, body = chunk.partition("\n")
        out[title.strip()] = body.strip()
    return out


def changed_sections(old: str, new: str) -> list[str]:
    """Titles of the sections that differ between two documents (added or removed ones included)."""
    before, after = sections(old), sections(new)
    return [title for title in dict.fromkeys([*before, *after]) if before.get(title) != after.get(title)]
