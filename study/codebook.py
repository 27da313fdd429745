"""The codebook (data dictionary): every exported variable, generated from the protocol (never by hand).

Item variables come first (one or more per protocol item); then the design variables ``condition``, ``arm``
and ``sequence`` (columns of responses.csv), whose labels state the allocation: what each condition shows,
the permuted blocks, and for within designs the Williams design balancing first-order carry-over.
"""

from __future__ import annotations

from dataclasses import dataclass

from study.allocation import Arm, arms
from study.contract import (
    ACCURACY_CONSTRUCT,
    AGREEMENT_CONSTRUCT,
    AGREES_AI,
    CONFIDENCE_SUFFIX,
    CORRECT,
)
from study.crossover import williams_orders
from study.protocol import CODED_TYPES, Item, Protocol


@dataclass(frozen=True)
class Variable:
    variable: str
    label: str
    type: str
    construct: str
    scale_min: float | None
    scale_max: float | None
    value_labels: str
    reverse_coded: bool
    required: bool
    attention_check: bool
    shown_in: str
    source: str
    instrument: str
    subscale: str
    keying: str
    adapted: bool


def _labels(labels: dict[int, str] | dict[str, str]) -> str:
    return "; ".join(f"{code}={label}" for code, label in labels.items())


def _keying(item: Item) -> str:
    """'reverse' / 'forward' for items scored on a construct, '' otherwise."""
    if not item.construct or item.type != "likert":
        return ""
    return "reverse" if item.reverse else "forward"


def item_variables(item: Item, section: str) -> list[Variable]:
    """The variables one item produces: itself, plus confidence and derived 0/1 rows for diagnosis items."""
    shown_in = ",".join(item.show_in or ())
    ref = item.instrument

    def variable(
        name: str,
        label: str,
        kind: str,
        low: float | None = None,
        high: float | None = None,
        labels: dict[int, str] | None = None,
        construct: str = "",
        source: str = section,
    ) -> Variable:
        return Variable(
            variable=name,
            label=label,
            type=kind,
            construct=construct,
            scale_min=low,
            scale_max=high,
            value_labels=_labels(labels or {}),
            reverse_coded=item.reverse and name == item.id,
            required=item.required and source != "derived",
            attention_check=item.attention_check is not None and name == item.id,
            shown_in=shown_in,
            source=source,
            instrument=ref.id if ref and name == item.id else "",
            subscale=(ref.subscale or "") if ref and name == item.id else "",
            keying=_keying(item) if name == item.id else "",
            adapted=bool(ref and ref.adapted) and name == item.id,
        )

    construct = item.construct or ""
    if item.type in CODED_TYPES:
        kind = {"likert": "ordinal", "single_choice": "nominal", "yes_no": "binary"}[item.type]
        codes = item.codes
        return [variable(item.id, item.text, kind, min(codes), max(codes), item.value_labels(), construct)]
    if item.type == "number":
        return [variable(item.id, item.text, "numeric", item.minimum, item.maximum, construct=construct)]
    if item.type == "free_text":
        return [variable(item.id, item.text, "text")]
    variables = [variable(item.id, item.text, "condition_id")]
    if item.confidence is not None:
        points = item.confidence.points
        labels = {p: item.confidence.label(p) for p in range(1, points + 1)}
        variables.append(
            variable(item.id + CONFIDENCE_SUFFIX, f"Confidence: {item.text}", "ordinal", 1, points, labels)
        )
    yes_no = {0: "no", 1: "yes"}
    variables += [
        variable(
            item.id + AGREES_AI,
            f"{item.id} equals the AI's diagnosis",
            "binary",
            0,
            1,
            yes_no,
            AGREEMENT_CONSTRUCT,
            "derived",
        ),
        variable(
            item.id + CORRECT,
            f"{item.id} equals the ground truth",
            "binary",
            0,
            1,
            yes_no,
            ACCURACY_CONSTRUCT,
            "derived",
        ),
    ]
    return variables


def item_codebook(protocol: Protocol) -> list[Variable]:
    """The variables the protocol's items produce (the ``item`` values of responses.csv)."""
    return [
        variable
        for section, items in protocol.questionnaires.sections().items()
        for item in items
        for variable in item_variables(item, section)
    ]


def allocation_statement(protocol: Protocol) -> str:
    """How participants are allocated, in one sentence per fact (the codebook's ``arm`` label)."""
    r = protocol.randomization
    k = len(protocol.conditions)
    strata = f", stratified by {r.stratify_by}" if r.stratify_by else ""
    blocks = f"permuted blocks of {', '.join(map(str, r.block_sizes))} (seed {r.seed}){strata}"
    if protocol.design == "between":
        return f"Allocated arm = condition; {k} arms in {blocks}."
    orders = len(williams_orders(k))
    mirrored = " (a Williams square and its mirror image, as k is odd)" if k % 2 else ""
    return (
        f"Allocated sequence: {orders} condition orders of a Williams design{mirrored}, balanced for "
        f"first-order carry-over (each condition follows every other equally often), × {k} cyclic "
        f"case-set rotations = {protocol.n_arms} sequences, in {blocks}."
    )


def design_variables(protocol: Protocol) -> list[Variable]:
    """``condition``, ``arm`` and ``sequence``: what each value means and how it was allocated."""

    def variable(name: str, label: str, labels: dict[str, str]) -> Variable:
        return Variable(
            variable=name,
            label=label,
            type="nominal",
            construct="",
            scale_min=None,
            scale_max=None,
            value_labels=_labels(labels),
            reverse_coded=False,
            required=False,
            attention_check=False,
            shown_in="",
            source="design",
            instrument="",
            subscale="",
            keying="",
            adapted=False,
        )

    conditions = {
        c.id: f"{c.label} (references: {' + '.join(c.references) or 'none'}"
        f"{', baseline' if c.id == protocol.baseline else ''})"
        for c in protocol.conditions
    }
    allocated = arms(protocol)
    return [
        variable("condition", "Explanation condition in force for the answer", conditions),
        variable(
            "arm",
            allocation_statement(protocol),
            {a.id: a.sequence + ("" if protocol.design == "between" else _case_sets(a)) for a in allocated},
        ),
        variable(
            "sequence", "Order of conditions over the periods", {a.sequence: a.sequence for a in allocated}
        ),
    ]


def _case_sets(arm: Arm) -> str:
    return " (case sets " + ",".join(str(s + 1) for _, s in arm.periods) + ")"


def codebook(protocol: Protocol) -> list[Variable]:
    """Every variable of the export: item variables, then the design variables."""
    return item_codebook(protocol) + design_variables(protocol)
