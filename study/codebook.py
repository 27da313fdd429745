"""The codebook (data dictionary): every exported variable, generated from the protocol (never by hand).

Item variables come first (one or more per protocol item, as its kind defines them: :mod:`study.items`);
then the design variables ``condition``, ``arm`` and ``sequence`` (columns of responses.csv), whose labels
state the allocation: what each condition shows, the permuted blocks, and for within designs the Williams
design balancing first-order carry-over.
"""

from __future__ import annotations

from study.allocation import Arm, arms
from study.crossover import williams_orders
from study.items.base import Variable, value_labels_text
from study.protocol.model import Protocol

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
                variables += item.variables(section, initial=True)
        for item in items:
            variables += item.variables(section)
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
            value_labels=value_labels_text(labels),
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
