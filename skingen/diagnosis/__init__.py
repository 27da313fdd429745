"""Diagnosis backends: a VLM's free text, CLIP zero-shot scores, or diagnoses fixed in a CSV.

Each returns a :class:`~skingen.diagnosis.base.Diagnosis`. Only :mod:`.base` and :mod:`.fixed` are
imported here; the torch-based backends (:mod:`.vlm`, :mod:`.clip`) are imported by whoever needs them.
"""

from skingen.diagnosis.base import Diagnoser, Diagnosis
from skingen.diagnosis.fixed import FixedDiagnoser

__all__ = ["Diagnoser", "Diagnosis", "FixedDiagnoser"]
