"""The data card of a prepared set: ``datacard.md`` (tables), ``datacard.json`` (the same numbers, for
programs) and ``datacard.html`` (a self-contained plotly heatmap of images per condition × skin-tone group).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import plotly.graph_objects as go

from skingen.dataset import SPLITS, Example
from skingen.skin_tone import SKIN_TONE_GROUPS

DATACARD_FORMAT = "skingen-datacard"
DATACARD_VERSION = 1
GROUPS = (*SKIN_TONE_GROUPS, "unknown")


@dataclass(frozen=True)
class Duplicate:
    """An image left out as a near-duplicate (pHash within the threshold) of an earlier, kept one."""

    file: str
    duplicate_of: str


@dataclass
class DataCard:
    source: str
    licence: str
    command: str
    unmapped: dict[str, int]
    excluded: dict[str, int]
    duplicates: list[Duplicate]
    phash_distance: int
    # filled by count(): condition → skin-tone group → split → images
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    skin_tone_sources: dict[str, int] = field(default_factory=dict)
    images: int = 0

    def count(self, examples: list[Example]) -> None:
        self.images = len(examples)
        self.counts = {}
        for e in examples:
            by_group = self.counts.setdefault(e.condition, {g: dict.fromkeys(SPLITS, 0) for g in GROUPS})
            by_group[e.skin_tone_group or "unknown"][e.split] += 1
        self.counts = dict(sorted(self.counts.items()))
        self.skin_tone_sources = dict(
            Counter(e.skin_tone_source or "unknown" for e in examples).most_common()
        )

    def total(self, condition: str, group: str | None = None, split: str | None = None) -> int:
        groups = [group] if group else GROUPS
        splits = [split] if split else SPLITS
        return sum(self.counts[condition][g][s] for g in groups for s in splits)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        return {"format": DATACARD_FORMAT, "version": DATACARD_VERSION, **data}


def write_datacard(root: Path, card: DataCard) -> None:
    (root / "datacard.json").write_text(json.dumps(card.to_json(), indent=2) + "\n", encoding="utf-8")
    (root / "datacard.md").write_text(markdown(card), encoding="utf-8")
    figure(card).write_html(root / "datacard.html", include_plotlyjs=True, full_html=True)


def markdown(card: DataCard) -> str:
    lines = [
        f"# Data card: {card.source}",
        "",
        f"- Images: {card.images} (train {_split_total(card, 'train')}, "
        f"validation {_split_total(card, 'validation')})",
        f"- Licence: {card.licence}. Images stay under the dataset's licence; do not redistribute them.",
        f"- Near-duplicates removed (pHash, Hamming distance ≤ {card.phash_distance} of 64 bits): "
        f"{len(card.duplicates)}",
        f"- Skin tone from: {_inline(card.skin_tone_sources)}",
        f"- Made by: `{card.command}`",
        "",
        "## Images per condition × Fitzpatrick skin-tone group",
        "",
        "| condition | " + " | ".join(GROUPS) + " | total | train | validation |",
        "|---|" + "---:|" * (len(GROUPS) + 3),
    ]
    for condition in card.counts:
        cells = [card.total(condition, g) for g in GROUPS]
        cells += [card.total(condition), *(card.total(condition, split=s) for s in SPLITS)]
        lines.append(f"| {condition} | " + " | ".join(str(c) for c in cells) + " |")
    totals = [sum(card.total(c, g) for c in card.counts) for g in GROUPS]
    lines.append("| **all** | " + " | ".join(str(t) for t in totals) + f" | {card.images} | | |")
    lines += ["", "## Unmapped labels (left out)", ""]
    lines += _table("label", card.unmapped) if card.unmapped else ["None: every label names a condition."]
    if card.excluded:
        lines += ["", "## Excluded by the dataset's own quality labels", "", *_table("reason", card.excluded)]
    return "\n".join(lines) + "\n"


def figure(card: DataCard) -> go.Figure:
    conditions = list(card.counts)
    z = [[card.total(c, g) for g in GROUPS] for c in conditions]
    fig = go.Figure(
        go.Heatmap(
            z=z, x=list(GROUPS), y=conditions, text=z, texttemplate="%{text}", colorscale="Blues",
            colorbar={"title": "images"},
        )
    )  # fmt: skip
    fig.update_layout(
        title=f"{card.source}: {card.images} images per condition × Fitzpatrick group ({card.licence})",
        xaxis_title="skin-tone group",
        yaxis={"autorange": "reversed"},
        height=max(300, 40 * len(conditions) + 150),
    )
    return fig


def _split_total(card: DataCard, split: str) -> int:
    return sum(card.total(c, split=split) for c in card.counts)


def _inline(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _table(header: str, counts: dict[str, int]) -> list[str]:
    escaped = {k.replace("|", "\\|"): v for k, v in counts.items()}
    return [f"| {header} | images |", "|---|---:|", *(f"| {k} | {v} |" for k, v in escaped.items())]
