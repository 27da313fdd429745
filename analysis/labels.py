"""What readers see instead of ids: condition labels, item texts and scale anchors from the protocol.

Reports, tables and figure titles and axes go into a paper unedited, so they show the protocol's labels
("Text and generated reference images", "I trust the AI's diagnosis for this case.", "Strongly agree"), never
ids (``skingen_visual``, ``trust_1``); ids stay in ``results.json`` and in figure hover text, where a reader
of the data needs them. The labels come from the export's ``study.csv`` (``labels``, JSON; see
docs/export-format.md); input without them (bare CSVs, older exports) falls back to the ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

EXCLUSION_REASONS = {
    "attention_check": "failed attention check",
    "too_fast": "completed too fast",
    "incomplete": "did not complete",
}
"""participants.csv ``exclusion_reasons`` codes in words."""


@dataclass(frozen=True)
class Labels:
    """Id → label maps; every lookup falls back to the id."""

    conditions: dict[str, str] = field(default_factory=dict)
    items: dict[str, str] = field(default_factory=dict)
    anchors: dict[str, dict[str, str]] = field(default_factory=dict)
    rating_items: dict[str, str] = field(default_factory=dict)
    rating_anchors: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str) -> Labels:
        """Parse the export's ``labels`` cell ('' → no labels); ValueError when it is not JSON label maps."""
        if not text.strip():
            return cls()
        try:
            data = json.loads(text)
            return cls(**{k: dict(data.get(k) or {}) for k in cls.__dataclass_fields__})
        except (TypeError, AttributeError) as exc:
            raise ValueError(str(exc)) from None

    def to_json(self) -> dict:
        """The ``labels`` block of results.json (the document reads labels from there)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def condition_labels(results: dict) -> dict[str, str]:
    """Every condition's label by id, from results.json's ``labels`` (empty when there are none)."""
    return dict((results.get("labels") or {}).get("conditions") or {})


def condition_label(results: dict, condition: str) -> str:
    """A condition's label from results.json's ``labels`` (the id when there is none)."""
    return ((results.get("labels") or {}).get("conditions") or {}).get(condition, condition)


def item_label(results_labels: dict | None, item: str, rating: bool = False) -> str:
    """An item's text (questionnaire item, or rating item with ``rating``); the id when there is none."""
    key = "rating_items" if rating else "items"
    return ((results_labels or {}).get(key) or {}).get(item, item)


def anchor_labels(results_labels: dict | None, item: str, rating: bool = False) -> dict[int, str]:
    """Scale point → anchor label of an item ({} when unknown)."""
    key = "rating_anchors" if rating else "anchors"
    return {int(k): v for k, v in (((results_labels or {}).get(key) or {}).get(item) or {}).items()}


def stage_label(stage: str) -> str:
    """A participant-flow stage in words: 'excluded: attention_check' → 'excluded: failed attention check'."""
    head, _, reason = stage.partition(": ")
    return f"{head}: {EXCLUSION_REASONS.get(reason, reason)}" if reason else stage
