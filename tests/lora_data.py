"""A prepared image set as `skingen data prepare` writes it, and the small training flags: what every
`skingen lora` test trains on."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.skingen_fixtures import photo

ROWS = [  # condition, skin tone, caption ('' → built from the prompt templates)
    ("psoriasis", "II", "red scaly plaque on the elbow"),
    ("eczema", "V-VI", ""),
    ("psoriasis", "IV", ""),
    ("eczema", "", "dry itchy patch"),
]
SMALL = ["--resolution", "32", "--no-progress", "--validation-inference-steps", "2"]


def write_data(root: Path, rows=ROWS) -> Path:
    """A prepared image set as `skingen data prepare` writes it: images/ + metadata.csv (72 px: crops)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for index, (condition, tone, caption) in enumerate(rows):
        photo(index, 72).save(root / "images" / f"{index}.png")
        records.append(
            {"file": f"images/{index}.png", "condition": condition, "skin_tone": tone, "caption": caption,
             "source": "test", "licence": "CC0-1.0", "split": "train"}
        )  # fmt: skip
    records.append({**records[0], "split": "validation"})
    with (root / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return root
