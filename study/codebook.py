"""The codebook (data dictionary): every exported variable, generated from the protocol (never by hand)."""

from __future__ import annotations

from dataclasses import dataclass

from study.contract import (
    ACCURACY_CONSTRUCT,
    AGREEMENT_CONSTRUCT,
    AGREES_AI,
    CONFIDENCE_SUFFIX,
    CORRECT,
)
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


def _labels(labels: dict[int, str]) -> str:
    return "; ".join(f"{code}={label}" for code, label in labels.items())


def item_variables(item: Item, section: str) -> list[Variable]:
    """The variables one item produces: itself, plus confidence and derived 0/1 rows for diagnosis items."""
    shown_in = ",".join(item.show_in or ())

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
        )
        for name, label, kind in _INTERACTION_VARIABLES
    ]


def codebook(protocol: Protocol) -> list[Variable]:
    items = [
        variable
        for section, items in protocol.questionnaires.sections().items()
        for item in items
        for variable in item_variables(item, section)
    ]
    return items + interaction_variables(protocol)
