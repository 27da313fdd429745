"""Diagnoses fixed in a CSV: how real studies freeze stimuli and how wrong AI outputs are planted on purpose.

CSV columns: ``case_id,condition[,rationale]``. ``condition`` is a taxonomy id or a name/synonym of one; a
value that names no condition is an error, not a silent "unknown" (write ``unknown`` to mean unknown).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from formats.taxonomy import UNKNOWN, Taxonomy
from skingen.diagnosis.base import Diagnosis
from skingen.errors import SkinGenError
from skingen.sources import read_table


class FixedDiagnoser:
    """Looks each case's diagnosis up in a CSV instead of running a model."""

    model_id = "fixed"

    def __init__(self, path: str | Path, taxonomy: Taxonomy) -> None:
        path = Path(path)
        self._taxonomy = taxonomy
        self._rows: dict[str, tuple[str, str]] = {}
        for line, row in read_table(path, ("case_id", "condition"), what="diagnoses CSV"):
            where = f"{path}, line {line}"
            self._rows[row["case_id"]] = (taxonomy.resolve(row["condition"], where), row.get("rationale", ""))

    def diagnose(self, image: Image.Image, case_id: str = "") -> Diagnosis:
        if case_id not in self._rows:
            raise SkinGenError(f"case {case_id!r} has no row in the diagnoses CSV")
        condition, rationale = self._rows[case_id]
        ranked = [] if condition == UNKNOWN else [(condition, 1.0)]
        return Diagnosis.from_ranking(
            self._taxonomy, ranked, rationale=rationale, raw_output=condition, model_id=self.model_id
        )
