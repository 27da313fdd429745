"""Mixed models with crossed random effects for participants and cases (see :mod:`analysis.mixed.result`)."""

from analysis.mixed.result import MixedFit, MixedModelError, MixedTerm

__all__ = ["MixedFit", "MixedModelError", "MixedTerm"]
