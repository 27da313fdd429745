"""APA 7 number formatting for the reports: statistics in italics, no leading zero for p, correlations and
reliabilities, ``p < .001`` instead of ``.000``, and CIs labelled with their level."""

from __future__ import annotations

import math

TEST_SYMBOL = {"paired t-test": "t", "Welch t-test": "t", "Wilcoxon signed-rank": "V", "Mann-Whitney U": "U"}
EFFECT_SYMBOL = {"d_z": "*d*<sub>z</sub>", "hedges_g": "*g*", "rank_biserial": "*r*<sub>rb</sub>"}
EFFECT_NAME = {"d_z": "d_z", "hedges_g": "Hedges' g", "rank_biserial": "rank-biserial r"}
"""Plain-text names of the effect-size measures, for table headers (every effect column names its measure)."""


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


def ci_label(confidence: float) -> str:
    """``90 % CI`` for ``confidence`` = 0.9 (``97.5 % CI`` for 0.975): the name of every interval."""
    return f"{100 * confidence:.4g} % CI"


def interval(bounds: list[float | None] | None, digits: int = 2, fmt=num) -> str:
    """``[lo, hi]`` (``[–, –]`` when missing)."""
    lo, hi = bounds if bounds else (None, None)
    return f"[{fmt(lo, digits)}, {fmt(hi, digits)}]"


def ci(bounds: list[float | None] | None, confidence: float, digits: int = 2, fmt=num) -> str:
    """``90 % CI [lo, hi]`` at the analysis' level."""
    return f"{ci_label(confidence)} {interval(bounds, digits, fmt)}"


def signed_pct(x: float | None) -> str:
    return "–" if x is None else f"{x:+.1f} %"


def bf_text(bf: float | None) -> str:
    """A Bayes factor: two decimals between .01 and 1000, else scientific (``3.1 × 10^4``, as Markdown/HTML)."""
    if bf is None or math.isnan(bf):
        return "–"
    if math.isinf(bf):
        return "> 10<sup>308</sup>"
    if 0.01 <= bf < 1000:
        return num(bf)
    mantissa, exponent = f"{bf:.1e}".split("e")
    return f"{mantissa} × 10<sup>{int(exponent)}</sup>"


def bf_clause(record: dict | None) -> str:
    """``BF<sub>10</sub> = 3.20`` from a ``bayes_factor`` record (empty without one)."""
    return "" if not record else f"BF<sub>10</sub> = {bf_text(record['value'])}"


def bf_cell(bf: float | None) -> str:
    """A Bayes factor in a table cell (plain text, also for LaTeX): ``3.20``, ``3.1e+04``."""
    if bf is None or math.isnan(bf):
        return "–"
    return num(bf) if 0.01 <= bf < 1000 else f"{bf:.1e}"


def df_text(df: float | None) -> str:
    """A t test's df as APA prints it (whole numbers without decimals); 'z' tests have none."""
    if df is None:
        return "∞"
    return f"{df:.0f}" if float(df).is_integer() else f"{df:.2f}"
