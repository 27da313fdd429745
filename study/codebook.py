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
    instrument: str
    subscale: str
    keying: str
    adapted: bool


def _labels(labels: dict[int, str]) -> str:
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


def codebook(protocol: Protocol) -> list[Variable]:
    return [
        variable
        for section, items in protocol.questionnaires.sections().items()
        for item in items
        for variable in item_variables(item, section)
    ]
