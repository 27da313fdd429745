"""The codebook (data dictionary): every exported variable, generated from the protocol (never by hand).

Item variables come first (one or more per protocol item); then the design variables ``condition``, ``arm``
and ``sequence`` (columns of responses.csv), whose labels state the allocation: what each condition shows,
the permuted blocks, and for within designs the Williams design balancing first-order carry-over.
"""

from __future__ import annotations

from dataclasses import dataclass

from formats.contract import (
    ACCURACY_CONSTRUCT,
    AGREEMENT_CONSTRUCT,
    AGREES_AI,
    AS_INTENDED,
    CONFIDENCE_SUFFIX,
    CORRECT,
    INITIAL_ACCURACY_CONSTRUCT,
    INITIAL_AGREEMENT_CONSTRUCT,
    MANIPULATION_CONSTRUCT,
)
from study.allocation import Arm, arms
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


def item_variables(item: Item, section: str, *, initial: bool = False) -> list[Variable]:
    """The variables one item produces: itself, plus confidence and derived 0/1 rows for diagnosis items.

    ``initial``: the item is the answer before the AI's advice of a judge–advisor trial (``<id>_initial``):
    labelled so, and its derived rows get the initial constructs, apart from the final answers'."""
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
        coded = [variable(item.id, item.text, kind, min(codes), max(codes), item.value_labels(), construct)]
        if item.manipulation_check is not None:
            expected = "; ".join(f"{c}={code}" for c, code in item.manipulation_check.expected.items())
            coded.append(
                variable(
                    item.id + AS_INTENDED,
                    f"{item.id} answered as expected under the participant's condition ({expected})",
                    "binary",
                    0,
                    1,
                    {0: "no", 1: "yes"},
                    MANIPULATION_CONSTRUCT,
                    "derived",
                )
            )
        return coded
    if item.type == "number":
        return [variable(item.id, item.text, "numeric", item.minimum, item.maximum, construct=construct)]
    if item.type == "free_text":
        return [variable(item.id, item.text, "text")]
    text = f"Before the AI's advice: {item.text}" if initial else item.text
    agreement, accuracy = (
        (INITIAL_AGREEMENT_CONSTRUCT, INITIAL_ACCURACY_CONSTRUCT)
        if initial
        else (AGREEMENT_CONSTRUCT, ACCURACY_CONSTRUCT)
    )
    variables = [variable(item.id, text, "condition_id")]
    if item.confidence is not None:
        points = item.confidence.points
        labels = {p: item.confidence.label(p) for p in range(1, points + 1)}
        variables.append(
            variable(item.id + CONFIDENCE_SUFFIX, f"Confidence: {text}", "ordinal", 1, points, labels)
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
            agreement,
            "derived",
        ),
        variable(
            item.id + CORRECT,
            f"{item.id} equals the ground truth",
            "binary",
            0,
            1,
            yes_no,
            accuracy,
            "derived",
        ),
    ]
    return variables


# The columns of interactions.csv a reader needs explained (the rest are as in responses.csv).
_INTERACTION_VARIABLES = (
    ("turn", "Turn number with the live model on this case (1, 2, …)", "integer"),
    ("kind", "question: a follow-up question; references: a request for generated references", "text"),
    ("question", "The participant's question (empty for references)", "text"),
    ("answer", "The live model's answer (empty for references)", "text"),
    ("mapped_condition", "Taxonomy id the answer (or the references) names; unknown when none", "text"),
    ("model_id", "The model that answered or generated", "text"),
    ("latency_ms", "Time the model took, in milliseconds", "integer"),
    ("images", "Cache keys (SHA-256 of the provenance) of the images shown, ';'-separated", "text"),
)


def interaction_variables(protocol: Protocol) -> list[Variable]:
    """The interactions.csv columns as ``interactions.<column>``, when a condition is interactive (shown_in:
    those conditions)."""
    shown_in = ",".join(protocol.interactive_conditions)
    if not shown_in:
        return []
    return [
        Variable(
            variable=f"interactions.{name}",
            label=label,
            type=kind,
            construct="interaction",
            scale_min=None,
            scale_max=None,
            value_labels="",
            reverse_coded=False,
            required=False,
            attention_check=False,
            shown_in=shown_in,
            source="interactions",
            instrument="",
            subscale="",
            keying="",
            adapted=False,
        )
        for name, label, kind in _INTERACTION_VARIABLES
    ]


def item_codebook(protocol: Protocol) -> list[Variable]:
    """The variables the protocol's items produce (the ``item`` values of responses.csv); in judge–advisor
    trials the initial answers' variables come first among the trial's."""
    variables = []
    for section, items in protocol.questionnaires.sections().items():
        if section == "trial":
            for item in protocol.initial_items:
                variables += item_variables(item, section, initial=True)
        for item in items:
            variables += item_variables(item, section)
    return variables


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
    """Every variable of the export: item variables, the design variables, then the interactions' columns."""
    return item_codebook(protocol) + design_variables(protocol) + interaction_variables(protocol)
