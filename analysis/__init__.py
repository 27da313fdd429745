"""Statistics, tables and figures for the paper, from the study database or its export files (no torch)."""

__version__ = "0.1.0"
